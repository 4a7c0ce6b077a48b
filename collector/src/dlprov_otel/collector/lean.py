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

import struct
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
    """(key, value) of encoded ``KeyValue`` attributes; raises what the full parse raises.

    The usual shapes (a short key; a string, double, small int or bool, or an array of them)
    are read here; the others are parsed together as the attributes of one span of a real
    request (the depth a body has them at)."""
    pairs = [_quick_pair(raw) for raw in raws]
    rest = [raw for raw, pair in zip(raws, pairs, strict=True) if pair is None]
    if not rest:
        return pairs  # type: ignore[return-value]
    span = b"".join(_field(9, raw) for raw in rest)
    request = ExportTraceServiceRequest()
    request.ParseFromString(_field(1, _field(2, _field(2, span))))
    parsed = iter([(kv.key, _decoded(kv.value)) for kv in request.resource_spans[0].scope_spans[0].spans[0].attributes])
    return [next(parsed) if pair is None else pair for pair in pairs]


_NO = object()  # not a shape _quick_pair reads
_double = struct.Struct("<d").unpack_from


def _quick_pair(raw: bytes) -> tuple[str, Any] | None:
    """(key, value) of a ``KeyValue`` encoded as the SDKs encode the usual attributes
    (field 1, the key, then field 2, the value, lengths under 128), else None. What is read
    here is exactly what upb would decode (the layout is checked to the last byte; strings
    are strict UTF-8); anything else is left to upb."""
    n = len(raw)
    if n < 4 or raw[0] != 0x0A or raw[1] > 0x7F:
        return None
    p = raw[1] + 2
    if p + 2 > n or raw[p] != 0x12 or raw[p + 1] > 0x7F or p + 2 + raw[p + 1] != n:
        return None
    try:
        key = raw[2:p].decode()
    except UnicodeDecodeError:
        return None
    if p + 2 == n:
        return key, None  # a value with nothing set
    value = _quick_array(raw, p + 2, n) if raw[p + 2] == 0x2A else _quick_scalar(raw, p + 2, n)  # 0x2A: an array
    return None if value is _NO else (key, value)


def _quick_scalar(b: bytes, i: int, end: int) -> Any:
    """The scalar ``AnyValue`` that is exactly ``b[i:end]`` (non-empty), or _NO."""
    tag = b[i]
    if tag == 0x21:  # double_value
        return _double(b, i + 1)[0] if end - i == 9 else _NO
    if tag == 0x0A:  # string_value
        if b[i + 1] > 0x7F or i + 2 + b[i + 1] != end:
            return _NO
        try:
            return b[i + 2 : end].decode()
        except UnicodeDecodeError:
            return _NO
    if end - i == 2 and b[i + 1] < 0x80:
        if tag == 0x18:  # int_value, 0..127
            return b[i + 1]
        if tag == 0x10 and b[i + 1] < 2:  # bool_value
            return b[i + 1] == 1
    return _NO


def _quick_array(b: bytes, i: int, end: int) -> Any:
    """The ``AnyValue`` holding an array of scalars that is exactly ``b[i:end]``, or _NO."""
    if i + 2 > end or b[i + 1] > 0x7F or i + 2 + b[i + 1] != end:
        return _NO
    j = i + 2
    values: list[Any] = []
    while j < end:
        if j + 2 > end or b[j] != 0x0A or b[j + 1] > 0x7F:
            return _NO
        k = j + 2 + b[j + 1]
        if k > end:
            return _NO
        value = None if k == j + 2 else _quick_scalar(b, j + 2, k)
        if value is _NO:
            return _NO
        values.append(value)
        j = k
    return tuple(values)


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
        spans: list[tuple[Any, str, str, list[bytes], dict[str, Any]]] = []
        encodings: list[bytes] = []
        check = False  # an id to check as decode.validate does (its message names the span)
        for rs in self.message.resource_spans:
            resource = None
            for ss in rs.scope_spans:
                for s in ss.spans:
                    trace_id, span_id = s.trace_id, s.span_id
                    if len(trace_id) != 16 or len(span_id) != 8 or not any(trace_id) or not any(span_id):
                        check = True
                    raws = list(s.attributes)
                    encodings += raws
                    if resource is None:
                        resource = _kv(rs.resource.attributes)
                    spans.append((s, trace_id.hex(), span_id.hex(), raws, resource))
        cache: dict[bytes, tuple[str, Any]] = {}
        if encodings:
            missing = list(dict.fromkeys(encodings))  # distinct, in order
            try:
                cache = dict(zip(missing, _decode_pairs(missing), strict=True))
            except (DecodeError, ValueError) as exc:
                raise _undecodable(self.body, exc) from None
        out: list[SpanRecord] = []
        kind_key = semconv.KIND
        pair = cache.__getitem__
        for s, trace_id, span_id, raws, resource in spans:
            parent = s.parent_span_id
            links = s.links
            if (parent and (len(parent) != 8 or not any(parent))) or links:
                check = True
            attrs = dict(map(pair, raws))  # in order: a repeated key keeps its last value
            if kind_key not in attrs:
                continue
            status = s.status
            out.append(
                SpanRecord(
                    trace_id,
                    span_id,
                    parent.hex() or None,
                    s.name,
                    s.start_time_unix_nano,
                    s.end_time_unix_nano,
                    attrs,
                    _STATUS.get(status.code, "UNSET"),
                    status.message,
                    [(lk.trace_id.hex(), lk.span_id.hex()) for lk in links] if links else [],
                    resource,
                )
            )
        if check:
            validate(self.full())
        return out


def _undecodable(body: bytes, exc: Exception) -> PayloadError:
    return PayloadError(400, f"the body is not a protobuf OTLP ExportTraceServiceRequest ({len(body)} bytes): {exc}")


def parse(body: bytes, content_type: str | None) -> LeanRequest | ExportTraceServiceRequest:
    """:func:`decode.parse`, lean for protobuf (the content type OTLP exporters send)."""
    ctype = (content_type or PROTOBUF_TYPES[0]).split(";")[0].strip().lower()
    if ctype in PROTOBUF_TYPES:
        return LeanRequest(body)
    return decode_parse(body, content_type)
