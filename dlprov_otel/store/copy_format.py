"""MonetDB's ``COPY INTO ... FROM STDIN`` text format: rows encoded exactly, for bulk loads.

Fields are separated by ``,``, records by ``\n``; strings are always quoted with ``"`` and
backslash-escaped, so no separator ever appears raw inside a value; NULL is the unquoted word
``NULL`` (a quoted ``"NULL"`` or ``""`` stays a string: checked against MonetDB 11.45). NaN is
NULL (as everywhere in the store); span times (integer nanoseconds since the epoch) become
timestamps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from ..errors import StoreError

_NULL = "NULL"

_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _copy_text(v: Any) -> str:
    if v is None:
        return _NULL
    if type(v) is not str:
        v = str(v)
    if "\x00" in v:
        # MonetDB strings end at NUL: such a value can never be stored as given
        raise StoreError(f"a string value holds a NUL character, which MonetDB cannot store: {v[:40]!r}")
    return '"' + v.translate(_STRING_ESCAPES) + '"'


def _copy_float(v: Any) -> str:
    if v is None:
        return _NULL
    f = float(v)
    if f != f:
        return _NULL  # NaN is NULL
    if f in (float("inf"), float("-inf")):
        raise StoreError(f"MonetDB cannot store the double {f!r}")
    return repr(f)


def _copy_int(v: Any) -> str:
    return _NULL if v is None else str(int(v))


def _copy_bool(v: Any) -> str:
    return _NULL if v is None else ("true" if v else "false")


def _copy_timestamp(v: Any) -> str:
    if v is None:
        return _NULL
    if isinstance(v, int):  # nanoseconds since the epoch (span times)
        v = dt.datetime.fromtimestamp(v / 1e9, tz=dt.UTC).replace(tzinfo=None)
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(dt.UTC).replace(tzinfo=None)
        return v.isoformat(sep=" ")
    return _copy_text(v)


_ENCODERS: dict[str, Callable[[Any], str]] = {
    "double": _copy_float,
    "real": _copy_float,
    "float": _copy_float,
    "int": _copy_int,
    "bigint": _copy_int,
    "smallint": _copy_int,
    "tinyint": _copy_int,
    "hugeint": _copy_int,
    "boolean": _copy_bool,
    "timestamp": _copy_timestamp,
}


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def copy_statement(
    schema: str, table: str, columns: list[tuple[str, str]], data: dict[str, list[Any]], start: int, end: int
) -> str:
    """One ``COPY n RECORDS INTO schema.table (columns) FROM STDIN (columns)`` with rows ``start:end``
    inline (the second list names the input's fields: without it MonetDB expects every column).

    ``columns`` are (name, MonetDB type as sys.columns names it); ``data`` maps each name to
    its values. Raises StoreError for a value MonetDB can never store (a NUL, an infinity).
    """
    names = "(" + ", ".join(_ident(c) for c, _ in columns) + ")"
    fields = [list(map(_ENCODERS.get(t, _copy_text), data[c][start:end])) for c, t in columns]
    body = "\n".join(map(",".join, zip(*fields, strict=True)))
    return (
        f"COPY {end - start} RECORDS INTO {_ident(schema)}.{_ident(table)} {names} FROM STDIN {names} "
        f"USING DELIMITERS ',', E'\\n', '\"' NULL AS 'NULL';\n{body}\n"
    )
