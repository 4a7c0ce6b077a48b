"""Turning user values (numpy, torch, strings, NaN, None) into span attribute values.

OpenTelemetry drops a whole attribute silently when a sequence mixes types, and it does not
know numpy or torch scalars. Every value therefore becomes a plain ``float`` (NUMERIC) or
``str`` (TEXT, FILE), or ``None``, before it is set on a span.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from typing import Any

from .errors import ElementError
from .model import AttributeType


def to_number(value: Any) -> float | None:
    """Return ``value`` as a float (NaN kept), ``None`` for missing, or raise ``TypeError``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    item = getattr(value, "item", None)  # numpy / torch / tf scalars, 0-d arrays
    if callable(item) and getattr(value, "ndim", 0) == 0:
        return to_number(item())
    numpy_fn = getattr(value, "numpy", None)  # eager tf tensors and variables
    if callable(numpy_fn) and getattr(value, "shape", None) in ((), []):
        return to_number(numpy_fn())
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("", "none", "null"):
            return None
        return float(text)  # ValueError for text that is not a number
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    raise TypeError(f"{type(value).__name__} is not a number")


def storable(text: str) -> str:
    """``text`` as UTF-8 (a store, OTLP's protobuf) can carry it: the lone surrogates that Python
    makes of undecodable bytes in paths, argv and environment values (``os.fsdecode``) become
    U+FFFD, where they made the whole span unstorable."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:  # a surrogate no bytes made
            return text.encode("utf-8", "replace").decode("utf-8")


def storable_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """``attributes``, or a copy with every text (also inside tuples and lists) :func:`storable`."""
    out = attributes
    for key, value in attributes.items():
        if type(value) is str:
            if value.isascii():
                continue
            fixed: Any = storable(value)
        elif type(value) in (tuple, list) and any(type(v) is str and not v.isascii() for v in value):
            fixed = type(value)(storable(v) if type(v) is str else v for v in value)
        else:
            continue
        if fixed != value:
            if out is attributes:
                out = dict(attributes)
            out[key] = fixed
    return out


def to_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, _dt.datetime | _dt.date):
        return value.isoformat(sep=" ") if isinstance(value, _dt.datetime) else value.isoformat()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        return to_text(item())
    return str(value)


def coerce(value: Any, attr_type: AttributeType, *, set_tag: str, attribute: str) -> float | str | None:
    """Coerce one element value to its attribute's type, or raise a precise ``ElementError``."""
    kind = type(value)
    if kind is float or value is None:  # the common cases first (a hot path: every value)
        return value if attr_type is AttributeType.NUMERIC or value is None else to_text(value)
    if attr_type is AttributeType.NUMERIC:
        try:
            return to_number(value)
        except (TypeError, ValueError, OverflowError):
            shown = repr(value)
            if len(shown) > 80:
                shown = shown[:77] + "..."
            raise ElementError(
                f"set {set_tag!r}, attribute {attribute!r} is NUMERIC but got {type(value).__name__} {shown}"
            ) from None
    text = to_text(value)
    if text is not None and "\x00" in text:
        # MonetDB strings end at a NUL byte: refuse rather than store a truncated value
        raise ElementError(
            f"set {set_tag!r}, attribute {attribute!r}: the text contains a NUL character (\\x00), "
            "which MonetDB cannot store; remove or escape it"
        )
    return text


def infer_type(value: Any) -> AttributeType:
    """Type of an attribute that was not declared (a metric an integration found)."""
    if isinstance(value, bool):
        return AttributeType.TEXT
    try:
        to_number(value)
    except (TypeError, ValueError, OverflowError):
        return AttributeType.TEXT
    return AttributeType.TEXT if isinstance(value, str) else AttributeType.NUMERIC
