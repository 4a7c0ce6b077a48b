"""Row helpers of the writer: merging catalog rows that arrive in pieces (marker spans and the
long spans they belong to, in any order), upserts, and the normalized shape of a dataset span.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import semconv
from ..errors import SpecError
from ..model import AttributeType, normalize_tag
from .backends import Backend
from .schema import quote_ident

logger = logging.getLogger(__name__)

FINAL = (semconv.FINISHED, semconv.FAILED)
IN_CHUNK = 400  # values per IN (...) list


def ts(ns: int | None) -> dt.datetime | None:
    """Nanoseconds since the epoch as the naive UTC timestamp the store keeps."""
    if not ns:
        return None
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).replace(tzinfo=None)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def merge_status(old: str | None, new: str | None) -> str | None:
    """A final status (FINISHED, FAILED) is not overwritten by a marker's RUNNING."""
    if old in FINAL and new not in FINAL:
        return old
    return new or old


def merge_row(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """``new`` over ``old``: known values kept, the earliest start, the final status."""
    if old is None:
        return dict(new)
    out = dict(old)
    for k, v in new.items():
        if k == "status":
            out[k] = merge_status(old.get(k), v)
        elif k == "start_time" and old.get(k) and v:
            out[k] = min(old[k], v)
        elif v is not None:
            out[k] = v
    return out


def _key_condition(keys: list[str], n: int) -> str:
    return " OR ".join("(" + " AND ".join(f"{quote_ident(k)} = ?" for k in keys) + ")" for _ in range(n))


def upsert(
    backend: Backend,
    table: str,
    cols: list[str],
    keys: list[str],
    rows: list[dict[str, Any]],
    keep_existing: bool = False,
) -> None:
    """Merge ``rows`` with the stored rows of the same keys (delete + insert) in ``table``
    (a qualified name whose columns are ``cols``)."""
    if not rows:
        return
    existing: dict[tuple, dict[str, Any]] = {}
    for i in range(0, len(rows), IN_CHUNK):
        chunk = rows[i : i + IN_CHUNK]
        params = [row[k] for row in chunk for k in keys]
        names, found = backend.fetch(f"SELECT * FROM {table} WHERE {_key_condition(keys, len(chunk))}", params)
        for f in found:
            d = dict(zip(names, f, strict=False))
            existing[tuple(d[k] for k in keys)] = d
    final: list[dict[str, Any]] = []
    for row in rows:
        old = existing.get(tuple(row[k] for k in keys))
        if old is not None and keep_existing:
            continue
        final.append(merge_row(old, row) if old else row)
    stale = [r for r in final if tuple(r[k] for k in keys) in existing]
    for i in range(0, len(stale), IN_CHUNK):
        chunk = stale[i : i + IN_CHUNK]
        backend.execute(
            f"DELETE FROM {table} WHERE {_key_condition(keys, len(chunk))}", [r[k] for r in chunk for k in keys]
        )
    # SQL INSERT, not the bulk append: monetdbe's append into a table that has deleted
    # rows corrupts it (rows of NULLs, then "project_bte: does not match always")
    names = ", ".join(quote_ident(c) for c in cols)
    row_ph = "(" + ", ".join("?" for _ in cols) + ")"
    for i in range(0, len(final), 100):
        chunk = final[i : i + 100]
        backend.execute(
            f"INSERT INTO {table} ({names}) VALUES " + ", ".join(row_ph for _ in chunk),
            [r.get(c) for r in chunk for c in cols],
        )


def columnar(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    keys = list(rows[0])
    return {k: [r.get(k) for r in rows] for k in keys}


def as_float(v: Any, set_tag: str, column: str) -> float | None:
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        logger.warning("DLProv: %s.%s expects a number, got %r: stored as NULL", set_tag, column, v)
        return None


# --- dataset spans ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Shape:
    """The attribute list of a dataset emission, normalized once per distinct list."""

    names: tuple[str, ...]
    types: tuple[AttributeType, ...]
    keys: tuple[str, ...]  # span attribute keys of the values


@dataclass
class Group:
    """Rows (tuples) of one relation that share an attribute list."""

    shape: Shape
    rows: list[tuple] = field(default_factory=list)


_shapes: dict[tuple[tuple[str, ...], tuple[str, ...]], Shape] = {}
_ATTR_TYPES = {t.value: t for t in AttributeType}


def shape(raw_names: Sequence[str], raw_types: Sequence[str], span_id: str) -> Shape:
    key = (tuple(raw_names), tuple(raw_types))
    found = _shapes.get(key)
    if found is None:
        names = tuple(tag(n, "attribute name") for n in raw_names)
        types = tuple(_ATTR_TYPES.get(t) for t in raw_types)
        if len(types) != len(names) or None in types:
            raise SpecError(
                f"dataset span {span_id}: attribute names {list(names)} do not match types {list(raw_types)}"
            )
        if len(_shapes) > 10_000:
            _shapes.clear()
        found = _shapes[key] = Shape(names, types, tuple(semconv.DATA_PREFIX + n for n in raw_names))  # type: ignore[arg-type]
    return found


@functools.lru_cache(maxsize=4096)
def tag(value: Any, what: str) -> str:
    return normalize_tag(value, what)
