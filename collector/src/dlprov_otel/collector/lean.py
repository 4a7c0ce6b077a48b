"""A lean decode of OTLP/protobuf trace requests: span records without a Python object per attribute.

Walking ``span.attributes`` of a parsed ``ExportTraceServiceRequest`` makes upb build one
Python wrapper per ``KeyValue`` (about 0.5 us each, 13 per dataset span), which was the
collector's largest cost per span. Here the body is parsed with a twin of the request type
whose ``Span.attributes`` is ``repeated bytes``: the same wire format, but each attribute
arrives as its encoded bytes. Those are decoded once per distinct encoding in a request
(the kind, the tags, the attribute names repeat in every span of a batch); the encodings
not seen before are decoded together, in one real ``ExportTraceServiceRequest`` that nests
them as deep as the body does, so what decodes (UTF-8 strings, nesting limits) is exactly
what the full parse accepts.

The records are the ones :func:`dlprov_otel.records.from_otlp` makes of the full parse
(tests compare them); :meth:`LeanRequest.full` parses the body fully when it is needed
(spans set aside as rejects).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1 import trace_pb2

from dlprov_otel import semconv
from dlprov_otel.records import _STATUS, SpanRecord, _decoded, _kv

from .decode import PROTOBUF_TYPES, PayloadError, validate
from .decode import parse as decode_parse

_PACKAGE = "dlprov.collector.lean"
_OTLP = ".opentelemetry.proto"


def _lean_types() -> Any:
    """The lean request type: ``ExportTraceServiceRequest`` with ``Span.attributes`` as bytes."""
    fd = descriptor_pb2.FileDescriptorProto(name="dlprov/collector/lean_trace.proto", package=_PACKAGE,
                                            syntax="proto3")
    fd.dependency.extend([trace_pb2.DESCRIPTOR.name, *(d.name for d in trace_pb2.DESCRIPTOR.dependencies)])
    span = fd.message_type.add()
    trace_pb2.Span.DESCRIPTOR.CopyToProto(span)
    del span.nested_type[:]  # Event and Link: the real ones
    del span.enum_type[:]  # SpanKind: the real one
    for f in span.field:
        if f.name == "attributes":
            f.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
            f.ClearField("type_name")
        elif f.type_name:  # relative names of the original file: make them absolute
            real = trace_pb2.Span.DESCRIPTOR.fields_by_name[f.name]
            target = real.message_type or real.enum_type
            f.type_name = "." + target.full_name
    scope = fd.message_type.add(name="ScopeSpans")
    trace_pb2.ScopeSpans.DESCRIPTOR.CopyToProto(scope)
    resource = fd.message_type.add(name="ResourceSpans")
    trace_pb2.ResourceSpans.DESCRIPTOR.CopyToProto(resource)
    for msg, real in ((scope, trace_pb2.ScopeSpans), (resource, trace_pb2.ResourceSpans)):
        for f in msg.field:
            if f.type_name:
                target = real.DESCRIPTOR.fields_by_name[f.name].message_type
                inner = target.name if target.name in ("Span", "ScopeSpans") else None
                f.type_name = f".{_PACKAGE}.{inner}" if inner else "." + target.full_name
    request = fd.message_type.add(name="Request")
    request.field.add(name="resource_spans", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                      label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
                      type_name=f".{_PACKAGE}.ResourceSpans")
    pool = descriptor_pool.Default()
    try:
        file = pool.FindFileByName(fd.name)
    except KeyError:
        file = pool.AddSerializedFile(fd.SerializeToString())
    return message_factory.GetMessageClass(file.message_types_by_name["Request"])


LeanMessage = _lean_types()
_KIND = semconv.KIND.encode()


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _decode_pairs(raws: list[bytes]) -> list[tuple[str, Any]]:
    """(key, value) of encoded ``KeyValue`` attributes, parsed as the attributes of one span
    of a real request (the depth a body has them at); raises what the full parse raises."""
    span = b"".join(_field(9, raw) for raw in raws)
    body = _field(1, _field(2, _field(2, span)))
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    attributes = request.resource_spans[0].scope_spans[0].spans[0].attributes
    return [(kv.key, _decoded(kv.value)) for kv in attributes]


class LeanRequest:
    """A protobuf OTLP trace request, parsed lean (see the module's text)."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.message = LeanMessage()
        try:
            self.message.ParseFromString(body)
        except (DecodeError, ValueError) as exc:
            raise _undecodable(body, exc) from None
        self._full: ExportTraceServiceRequest | None = None

    def full(self) -> ExportTraceServiceRequest:
        """The body as a real ``ExportTraceServiceRequest``."""
        if self._full is None:
            full = ExportTraceServiceRequest()
            try:
                full.ParseFromString(self.body)
            except (DecodeError, ValueError) as exc:  # not expected: the lean parse took it
                raise _undecodable(self.body, exc) from None
            self._full = full
        return self._full

    def span_count(self) -> int:
        return sum(len(ss.spans) for rs in self.message.resource_spans for ss in rs.scope_spans)

    def records(self) -> list[SpanRecord]:
        """Validated ids (as :func:`decode.validate`), then the DLProv spans as records."""
        cache: dict[bytes, tuple[str, Any]] = {}
        spans: list[tuple[Any, list[bytes], dict[str, Any]]] = []
        missing: dict[bytes, None] = {}
        check = False  # an id to check as decode.validate does (its message names the span)
        for rs in self.message.resource_spans:
            resource = None
            for ss in rs.scope_spans:
                for s in ss.spans:
                    trace_id, span_id, parent = s.trace_id, s.span_id, s.parent_span_id
                    if len(trace_id) != 16 or len(span_id) != 8 or not any(trace_id) or not any(span_id) or (
                        parent and (len(parent) != 8 or not any(parent))
                    ) or len(s.links):
                        check = True
                    raws = list(s.attributes)
                    for raw in raws:
                        if raw not in missing:
                            missing[raw] = None
                    if resource is None:
                        resource = _kv(rs.resource.attributes)
                    spans.append((s, raws, resource))
        if missing:
            try:
                cache.update(zip(missing, _decode_pairs(list(missing)), strict=True))
            except (DecodeError, ValueError) as exc:
                raise _undecodable(self.body, exc) from None
        if check:
            validate(self.full())
        out: list[SpanRecord] = []
        kind_key = semconv.KIND
        for s, raws, resource in spans:
            attrs: dict[str, Any] = {}
            for raw in raws:
                key, value = cache[raw]
                attrs[key] = value
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


def _undecodable(body: bytes, exc: Exception) -> PayloadError:
    return PayloadError(400, f"the body is not a protobuf OTLP ExportTraceServiceRequest ({len(body)} bytes): {exc}")


def parse(body: bytes, content_type: str | None) -> LeanRequest | ExportTraceServiceRequest:
    """:func:`decode.parse`, lean for protobuf (the content type OTLP exporters send)."""
    ctype = (content_type or PROTOBUF_TYPES[0]).split(";")[0].strip().lower()
    if ctype in PROTOBUF_TYPES:
        return LeanRequest(body)
    return decode_parse(body, content_type)
