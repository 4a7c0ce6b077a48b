"""Decoding OTLP trace requests as they arrive over HTTP: encodings, protobuf and OTLP/JSON.

Every failure is a :class:`PayloadError` carrying the HTTP status to answer (400 for a payload
that cannot be decoded, 413 for one that is too large, 415 for an unknown encoding or type)
and a message that says what is wrong and where.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from dlprov_otel.http import HTTPError

PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf")
JSON_TYPES = ("application/json",)
_ID_BYTES = {"traceId": 16, "spanId": 8, "parentSpanId": 8}


class PayloadError(HTTPError):
    """A request body the collector refuses; ``status`` is the HTTP status to answer."""


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo ``Content-Encoding`` (identity, gzip, deflate), refusing output above ``limit``."""
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity", "none"):
        return body
    if enc in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif enc == "deflate":
        wbits = zlib.MAX_WBITS  # zlib-wrapped, as HTTP means it; raw deflate is tried below
    else:
        raise PayloadError(415, f"Content-Encoding {encoding!r} is not supported (use gzip, deflate or none)")
    try:
        return _inflate(body, wbits, limit)
    except zlib.error as exc:
        if enc == "deflate":
            try:
                return _inflate(body, -zlib.MAX_WBITS, limit)
            except zlib.error:
                pass
        raise PayloadError(400, f"the body is not valid {enc} data: {exc}") from None


def _inflate(body: bytes, wbits: int, limit: int) -> bytes:
    d = zlib.decompressobj(wbits)
    out = d.decompress(body, limit + 1)
    if len(out) > limit or d.unconsumed_tail:
        raise PayloadError(413, f"the decompressed body exceeds the limit of {limit} bytes")
    out += d.flush()
    if not d.eof:
        raise zlib.error("the compressed stream is truncated")
    return out


def parse(body: bytes, content_type: str | None) -> ExportTraceServiceRequest:
    """Decode an ``ExportTraceServiceRequest`` from protobuf or OTLP/JSON (hex ids).

    Ids are checked by :func:`validate` (the collector does it for gRPC requests too).
    """
    ctype = (content_type or PROTOBUF_TYPES[0]).split(";")[0].strip().lower()
    if ctype in PROTOBUF_TYPES:
        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(body)
        except (DecodeError, ValueError) as exc:
            raise PayloadError(
                400, f"the body is not a protobuf OTLP ExportTraceServiceRequest ({len(body)} bytes): {exc}"
            ) from None
    elif ctype in JSON_TYPES:
        request = parse_json(body)
    else:
        raise PayloadError(
            415, f"Content-Type {content_type!r} is not supported: use application/x-protobuf or application/json"
        )
    return request


def parse_json(body: bytes) -> ExportTraceServiceRequest:
    """OTLP/JSON: like protobuf's JSON mapping, except that trace and span ids are hex."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(400, f"the body is not valid JSON: {exc}") from None
    except RecursionError:  # malformed for us: nesting deeper than any OTLP request
        raise PayloadError(400, "the body is not an OTLP/JSON request: it nests too deeply") from None
    if not isinstance(doc, dict):
        raise PayloadError(400, f"an OTLP/JSON request is an object, got {type(doc).__name__}")
    for path, holder in _id_holders(doc):
        for key, size in _ID_BYTES.items():
            for name in (key, _snake(key)):
                if name in holder:
                    holder[name] = _hex_to_base64(holder[name], size, f"{path}.{name}")
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(doc, request, ignore_unknown_fields=True)
    except RecursionError:
        raise PayloadError(400, "the body is not an OTLP/JSON request: it nests too deeply") from None
    except json_format.ParseError as exc:
        raise PayloadError(400, f"the body is not an OTLP/JSON ExportTraceServiceRequest: {exc}") from None
    return request


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _id_holders(doc: dict[str, Any]):
    """Yield (path, object) for every span and span link of an OTLP/JSON document."""
    for i, rs in enumerate(_list(doc, "resourceSpans", "resource_spans")):
        for j, ss in enumerate(_list(rs, "scopeSpans", "scope_spans")):
            for k, span in enumerate(_list(ss, "spans")):
                path = f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}]"
                if not isinstance(span, dict):
                    raise PayloadError(400, f"{path} is not an object")
                yield path, span
                for m, link in enumerate(_list(span, "links")):
                    if not isinstance(link, dict):
                        raise PayloadError(400, f"{path}.links[{m}] is not an object")
                    yield f"{path}.links[{m}]", link


def _list(obj: Any, *names: str) -> list[Any]:
    if not isinstance(obj, dict):
        return []
    for name in names:
        if name in obj:
            value = obj[name]
            if not isinstance(value, list):
                raise PayloadError(400, f"{name} must be a list, got {type(value).__name__}")
            return value
    return []


def _hex_to_base64(value: Any, size: int, path: str) -> str:
    if value in ("", None):
        return ""
    if not isinstance(value, str) or len(value) != 2 * size:
        raise PayloadError(400, f"{path}: expected {2 * size} hex digits, got {value!r}")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise PayloadError(400, f"{path}: expected {2 * size} hex digits, got {value!r}") from None
    return base64.b64encode(raw).decode()


def validate(request: ExportTraceServiceRequest) -> None:
    """Refuse spans whose ids cannot be stored (wrong length, all zero)."""
    for i, rs in enumerate(request.resource_spans):
        for j, ss in enumerate(rs.scope_spans):
            for k, span in enumerate(ss.spans):
                where = f"resource_spans[{i}].scope_spans[{j}].spans[{k}]"
                _check_id(span.trace_id, 16, f"{where}.trace_id")
                _check_id(span.span_id, 8, f"{where}.span_id")
                if span.parent_span_id:
                    _check_id(span.parent_span_id, 8, f"{where}.parent_span_id")
                for m, link in enumerate(span.links):
                    _check_id(link.trace_id, 16, f"{where}.links[{m}].trace_id")
                    _check_id(link.span_id, 8, f"{where}.links[{m}].span_id")


def _check_id(value: bytes, size: int, where: str) -> None:
    if len(value) != size:
        raise PayloadError(400, f"{where}: expected {size} bytes, got {len(value)}")
    if not any(value):
        raise PayloadError(400, f"{where} is all zeros (an invalid id)")


def span_count(request: ExportTraceServiceRequest) -> int:
    """Spans in a request, ours or not."""
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


__all__ = ["PayloadError", "decompress", "parse", "parse_json", "span_count", "validate"]
