"""Rows of ``execution_recipe`` from ``recipe`` spans (see :mod:`dlprov_otel.recipe`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import semconv
from ..records import SpanRecord
from .rows import ts


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value).replace("\x00", "")


def recipe_columns(records: Sequence[SpanRecord]) -> tuple[dict[str, list[Any]], int]:
    """The columns of ``execution_recipe`` for these recipe spans, and the row count."""
    names = ("execution_tag", "rank", "name", "value", "digest", "phase", "recorded_at", "trace_id", "span_id")
    cols: dict[str, list[Any]] = {k: [] for k in names}
    for r in records:
        a = r.attributes
        entries = list(a.get(semconv.RECIPE_NAMES) or ())
        values = list(a.get(semconv.RECIPE_VALUES) or ())
        digests = list(a.get(semconv.RECIPE_DIGESTS) or ())
        rank = a.get(semconv.RANK)
        for i, name in enumerate(entries):
            cols["execution_tag"].append(str(a.get(semconv.EXECUTION_TAG, "")))
            cols["rank"].append(int(rank) if rank is not None else None)
            cols["name"].append(_text(name))
            cols["value"].append(_text(values[i]) if i < len(values) else None)
            cols["digest"].append((_text(digests[i]) or None) if i < len(digests) else None)
            cols["phase"].append(_text(a.get(semconv.RECIPE_PHASE)))
            cols["recorded_at"].append(ts(r.end_ns))
            cols["trace_id"].append(r.trace_id)
            cols["span_id"].append(r.span_id)
    return cols, len(cols["name"])


__all__ = ["recipe_columns"]
