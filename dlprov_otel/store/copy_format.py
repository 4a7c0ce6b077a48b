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

import numpy as np

from ..errors import StoreError

_NULL = "NULL"
_EPOCH = dt.datetime(1970, 1, 1)

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
    if isinstance(v, int):  # nanoseconds since the epoch (span times), to the microsecond below
        v = _EPOCH + dt.timedelta(microseconds=v // 1000)
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
_SPECIAL = ("\\", '"', "\n", "\r", "\t")


# Whole-column encoders: the common cases (no NULL, plain strings, finite floats) in a few C-level
# passes; anything else falls back to the per-value encoders above, which define the format.
def _text_column(values: list[Any]) -> list[str]:
    if not all(type(v) is str for v in values):
        return list(map(_copy_text, values))
    joined = "\x00".join(values)
    if joined.count("\x00") != len(values) - 1:
        return list(map(_copy_text, values))  # a value holds a NUL: raises, naming it
    if any(c in joined for c in _SPECIAL):
        joined = joined.translate(_STRING_ESCAPES)
    return ('"' + joined.replace("\x00", '"\x00"') + '"').split("\x00")


def _float_column(values: list[Any]) -> list[str]:
    if None in values:
        return list(map(_copy_float, values))
    try:
        out = list(map(repr, map(float, values)))
    except (TypeError, ValueError):
        return list(map(_copy_float, values))  # raises, naming the value
    if "nan" in out or "inf" in out or "-inf" in out:
        return list(map(_copy_float, values))
    return out


def _int_column(values: list[Any]) -> list[str]:
    if None in values:
        return list(map(_copy_int, values))
    return list(map(str, map(int, values)))


def _timestamp_column(values: list[Any]) -> list[str]:
    if not all(type(v) is int for v in values):
        return list(map(_copy_timestamp, values))
    micros = np.array(values, dtype=np.int64) // 1000
    return [t.replace("T", " ") for t in np.datetime_as_string(micros.astype("datetime64[us]"), unit="us").tolist()]


def _column(values: list[Any], sql_type: str) -> list[str]:
    if values.count(None) == len(values):
        return [_NULL] * len(values)
    if sql_type in ("double", "real", "float"):
        return _float_column(values)
    if sql_type in ("int", "bigint", "smallint", "tinyint", "hugeint"):
        return _int_column(values)
    if sql_type == "timestamp":
        return _timestamp_column(values)
    encode = _ENCODERS.get(sql_type)
    return _text_column(values) if encode is None else list(map(encode, values))


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
    fields = [_column(data[c][start:end], t) for c, t in columns]
    body = "\n".join(map(",".join, zip(*fields, strict=True)))
    return (
        f"COPY {end - start} RECORDS INTO {_ident(schema)}.{_ident(table)} {names} FROM STDIN {names} "
        f"USING DELIMITERS ',', E'\\n', '\"' NULL AS 'NULL';\n{body}\n"
    )
