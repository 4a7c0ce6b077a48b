"""One neutral shape for a finished span, decoded from the SDK or from OTLP.

The in-process exporter sees ``ReadableSpan`` objects, the collector and the spool see OTLP
protobuf; both become :class:`SpanRecord` and go through the same store code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import semconv


@dataclass
class SpanRecord:
    """A finished span, reduced to what the store needs."""

    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str | None
    name: str
    start_ns: int
    end_ns: int
    attributes: Mapping[str, Any]
    status_code: str = "UNSET"  # UNSET, OK, ERROR
    status_message: str = ""
    links: list[tuple[str, str]] = field(default_factory=list)
    resource: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str | None:
        return self.attributes.get(semconv.KIND)

    def attr(self, key: str, default: Any = None) -> Any:
        """A span attribute, falling back to the resource (``host.name`` and the like)."""
        if key in self.attributes:
            return self.attributes[key]
        return self.resource.get(key, default)


def _hex_trace(value: int) -> str:
    return format(value, "032x")


def _hex_span(value: int) -> str:
    return format(value, "016x")


def from_readable_spans(spans: Sequence[Any]) -> list[SpanRecord]:
    """Decode SDK ``ReadableSpan`` objects (the in-process exporter's input)."""
    out: list[SpanRecord] = []
    resources: dict[int, dict[str, Any]] = {}  # one resource is shared by every span of a provider
    for s in spans:
        # An ended span's attributes no longer change; read the SDK's own dict when it has
        # one (the public mapping proxy costs ~1 us per lookup on the store's hot path).
        raw = getattr(getattr(s, "_attributes", None), "_dict", None)
        attrs = raw if isinstance(raw, dict) else (s.attributes or {})
        if semconv.KIND not in attrs:
            continue  # not ours: another instrumentation's span
        ctx = s.context
        res = s.resource
        resource = resources.get(id(res))
        if resource is None:
            resource = resources[id(res)] = dict(res.attributes) if res else {}
        status = s.status
        out.append(
            SpanRecord(
                format(ctx.trace_id, "032x"),
                format(ctx.span_id, "016x"),
                format(s.parent.span_id, "016x") if s.parent else None,
                s.name,
                s.start_time or 0,
                s.end_time or s.start_time or 0,
                attrs,
                status.status_code.name,
                status.description or "",
                [(_hex_trace(lk.context.trace_id), _hex_span(lk.context.span_id)) for lk in s.links] if s.links else [],
                resource,
            )
        )
    return out


def _any_value(v: Any) -> Any:
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_any_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return bytes(v.bytes_value)
    return getattr(v, which)


def _kv(pairs: Iterable[Any]) -> dict[str, Any]:
    return {kv.key: _any_value(kv.value) for kv in pairs}


_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}


def _kv_cached(pairs: Iterable[Any], cache: dict[bytes, tuple[str, Any]]) -> dict[str, Any]:
    """Like :func:`_kv`, through ``cache`` (a key-value pair's encoding -> its decoded pair):
    the spans of a batch repeat most of their attributes (kind, tags, names, types), and
    encoding a pair again in C costs a fraction of decoding it in Python."""
    out: dict[str, Any] = {}
    for kv in pairs:
        raw = kv.SerializeToString()
        hit = cache.get(raw)
        if hit is None:
            hit = cache[raw] = (kv.key, _decoded(kv.value))
        out[hit[0]] = hit[1]
    return out


def _decoded(v: Any) -> Any:
    """``_any_value`` with scalars and arrays of scalars inline (one walk of a few C calls)."""
    which = v.WhichOneof("value")
    if which == "array_value":
        values = []
        for x in v.array_value.values:
            w = x.WhichOneof("value")
            if w is None:
                values.append(None)
            elif w in _SCALARS:
                values.append(getattr(x, w))
            else:
                values.append(_any_value(x))
        return tuple(values)  # shared by the spans of the batch: never changed in place
    if which in _SCALARS:
        return getattr(v, which)
    return _any_value(v)


_SCALARS = frozenset(("string_value", "bool_value", "int_value", "double_value"))


def from_otlp(request: Any) -> list[SpanRecord]:
    """Decode an OTLP ``ExportTraceServiceRequest`` (collector, spool)."""
    out: list[SpanRecord] = []
    cache: dict[bytes, tuple[str, Any]] = {}
    kind_key = semconv.KIND
    for rs in request.resource_spans:
        resource = _kv(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                attrs = _kv_cached(s.attributes, cache)
                if kind_key not in attrs:
                    continue
                status = s.status
                out.append(
                    SpanRecord(
                        s.trace_id.hex(),
                        s.span_id.hex(),
                        s.parent_span_id.hex() or None,
                        s.name,
                        s.start_time_unix_nano,
                        s.end_time_unix_nano,
                        attrs,
                        _STATUS.get(status.code, "UNSET"),
                        status.message,
                        [(lk.trace_id.hex(), lk.span_id.hex()) for lk in s.links] if len(s.links) else [],
                        resource,
                    )
                )
    return out
