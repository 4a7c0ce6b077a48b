"""Column appends into embedded MonetDB without monetdbe's per-value string conversion.

``monetdbe.Connection.append`` takes a numpy unicode array per string column and turns it
into a matrix of UTF-8 rows (``np.char.encode``, one Python call per value, then a padded
copy); with the trace, span and element ids of every row that was most of the collector's
append time. Here a string column is encoded in one go (its values joined by NUL bytes and
encoded once), and monetdbe gets pointers into that buffer, NULL for a NULL value. Other
columns are passed as monetdbe passes them (numpy arrays; NaN, NaT and the integer type's
minimum are NULL). The same C function (``monetdbe_append``) does the append.

:func:`append` returns False, having done nothing, for what it does not handle (a column
type other than strings, integers, doubles and timestamps, a value that is not a
string in a string column, a string with a NUL byte, a monetdbe without these internals):
the caller then uses monetdbe's own append.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

try:  # monetdbe 0.11's internals; without them every append takes monetdbe's own path
    from monetdbe._cffi.errors import check_error
    from monetdbe._cffi.internal import ffi, lib
except ImportError:  # pragma: no cover - another monetdbe
    ffi = lib = check_error = None

STRING_TYPES = frozenset(("clob", "varchar", "char"))
_INTS = {"int": np.int32, "bigint": np.int64, "smallint": np.int16, "tinyint": np.int8}
_C_INTS = {"int": "int32_t", "bigint": "int64_t", "smallint": "int16_t", "tinyint": "int8_t"}


def _string_column(values: Sequence[Any], keep: list[Any]) -> Any:
    """``char *[]`` into one UTF-8 buffer of ``values`` (None: NULL), or None when a value is
    not a string or holds a NUL byte."""
    n = len(values)
    has_null = None in values
    texts = ["" if v is None else v for v in values] if has_null else values
    try:
        buf = ("\0".join(texts) + "\0").encode()
    except (TypeError, UnicodeEncodeError):
        return None
    ends = np.flatnonzero(np.frombuffer(buf, dtype=np.uint8) == 0)
    if len(ends) != n:  # a value with a NUL byte of its own
        return None
    cbuf = ffi.from_buffer("char[]", buf)
    ptrs = np.empty(n, dtype=np.uint64)
    ptrs[0] = 0
    ptrs[1:] = ends[:-1] + 1
    ptrs += np.uint64(int(ffi.cast("uintptr_t", cbuf)))
    if has_null:
        ptrs[np.fromiter((v is None for v in values), dtype=bool, count=n)] = 0
    keep.extend((buf, cbuf, ptrs))
    return ffi.from_buffer("char *[]", ptrs)


def _fixed_column(values: Sequence[Any], sql_type: str, keep: list[Any]) -> tuple[int, Any] | None:
    if sql_type == "double":
        arr = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        keep.append(arr)
        return lib.monetdbe_double, ffi.from_buffer("double *", arr)
    if sql_type in _INTS:
        dtype = _INTS[sql_type]
        nil = np.iinfo(dtype).min  # MonetDB's NULL of the type
        arr = np.array([nil if v is None else v for v in values], dtype=dtype)
        keep.append(arr)
        return getattr(lib, f"monetdbe_{_C_INTS[sql_type]}"), ffi.from_buffer(f"{_C_INTS[sql_type]} *", arr)
    return None


def append(
    con: Any, schema: str, table: str, columns: list[tuple[str, str]], data: dict[str, Sequence[Any]], n: int
) -> bool:
    """Append ``n`` rows (``data``: column -> values) to ``schema.table`` on monetdbe
    connection ``con``; False when this cannot (nothing was done)."""
    internal = getattr(con, "_internal", None)
    if lib is None or internal is None or n == 0:
        return False
    db = internal._monetdbe_database
    keep: list[Any] = []  # every buffer monetdbe reads from, alive until it returns
    work = ffi.new(f"monetdbe_column *[{len(columns)}]")
    for i, (name, sql_type) in enumerate(columns):
        values = data[name]
        if len(values) != n:
            return False
        col = ffi.new("monetdbe_column *")
        col.count = n
        col.name = cname = ffi.new("char[]", name.encode())
        keep.extend((col, cname))
        if sql_type in STRING_TYPES:
            strings = _string_column(values, keep)
            if strings is None:
                return False
            col.type, col.data = lib.monetdbe_str, strings
        elif sql_type == "timestamp":  # nanoseconds or datetimes; None is NaT, i.e. NULL
            arr = np.array(values, dtype="datetime64[ns]")
            stamps = ffi.new("monetdbe_data_timestamp[]", n)
            keep.extend((arr, stamps))
            internal._switch()
            lib.initialize_timestamp_array_from_numpy(
                db, stamps, n, ffi.from_buffer("int64_t *", arr), b"ns", lib.monetdbe_timestamp
            )
            col.type = lib.monetdbe_timestamp
            col.data = stamps
        else:
            fixed = _fixed_column(values, sql_type, keep)
            if fixed is None:
                return False
            col.type, col.data = fixed
        work[i] = col
    live = list(internal.get_columns(schema=schema, table=table))
    if live != [(name, work[i].type) for i, (name, _) in enumerate(columns)]:
        return False  # the table is not as cached: monetdbe's own append checks and converts
    internal._switch()
    check_error(lib.monetdbe_append(db, schema.encode(), table.encode(), work, len(columns)))
    return True
