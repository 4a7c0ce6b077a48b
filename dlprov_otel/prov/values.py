"""Store values as PROV values: text every serialization can carry, safe local names,
timezone-aware times, typed numbers."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import unicodedata
from decimal import Decimal
from typing import Any

_SAFE_LOCAL = re.compile(r"^[A-Za-z0-9_.\-]{1,80}$")
# Characters XML 1.0 cannot carry (C0 controls but tab/newline/CR, surrogates, U+FFFE/F):
# PROV-XML could not hold a value with them, so every text is written with \xNN escapes.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean_text(text: str) -> str:
    """``text`` with the characters no PROV serialization can carry escaped as ``\\xNN``."""
    return _NOT_XML.sub(_escape_char, text)


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}"


def local_name(text: str) -> str:
    """A local name safe in PROV-N, PROV-XML, RDF and Neo4j: ``text`` itself when it is plain
    ASCII, else an ASCII slug plus a hash of ``text`` (stable, and distinct texts stay distinct)."""
    if _SAFE_LOCAL.match(text) and not text.startswith((".", "-")):
        return text
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9_]+", "-", ascii_text).strip("-")[:40] or "x"
    return f"{slug}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:10]}"


def utc(value: Any) -> dt.datetime | None:
    """Store timestamps are naive UTC; PROV gets them timezone-aware."""
    if not isinstance(value, dt.datetime):
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def typed(value: Any) -> Any:
    """A store value as a PROV attribute value, or ``None`` to leave it out (NULL, NaN)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, float | Decimal):
        number = float(value)
        return None if math.isnan(number) else number
    if isinstance(value, int):
        return float(value)  # set attributes are DOUBLE: keep them xsd:double
    if isinstance(value, dt.datetime):
        return utc(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return clean_text(str(value))


def number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


__all__ = ["clean_text", "local_name", "number_text", "typed", "utc"]
