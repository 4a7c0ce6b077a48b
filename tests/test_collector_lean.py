"""The collector's lean protobuf decode (collector/lean.py) against the full parse.

For valid requests (SDK spans of every kind, links, events, nested values, non-DLProv spans)
it must give the records that ``from_otlp`` gives; for thousands of mutated requests it must
accept exactly those the full parse and ``decode.validate`` accept (else a 400), with the
same records. In process, so it runs in seconds.
"""

from __future__ import annotations

import os
import random
import time

import pytest
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from dlprov_otel.collector import decode, lean
from dlprov_otel.records import from_otlp
from tests.collector_proc import dataset_request, declare_request
from tests.test_collector_fuzz import BYTE_MUTATIONS

SEED = int(os.environ.get("DLPROV_FUZZ_SEED") or time.time_ns() % 1_000_000)
N = int(os.environ.get("DLPROV_FUZZ_N") or 2500) * 4


def full_records(body: bytes):
    """What the full parse makes of ``body``: records, or the PayloadError status."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, ValueError, RecursionError):
        return 400
    try:
        decode.validate(request)
    except decode.PayloadError as exc:
        return exc.status
    return from_otlp(request)


def lean_records(body: bytes):
    try:
        return lean.LeanRequest(body).records()
    except decode.PayloadError as exc:
        return exc.status


def odd_request() -> bytes:
    """Links, events, nested and empty values, a repeated key, a span that is not DLProv."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "odd"
    ss = rs.scope_spans.add()
    for i in range(3):
        span = ss.spans.add(trace_id=bytes([1] * 16), span_id=bytes([i + 1] * 8), name=f"s{i}",
                            start_time_unix_nano=5, end_time_unix_nano=9)
        span.attributes.add(key="dlprov.span.kind").value.string_value = "dataset" if i else "other"
        kv = span.attributes.add(key="nested")
        kv.value.kvlist_value.values.add(key="a").value.array_value.values.add().int_value = -3
        kv.value.kvlist_value.values.add(key="b").value.bytes_value = b"\x00\xff"
        span.attributes.add(key="empty").value.CopyFrom(common_pb2.AnyValue())
        span.attributes.add(key="dup").value.int_value = 1
        span.attributes.add(key="dup").value.double_value = 2.5  # the last one wins
        span.attributes.add(key="flag").value.bool_value = True
        span.attributes.add(key="big").value.int_value = 2**62
        for key, value in (("small", 127), ("two-bytes", 128), ("negative", -1), ("zero", 0)):
            span.attributes.add(key=key).value.int_value = value
        span.attributes.add(key="off").value.bool_value = False
        span.attributes.add(key="ünïcode ✓").value.string_value = "välue 🙂"
        span.attributes.add(key="blank").value.string_value = ""
        span.attributes.add(key="long").value.string_value = "x" * 300
        mixed = span.attributes.add(key="mixed").value.array_value.values
        mixed.add().double_value = -0.5
        mixed.add().string_value = "s"
        mixed.add()  # an element with nothing set
        mixed.add().bool_value = True
        mixed.add().int_value = 7
        span.attributes.add(key="no-elements").value.array_value.SetInParent()
        span.links.add(trace_id=bytes([2] * 16), span_id=bytes([3] * 8))
        span.events.add(name="e", time_unix_nano=7)
        span.status.CopyFrom(trace_pb2.Status(code=2, message="boom"))
    ss.spans.add(trace_id=bytes([4] * 16), span_id=bytes([5] * 8), name="bare")
    request.resource_spans.add()  # empty
    return request.SerializeToString()


@pytest.mark.parametrize("body", [declare_request(), dataset_request(7, "lean"), odd_request()],
                         ids=["declare", "dataset", "odd"])
def test_valid_requests_give_the_records_of_the_full_parse(body):
    expected = full_records(body)
    assert isinstance(expected, list) and expected
    assert repr(lean_records(body)) == repr(expected)  # repr: True is not 1, nor 1.0 1
    assert lean.LeanRequest(body).span_count() == decode.span_count(ExportTraceServiceRequest.FromString(body))


def test_mutated_requests_are_accepted_exactly_when_the_full_parse_accepts_them():
    rng = random.Random(SEED)
    seeds = [dataset_request(rng.randint(1, 4), f"lean-{i}") for i in range(10)] + [odd_request(), declare_request()]
    counts = {"valid": 0, "invalid": 0}
    for i in range(N):
        body = rng.choice(BYTE_MUTATIONS)(rng, rng.choice(seeds))
        expected = full_records(body)
        got = lean_records(body)
        assert repr(got) == repr(expected), f"seed {SEED}, mutation {i}: lean {got!r:.200} != full {expected!r:.200}"
        counts["valid" if isinstance(expected, list) else "invalid"] += 1
    assert counts["valid"] > N // 20 and counts["invalid"] > N // 4, counts
