"""The collector's OTLP decoding on requests the SDK itself encodes: protobuf, OTLP/JSON with
hex ids, gzip and deflate; every request decodes to the records the in-process path makes."""

from __future__ import annotations

import base64
import gzip
import json
import zlib

import hypothesis.strategies as st
import pytest
from google.protobuf import json_format
from hypothesis import given

from dlprov_otel import Dataflow, DataSet, Element, Task, spool
from dlprov_otel.collector import decode
from dlprov_otel.records import from_otlp, from_readable_spans


@pytest.fixture
def recorded(memory, exec_tag):
    Dataflow("mnist", predefined=True).save()
    t0 = Task(0, "mnist", exec_tag, "loaddata")
    t0.add_dataset(DataSet("iinputdataset", [Element(["mnist", "keras"])]))
    t0.end()
    t1 = Task(1, "mnist", exec_tag, "testmodel", dependency=t0)  # a link
    t1.add_dataset(DataSet("otestmodel", [Element([0.5, 0.9]), Element([None, 0.8])]))
    t1.end()
    return memory.spans()


def otlp_json(request) -> bytes:
    """OTLP/JSON as an SDK would send it: protobuf's JSON mapping with hex trace and span ids."""
    doc = json_format.MessageToDict(request)
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for holder in [span, *span.get("links", [])]:
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in holder:
                            holder[key] = base64.b64decode(holder[key]).hex()
    return json.dumps(doc).encode()


def names_and_ids(records):
    return [(r.trace_id, r.span_id, r.parent_span_id, r.name, r.links) for r in records]


def test_protobuf_requests_decode_to_the_in_process_records(recorded):
    body = spool.encode(recorded)
    request = decode.parse(body, "application/x-protobuf")
    decode.validate(request)
    assert decode.span_count(request) == len(recorded)
    assert names_and_ids(from_otlp(request)) == names_and_ids(from_readable_spans(recorded))


def test_otlp_json_decodes_to_the_same_request(recorded):
    body = spool.encode(recorded)
    expected = decode.parse(body, "application/x-protobuf")
    from_json = decode.parse(otlp_json(expected), "application/json; charset=utf-8")
    decode.validate(from_json)
    assert from_json == expected


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "identity", None])
def test_compressed_bodies(recorded, encoding):
    body = spool.encode(recorded)
    packed = {"gzip": gzip.compress, "deflate": zlib.compress}.get(encoding, lambda b: b)(body)
    request = decode.parse(decode.decompress(packed, encoding, len(body)), None)  # protobuf by default
    assert decode.span_count(request) == len(recorded)


@given(st.binary(max_size=2000), st.sampled_from(["gzip", "deflate", "raw-deflate"]))
def test_decompress_round_trips_and_enforces_its_limit(data, encoding):
    if encoding == "gzip":
        packed = gzip.compress(data)
    elif encoding == "deflate":
        packed = zlib.compress(data)
    else:
        c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        packed = c.compress(data) + c.flush()
    header = "deflate" if encoding == "raw-deflate" else encoding
    assert decode.decompress(packed, header, len(data)) == data
    if data:
        with pytest.raises(decode.PayloadError, match="exceeds the limit") as err:
            decode.decompress(packed, header, len(data) - 1)
        assert err.value.status == 413


@given(st.binary(min_size=1, max_size=200))
def test_garbage_is_a_400_never_a_crash(body):
    for ctype in ("application/x-protobuf", "application/json"):
        try:
            decode.parse(body, ctype)
        except decode.PayloadError as err:
            assert err.status == 400
    with pytest.raises(decode.PayloadError) as err:
        decode.decompress(b"\x00" + body, "gzip", 10_000)
    assert err.value.status == 400


def test_unknown_types_and_encodings_are_415():
    with pytest.raises(decode.PayloadError) as err:
        decode.parse(b"{}", "text/plain")
    assert err.value.status == 415
    with pytest.raises(decode.PayloadError) as err:
        decode.decompress(b"x", "br", 100)
    assert err.value.status == 415


def test_ids_of_the_wrong_length_are_refused(recorded):
    request = decode.parse(spool.encode(recorded), None)
    request.resource_spans[0].scope_spans[0].spans[0].span_id = b"\x01" * 4
    with pytest.raises(decode.PayloadError, match=r"spans\[0\]\.span_id: expected 8 bytes, got 4"):
        decode.validate(request)
