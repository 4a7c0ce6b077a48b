"""The DLProv collector as a real process on loopback: OTLP/HTTP, OTLP/gRPC, through the
OpenTelemetry Collector, payload handling, durability, outages, read-only SQL and the token.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

import dlprov_otel
from dlprov_otel import Dataflow, DataSet, Element, QueryError, StoreError, Task, client, spool
from dlprov_otel.config import free_port
from dlprov_otel.services import otelcol
from tests import seedflow
from tests.collector_proc import CollectorProcess, dataset_request, decode_request, loss_of, start_collector

pytestmark = pytest.mark.collector

MAX_BODY = 1024 * 1024  # the module collector's --max-body
TRAIN_COLUMNS = "task_id, timestamp, elapsed_time, loss, accuracy, val_loss, val_accuracy, epoch, producer_task_id"
HP_COLUMNS = "task_id, optimizer_name, learning_rate, num_epochs, num_layers, batch_size, consumer_task_id"


# --- fixtures and helpers -------------------------------------------------------------------
@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    col = start_collector(tmp_path_factory.mktemp("collector"), extra_args=["--max-body", str(MAX_BODY)])
    yield col
    assert col.stop() == 0, col.log_tail()


def post(url: str, body: bytes, ctype: str = "application/x-protobuf", headers: dict[str, str] | None = None,
         method: str = "POST") -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": ctype, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def sql(col: CollectorProcess, text: str) -> list[tuple]:
    return client.query(col.url, text, token=col.token)[1]


def metrics_rows(col: CollectorProcess, tag: str) -> list[tuple]:
    # "remote" is a MonetDB keyword: the dataflow's schema must be quoted
    return sql(col, f"""SELECT step, loss, span_id FROM "remote".metrics WHERE execution_tag = '{tag}' ORDER BY step""")


def seed_rows(col_or_store, tag: str) -> dict[str, list[tuple]]:
    """The seed flow's values of one execution, from a collector or an in-process store."""
    queries = {
        "otrainmodel": f"SELECT {TRAIN_COLUMNS} FROM otrainmodel WHERE execution_tag = '{tag}' ORDER BY epoch",
        "itrainmodel": f"SELECT {HP_COLUMNS} FROM itrainmodel WHERE execution_tag = '{tag}'",
        "otestmodel": f"SELECT task_id, loss, accuracy FROM otestmodel WHERE execution_tag = '{tag}'",
        "tasks": f"SELECT id, dt_tag, status FROM sys.task WHERE execution_tag = '{tag}' ORDER BY id",
        "execution": f"SELECT dataflow_tag, status, scientist FROM sys.dataflow_execution WHERE tag = '{tag}'",
    }
    out = {}
    for name, q in queries.items():
        if isinstance(col_or_store, CollectorProcess):
            out[name] = sql(col_or_store, f'SET SCHEMA "mnist"; {q}')
        else:
            # monetdbe hands NULL doubles back as NaN; the collector's JSON says null
            rows = col_or_store.run_script(['SET SCHEMA "mnist"', q]).rows
            out[name] = [tuple(None if v != v else v for v in r) for r in rows]
    return out


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple]]:
    """The seed flow recorded in-process into an embedded store (the reference)."""
    store_dir = tmp_path_factory.mktemp("inprocess") / "store"
    tag = "inprocess-run"
    seedflow.record_seed_flow(store_dir, epochs=2, exec_tag=tag)
    rows = seed_rows(dlprov_otel.get_store(), tag)
    dlprov_otel.shutdown()
    assert len(rows["otrainmodel"]) == 2 and len(rows["tasks"]) == 4
    return rows


def record_remote(monkeypatch: pytest.MonkeyPatch, endpoint: str, tmp_path: Path) -> str:
    """Run the seed flow with ``configure(endpoint=...)``; returns the execution tag."""
    tel = dlprov_otel.configure(endpoint=endpoint, schedule_delay=0.05, spool_dir=tmp_path / "spool")
    monkeypatch.setattr(seedflow, "_ensure_pipeline", lambda _path: None)
    tag = f"remote-{uuid.uuid4().hex[:8]}"
    try:
        seedflow.record_seed_flow(None, epochs=2, exec_tag=tag)
        assert dlprov_otel.flush(30)
        stats = tel.stats()
        assert stats["dropped"] == 0 and stats["spooled"] == 0 and stats["exported"] == stats["queued"]
    finally:
        dlprov_otel.shutdown()
    return tag


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def otlp_status(body: bytes) -> str:
    return status_pb2.Status.FromString(body).message


# --- the same rows, whichever way they come ------------------------------------------------
def test_otlp_http_lands_the_same_rows_as_in_process(collector, baseline, monkeypatch, tmp_path):
    tag = record_remote(monkeypatch, collector.url, tmp_path)
    assert seed_rows(collector, tag) == baseline
    assert seedflow.epoch_loss(1) in [r[3] for r in baseline["otrainmodel"]]


def test_otlp_grpc_lands_the_same_rows_as_in_process(collector, baseline, monkeypatch, tmp_path):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    tel = dlprov_otel.configure(endpoint=f"http://127.0.0.1:{collector.grpc_port}", spool_dir=tmp_path / "s")
    assert isinstance(tel.processor.exporter, OTLPSpanExporter)  # the core processor wraps the gRPC exporter
    dlprov_otel.shutdown()
    tag = record_remote(monkeypatch, f"http://127.0.0.1:{collector.grpc_port}", tmp_path)
    assert seed_rows(collector, tag) == baseline


def test_through_the_opentelemetry_collector(collector, baseline, monkeypatch, tmp_path):
    otelcol.build()  # a failure to build is a failure of this test, not a skip
    col = otelcol.start(
        free_port(),
        free_port(),
        forward_to=collector.url,
        storage_dir=tmp_path / "queue",
        log_path=tmp_path / "otelcol.log",
        extra_env={"OTELCOL_RETRY_INITIAL": "200ms", "OTELCOL_RETRY_MAX_INTERVAL": "1s"},
    )
    try:
        tag = record_remote(monkeypatch, col.http_endpoint, tmp_path)  # acknowledged by the otelcol
        def forwarded() -> dict[str, list[tuple]] | None:
            try:
                rows = seed_rows(collector, tag)
            except QueryError:  # not there yet: the otelcol batches before it forwards
                return None
            return rows if rows == baseline else None

        rows = wait_for(
            forwarded,
            120,
            f"the otelcol to forward the run; log:\n{col.log_tail()}",
        )
        assert rows == baseline
    finally:
        assert col.stop() == 0, col.log_tail()


# --- payloads -----------------------------------------------------------------------------------
def test_otlp_json_with_hex_ids(collector):
    tag = f"json-{uuid.uuid4().hex[:8]}"
    request = decode_request(dataset_request(3, tag))
    doc = json_format.MessageToDict(request)
    hex_ids = []
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    span[key] = base64.b64decode(span[key]).hex()
                hex_ids.append(span["spanId"])
    status, headers, body = post(collector.url + "/v1/traces", json.dumps(doc).encode(), "application/json")
    assert status == 200, body
    assert headers["Content-Type"] == "application/json" and json.loads(body) == {}
    rows = metrics_rows(collector, tag)
    assert [(r[0], r[1]) for r in rows] == [(float(i), loss_of(i)) for i in range(3)]
    assert [r[2] for r in rows] == hex_ids  # the ids were read as hex, not base64

    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = "not-hex"
    status, _, body = post(collector.url + "/v1/traces", json.dumps(doc).encode(), "application/json")
    assert status == 400
    assert "resourceSpans[0].scopeSpans[0].spans[0].traceId: expected 32 hex digits" in json.loads(body)["message"]


def test_gzip_body(collector):
    tag = f"gzip-{uuid.uuid4().hex[:8]}"
    body = gzip.compress(dataset_request(5, tag))
    status, _, resp = post(collector.url + "/v1/traces", body, headers={"Content-Encoding": "gzip"})
    assert status == 200, resp
    assert [r[0] for r in metrics_rows(collector, tag)] == [0.0, 1.0, 2.0, 3.0, 4.0]
    status, _, resp = post(collector.url + "/v1/traces", b"\x1f\x8b not gzip", headers={"Content-Encoding": "gzip"})
    assert status == 400 and "not valid gzip" in otlp_status(resp)


def test_a_payload_sent_twice_is_stored_once(collector):
    tag = f"dup-{uuid.uuid4().hex[:8]}"
    payload = dataset_request(4, tag)
    for _ in range(2):
        status, _, body = post(collector.url + "/v1/traces", payload)
        assert status == 200, body
        assert ExportTraceServiceResponse.FromString(body).partial_success.rejected_spans == 0
    assert len(metrics_rows(collector, tag)) == 4


def test_garbage_gets_400_and_the_collector_keeps_serving(collector):
    status, _, body = post(collector.url + "/v1/traces", b"\xff\xff\xff garbage \x00")
    assert status == 400
    assert "not a protobuf OTLP ExportTraceServiceRequest" in otlp_status(body)
    status, _, body = post(collector.url + "/v1/traces", b"{not json", "application/json")
    assert status == 400 and "not valid JSON" in json.loads(body)["message"]
    status, _, body = post(collector.url + "/v1/traces", b"x", "text/plain")
    assert status == 415
    # malformed whatever the parser raises: 400, not a retryable 503
    deep = b"[" * 200_000 + b"]" * 200_000
    status, _, body = post(collector.url + "/v1/traces", deep, "application/json")
    assert status == 400 and "nests too deeply" in json.loads(body)["message"], body
    conn = http.client.HTTPConnection("127.0.0.1", collector.http_port, timeout=60)
    conn.putrequest("POST", "/v1/traces")
    conn.putheader("Content-Type", "application/x-protobuf")
    conn.putheader("Content-Length", "-5")
    conn.endheaders()
    assert conn.getresponse().status == 400
    conn.close()
    tag = f"after-garbage-{uuid.uuid4().hex[:8]}"
    assert post(collector.url + "/v1/traces", dataset_request(1, tag))[0] == 200
    assert len(metrics_rows(collector, tag)) == 1
    assert get(collector.url + "/healthz")[0] == 200


def test_oversized_bodies_get_413(collector):
    status, _, body = post(collector.url + "/v1/traces", b"\x00" * (MAX_BODY + 1))
    assert status == 413 and f"limit of {MAX_BODY} bytes" in otlp_status(body)
    bomb = gzip.compress(b"\x00" * (3 * MAX_BODY))  # small on the wire, too big once inflated
    assert len(bomb) < MAX_BODY
    status, _, body = post(collector.url + "/v1/traces", bomb, headers={"Content-Encoding": "gzip"})
    assert status == 413 and "decompressed body exceeds" in otlp_status(body)
    assert get(collector.url + "/health")[0] == 200


def test_expect_100_continue_is_refused_before_the_body(collector):
    """A client that asks first (Expect: 100-continue) learns of the limit without sending the body."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", collector.http_port, timeout=30)
    try:
        conn.putrequest("POST", "/v1/traces")
        conn.putheader("Content-Type", "application/x-protobuf")
        conn.putheader("Content-Length", str(MAX_BODY + 1))
        conn.putheader("Expect", "100-continue")
        conn.endheaders()  # no body follows
        resp = conn.getresponse()
        assert resp.status == 413 and resp.getheader("Connection") == "close"
        assert f"limit of {MAX_BODY} bytes" in otlp_status(resp.read())
    finally:
        conn.close()
    # a request that may come is let in
    conn = http.client.HTTPConnection("127.0.0.1", collector.http_port, timeout=30)
    try:
        body = dataset_request(1, f"expect-{uuid.uuid4().hex[:8]}")
        conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf", "Expect": "100-continue"})
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_keep_alive_unless_a_body_is_left_unread(collector):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", collector.http_port, timeout=30)
    try:
        conn.request("GET", "/health")
        first = conn.getresponse()
        first.read()
        assert first.status == 200 and first.getheader("Connection") is None  # kept open
        conn.request("POST", "/nowhere", b"x" * 100, {"Content-Type": "text/plain"})
        second = conn.getresponse()  # on the same connection
        assert second.status == 404 and second.getheader("Connection") == "close"
        assert "no such endpoint /nowhere" in json.loads(second.read())["error"]
    finally:
        conn.close()
    status, headers, _ = post(collector.url + "/v1/sql", b"{}", "application/json", method="PUT")
    assert status == 405 and headers["Allow"] == "POST"


def test_unstorable_spans_are_set_aside_and_the_rest_stored(collector):
    tag = f"partial-{uuid.uuid4().hex[:8]}"
    payload = dataset_request(6, tag, broken={2})
    broken_id = decode_request(payload).resource_spans[0].scope_spans[0].spans[2].span_id.hex()
    status, _, body = post(collector.url + "/v1/traces", payload)
    assert status == 200
    partial = ExportTraceServiceResponse.FromString(body).partial_success
    assert partial.rejected_spans == 1 and f"span {broken_id}" in partial.error_message
    assert "types" in partial.error_message  # the store's reason
    assert [r[0] for r in metrics_rows(collector, tag)] == [0.0, 1.0, 3.0, 4.0, 5.0]
    kept = spool.pending(collector.log.parent / "rejected")
    assert kept and any(tag in p.read_bytes().decode(errors="replace") for p in kept)


def test_concurrent_senders_all_land(collector):
    tag = f"concurrent-{uuid.uuid4().hex[:8]}"
    payloads = [dataset_request(100, tag) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda p: post(collector.url + "/v1/traces", p)[0], payloads))
    assert statuses == [200] * 8
    assert sql(collector, f"""SELECT COUNT(*) FROM "remote".metrics WHERE execution_tag = '{tag}'""") == [(800,)]


def test_store_down_answers_503_with_retry_after(tmp_path):
    """A MonetDB server store that cannot be reached: the collector serves and asks to retry."""
    nothing_there = f"monetdb://monetdb:monetdb@127.0.0.1:{free_port()}/dlprov"
    col = start_collector(tmp_path / "c", store=nothing_there, health=503)
    try:
        status, headers, body = post(col.url + "/v1/traces", dataset_request(1, "down"))
        assert status == 503 and headers["Retry-After"] == "2"
        assert "provenance store unavailable" in otlp_status(body)
        status, _, body = post(col.url + "/v1/sql", b'{"sql": "SELECT 1"}', "application/json")
        assert status == 503 and "cannot reach MonetDB server" in json.loads(body)["error"]

        import grpc
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

        with grpc.insecure_channel(f"127.0.0.1:{col.grpc_port}") as channel, pytest.raises(grpc.RpcError) as err:
            TraceServiceStub(channel).Export(decode_request(dataset_request(1, "down")), timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE  # retried by OTLP/gRPC clients
    finally:
        assert col.stop() == 0


# --- durability ---------------------------------------------------------------------------------
def test_an_acknowledged_batch_survives_sigkill(tmp_path):
    col = start_collector(tmp_path / "c")
    tag = f"kill-{uuid.uuid4().hex[:8]}"
    try:
        status, _, body = post(col.url + "/v1/traces", dataset_request(50, tag))
        assert status == 200, body
        col.kill()  # no shutdown, no flush: only what was committed before the answer survives
        col.start()
        assert [r[0] for r in metrics_rows(col, tag)] == [float(i) for i in range(50)]
    finally:
        col.stop()


def test_a_collector_outage_during_training_loses_nothing(tmp_path):
    """Down for longer than the OTLP exporter's own 10 s retry budget; the processor keeps retrying."""
    col = start_collector(tmp_path / "c")
    tel = dlprov_otel.configure(endpoint=col.url, schedule_delay=0.05, spool_dir=tmp_path / "spool")
    tag = f"outage-{uuid.uuid4().hex[:8]}"
    epochs = 0
    try:
        df = Dataflow("mnist", predefined=True)
        df.save()
        task = Task(1, df, tag, "trainmodel")
        task.add_dataset(DataSet("itrainmodel", [Element(["adam", 0.01, 40, 3])]))
        task.begin()

        def train(seconds: float) -> None:
            nonlocal epochs
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                task.add_dataset(DataSet("otrainmodel", [Element(["t", 0.1, loss_of(epochs), 0.9, 0.5, 0.8, epochs])]))
                task.save()
                epochs += 1
                time.sleep(0.25)

        train(1.5)
        assert wait_for(lambda: sql(col, f'SET SCHEMA "mnist"; SELECT COUNT(*) FROM otrainmodel '
                                         f"WHERE execution_tag = '{tag}'")[0][0] > 0, 10, "first epochs")
        col.kill()
        down = time.monotonic()
        train(30)  # training goes on while nobody listens, for 30 s (the outage)
        assert time.monotonic() - down >= 30
        assert tel.stats()["export_failures"] >= 1  # the exporter gave up at least once...
        col.start()
        train(1.0)
        task.end()
        assert dlprov_otel.flush(60)
        stats = tel.stats()
        assert stats["dropped"] == 0 and stats["spooled"] == 0 and stats["retried_spans"] > 0
        rows = sql(col, f"SET SCHEMA \"mnist\"; SELECT epoch, loss FROM otrainmodel WHERE execution_tag = '{tag}' "
                        "ORDER BY epoch")
        assert rows == [(float(e), loss_of(e)) for e in range(epochs)]  # ...and nothing was lost
        assert sql(col, f"SELECT status FROM sys.task WHERE execution_tag = '{tag}'") == [("FINISHED",)]
    finally:
        dlprov_otel.shutdown()
        col.stop()


# --- SQL ----------------------------------------------------------------------------------------
WRITES = [
    "INSERT INTO sys.task (id) VALUES ('x')",
    "DROP TABLE sys.task",
    "/* c */ drop table sys.task",
    "-- note\nDELETE FROM sys.task",
    "CREATE TABLE evil (a INT)",
    "SELECT 1; DROP TABLE sys.task",
    "SELECT 'a;b'; UPDATE sys.task SET status = 'x'",
    "SELECT 'a\\'; DROP TABLE sys.task; --'",
    "WITH t AS (SELECT 1) DELETE FROM sys.task",
    "ALTER TABLE sys.task ADD COLUMN x INT",
    "GRANT SELECT ON sys.task TO monetdb",
    "COPY SELECT 1 INTO '/tmp/evil.csv'",
    "CALL sys.shutdown(1)",
    "TRUNCATE sys.task",
    "COMMENT ON TABLE sys.task IS 'x'",
    "MERGE INTO sys.task t USING sys.task s ON t.id = s.id WHEN MATCHED THEN DELETE",
    "COMMIT",
    "SET ROLE monetdb",
]


@pytest.mark.parametrize("statement", WRITES)
def test_sql_endpoint_refuses_writes(collector, statement):
    status, _, body = post(collector.url + "/v1/sql", json.dumps({"sql": statement}).encode(), "application/json")
    assert status == 403, body
    assert "read-only" in json.loads(body)["error"] or "SET SCHEMA" in json.loads(body)["error"]


def test_sql_endpoint_reads(collector):
    tag = f"sql-{uuid.uuid4().hex[:8]}"
    assert post(collector.url + "/v1/traces", dataset_request(2, tag))[0] == 200
    quoted = sql(collector, f"SELECT 'drop table x; delete' AS w, note FROM \"remote\".metrics "
                            f"WHERE execution_tag = '{tag}' AND note LIKE '%''drop''%' ORDER BY step")
    assert quoted == [("drop table x; delete", "step 0; 'drop'"), ("drop table x; delete", "step 1; 'drop'")]
    cols, rows = client.query(collector.url, 'SET SCHEMA "remote"; \\d metrics')
    assert cols[0] == "column" and ("loss", "double") in [(r[0], r[1]) for r in rows]
    # datetimes are ISO strings and NaN-derived NULLs are null
    (row,) = sql(collector, f"SELECT emitted_at, CAST(NULL AS DOUBLE) FROM \"remote\".metrics "
                            f"WHERE execution_tag = '{tag}' AND step = 0")
    assert "T" in row[0] and row[1] is None
    with pytest.raises(QueryError, match="no such table"):
        client.query(collector.url, "SELECT * FROM no_such_table")
    with pytest.raises(QueryError, match=r"403.*read-only"):
        client.query(collector.url, "DROP TABLE sys.task")
    # the refused statements above changed nothing
    assert sql(collector, "SELECT COUNT(*) FROM sys.task WHERE id = 'x'") == [(0,)]
    assert sql(collector, "SELECT COUNT(*) FROM sys.tables WHERE name = 'evil'") == [(0,)]
    cols, runs = client.executions(collector.url)
    assert cols[:3] == ["tag", "dataflow_tag", "status"] and isinstance(runs, list)


def test_system_objects_are_refused_and_the_collector_stays_up(collector):
    for statement in ("SELECT * FROM sys.sessions", "SELECT count(*) FROM sessions", "SELECT sys.env()"):
        status, _, body = post(collector.url + "/v1/sql", json.dumps({"sql": statement}).encode(), "application/json")
        assert status == 403 and "reads provenance only" in json.loads(body)["error"], body
    assert get(collector.url + "/health")[0] == 200
    assert sql(collector, "SELECT COUNT(*) FROM sys.task WHERE id = 'x'") == [(0,)]


def test_client_names_an_unreachable_endpoint():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StoreError, match=f"cannot reach the DLProv collector at {url}/v1/sql"):
        client.query(url, "SELECT 1")


def test_replay_spool_sends_and_deletes_acknowledged_files(collector, tmp_path):
    tag = f"replay-{uuid.uuid4().hex[:8]}"
    good = spool.write(dataset_request(3, tag), tmp_path / "spool")
    bad = spool.write(b"\xff\xff garbage", tmp_path / "spool")
    with pytest.raises(QueryError, match="1 kept"):
        client.replay_spool(collector.url, tmp_path / "spool")
    assert not good.exists() and bad.exists()
    assert len(metrics_rows(collector, tag)) == 3
    bad.unlink()
    assert client.replay_spool(collector.url, tmp_path / "spool") == (0, 0)


# --- the token ----------------------------------------------------------------------------------
def test_token_is_enforced(tmp_path):
    token = "s3cret-" + uuid.uuid4().hex
    col = start_collector(tmp_path / "c", token=token)
    tag = f"token-{uuid.uuid4().hex[:8]}"
    payload = dataset_request(1, tag)
    sql_body = json.dumps({"sql": "SELECT 1"}).encode()
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer"}, {"Authorization": token}):
            assert post(col.url + "/v1/traces", payload, headers=headers)[0] == 401
            assert post(col.url + "/v1/sql", sql_body, "application/json", headers=headers)[0] == 401
            assert get(col.url + "/v1/executions", headers=headers)[0] == 401
        good = {"Authorization": f"Bearer {token}"}
        assert post(col.url + "/v1/traces", payload, headers=good)[0] == 200
        assert post(col.url + "/v1/sql", sql_body, "application/json", headers=good)[0] == 200
        assert get(col.url + "/v1/executions", headers=good)[0] == 200
        status, body = get(col.url + "/health")  # health needs no token, and then says nothing more
        assert status == 200 and json.loads(body) == {"status": "ok", "token_required": True}
        status, body = get(col.url + "/health", headers=good)
        assert status == 200 and "store" in json.loads(body)
        assert len(metrics_rows(col, tag)) == 1  # the client sends col.token

        import grpc
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

        with grpc.insecure_channel(f"127.0.0.1:{col.grpc_port}") as channel:
            stub = TraceServiceStub(channel)
            with pytest.raises(grpc.RpcError) as err:
                stub.Export(decode_request(payload), metadata=[("authorization", "Bearer wrong")], timeout=10)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            stub.Export(decode_request(payload), metadata=[("authorization", f"Bearer {token}")], timeout=10)
    finally:
        col.stop()


def test_refuses_to_listen_beyond_loopback_without_a_token(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "dlprov_otel.collector.server", "--host", "0.0.0.0", "--store", str(tmp_path / "s")],
        capture_output=True, text=True, timeout=60, env={k: v for k, v in os.environ.items() if k != "DLPROV_TOKEN"},
    )
    assert proc.returncode == 2
    assert "refusing to listen on 0.0.0.0 without a token" in proc.stderr
    assert not (tmp_path / "s").exists()  # refused before opening anything
