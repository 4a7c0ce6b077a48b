"""Fuzzing the collector (issue 14): thousands of mutated valid OTLP payloads to a real process.

A seeded mutator (bit flips, truncations, inserted and dropped bytes, swapped byte ranges; in
OTLP/JSON also swapped and retyped fields) corrupts valid DLProv requests in protobuf and JSON.
Every answer must be 200 for a payload that still decodes (maybe a partial success) and 400
for one that does not; never a 5xx, never a crash: the process stays up, ``/health`` says ok,
and a valid request after the storm is stored. ``DLPROV_FUZZ_SEED`` replays a run.
"""

from __future__ import annotations

import copy
import http.client
import json
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from dlprov_otel import client
from tests.collector_proc import CollectorProcess, dataset_request, start_collector

pytestmark = pytest.mark.collector

PER_ENCODING = int(os.environ.get("DLPROV_FUZZ_N") or 2500)  # mutated payloads per encoding
SEED = int(os.environ.get("DLPROV_FUZZ_SEED") or time.time_ns() % 1_000_000)
PROTOBUF = "application/x-protobuf"
JSON = "application/json"


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    col = start_collector(tmp_path_factory.mktemp("fuzz"), extra_args=["--max-body", "1MiB"])
    yield col
    assert col.stop() == 0, col.log_tail()


class Poster:
    """POSTs over one keep-alive connection, reconnecting when the collector hangs up."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def post(self, body: bytes, ctype: str) -> tuple[int, bytes]:
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self.conn.request("POST", "/v1/traces", body, {"Content-Type": ctype})
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.getheader("Connection") == "close":
                    self.conn.close()
                    self.conn = None
                return resp.status, data
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


# --- mutations ----------------------------------------------------------------------------
def flip_bits(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data))]


def insert_bytes(rng: random.Random, data: bytes) -> bytes:
    i = rng.randrange(len(data) + 1)
    return data[:i] + rng.randbytes(rng.randint(1, 16)) + data[i:]


def drop_bytes(rng: random.Random, data: bytes) -> bytes:
    i = rng.randrange(len(data))
    return data[:i] + data[i + rng.randint(1, 16) :]


def swap_ranges(rng: random.Random, data: bytes) -> bytes:
    a, b = sorted(rng.sample(range(len(data)), 2))
    n = rng.randint(1, max(1, min(32, b - a)))
    return data[:a] + data[b : b + n] + data[a + n : b] + data[a : a + n] + data[b + n :]


BYTE_MUTATIONS: list[Callable[[random.Random, bytes], bytes]] = [
    flip_bits, truncate, insert_bytes, drop_bytes, swap_ranges,
]


def _nodes(doc: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    yield path, doc
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _nodes(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _nodes(v, (*path, i))


def _set(doc: Any, path: tuple, value: Any) -> None:
    for k in path[:-1]:
        doc = doc[k]
    doc[path[-1]] = value


def mutate_json_fields(rng: random.Random, doc: dict) -> bytes:
    """Swap two fields' values, retype one, or drop one."""
    doc = copy.deepcopy(doc)
    nodes = [(p, v) for p, v in _nodes(doc) if p]
    kind = rng.randrange(3)
    if kind == 0:
        (p1, v1), (p2, v2) = rng.sample(nodes, 2)
        if p1[: len(p2)] != p2 and p2[: len(p1)] != p1:  # neither holds the other
            _set(doc, p1, copy.deepcopy(v2))
            _set(doc, p2, copy.deepcopy(v1))
    elif kind == 1:
        path, _ = rng.choice(nodes)
        _set(doc, path, rng.choice([None, 0, -1, 1.5, "", "x" * 40, [], {}, True, "zz" * 16, 2**70]))
    else:
        path, _ = rng.choice(nodes)
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        del parent[path[-1]]
    return json.dumps(doc).encode()


def otlp_json(data: bytes) -> dict:
    """OTLP/JSON of a protobuf request: ids in hex, as OTLP/HTTP JSON has them."""
    doc = json_format.MessageToDict(ExportTraceServiceRequest.FromString(data))
    for _, node in _nodes(doc):
        if isinstance(node, dict):
            for key in ("traceId", "spanId", "parentSpanId"):
                if isinstance(node.get(key), str):
                    import base64

                    node[key] = base64.b64decode(node[key]).hex()
    return doc


# --- what a payload is: the oracle -----------------------------------------------------------
def _ids_ok(request: ExportTraceServiceRequest) -> bool:
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            for s in ss.spans:
                ids = [(s.trace_id, 16), (s.span_id, 8)] + ([(s.parent_span_id, 8)] if s.parent_span_id else [])
                ids += [x for lk in s.links for x in ((lk.trace_id, 16), (lk.span_id, 8))]
                if any(len(v) != n or not any(v) for v, n in ids):
                    return False
    return True


def valid_protobuf(body: bytes) -> bool:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, ValueError, RecursionError):
        return False
    return _ids_ok(request)


def valid_json(body: bytes) -> bool:
    from dlprov_otel.collector import decode

    try:
        request = decode.parse_json(body)
    except decode.PayloadError:
        return False
    return _ids_ok(request)


# --- the test -------------------------------------------------------------------------------
def test_mutated_payloads_get_400_or_200_and_never_crash(collector, tmp_path):
    rng = random.Random(SEED)
    seeds = [dataset_request(rng.randint(1, 4), f"fuzz-{i}") for i in range(20)]
    json_seeds = [otlp_json(s) for s in seeds]
    poster = Poster(collector.http_port)
    counts = {"valid": 0, "invalid": 0, "partial": 0}
    started = time.monotonic()
    for i in range(2 * PER_ENCODING):
        as_json = i % 2 == 1
        if as_json and rng.random() < 0.5:
            body = mutate_json_fields(rng, rng.choice(json_seeds))
        elif as_json:
            body = rng.choice(BYTE_MUTATIONS)(rng, json.dumps(rng.choice(json_seeds)).encode())
        else:
            body = rng.choice(BYTE_MUTATIONS)(rng, rng.choice(seeds))
        valid = valid_json(body) if as_json else valid_protobuf(body)
        status, answer = poster.post(body, JSON if as_json else PROTOBUF)
        if status != (200 if valid else 400):
            kept = tmp_path / f"payload-{i}.{'json' if as_json else 'pb'}"
            kept.write_bytes(body)
            raise AssertionError(
                f"seed {SEED}, payload {i} ({'valid' if valid else 'invalid'}, kept in {kept}): "
                f"HTTP {status}: {answer[:300]!r}\n{collector.log_tail()}"
            )
        counts["valid" if valid else "invalid"] += 1
        counts["partial"] += status == 200 and b"rejected" in answer
    elapsed = time.monotonic() - started
    assert collector.proc is not None and collector.proc.poll() is None, collector.log_tail()
    assert client.health(collector.url)["status"] == "ok"
    # both kinds were exercised, and the collector still stores what is valid
    assert counts["valid"] > PER_ENCODING // 10 and counts["invalid"] > PER_ENCODING // 2, counts
    tag = f"after-fuzz-{uuid.uuid4().hex[:8]}"
    assert poster.post(dataset_request(3, tag), PROTOBUF)[0] == 200
    rows = client.query(collector.url, f"""SELECT COUNT(*) FROM "remote".metrics WHERE execution_tag = '{tag}'""")[1]
    assert rows == [(3,)]
    print(f"fuzz seed {SEED}: {counts} in {elapsed:.1f} s")
