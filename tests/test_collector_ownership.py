"""Right answers to bad input, and runs that belong to their trace (issue 14), through a real collector.

- spans that can never be stored come back as an OTLP partial success with the exact count,
  at once, however many there are (never a 503 that the sender would retry forever);
- the SDK's exporter sets exactly those spans aside (quarantine) and counts the rest as stored;
- an execution belongs to the trace that created it: another run re-using its tag cannot add
  rows, tasks or columns to it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

import dlprov_otel
from dlprov_otel import client, spool
from tests import seedflow
from tests.collector_proc import CollectorProcess, dataset_request, post, start_collector

pytestmark = pytest.mark.collector


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    col = start_collector(tmp_path_factory.mktemp("ownership"))
    yield col
    assert col.stop() == 0, col.log_tail()


def sql(col: CollectorProcess, text: str) -> list[tuple]:
    return client.query(col.url, text)[1]


def record(endpoint: str, spool_dir: Path, tag: str, monkeypatch: pytest.MonkeyPatch, stored: bool = True) -> dict:
    """The seed flow through ``configure(endpoint=...)``; returns the pipeline's stats.

    ``stored=False``: the flush must say that not everything was stored.
    """
    tel = dlprov_otel.configure(endpoint=endpoint, schedule_delay=0.05, spool_dir=spool_dir)
    monkeypatch.setattr(seedflow, "_ensure_pipeline", lambda _path: None)
    try:
        if stored:
            seedflow.record_seed_flow(None, epochs=2, exec_tag=tag)
        else:
            with pytest.raises(RuntimeError, match="not flushed"):
                seedflow.record_seed_flow(None, epochs=2, exec_tag=tag)
        dlprov_otel.flush(60)
        return tel.stats()
    finally:
        dlprov_otel.shutdown()


def rejected_keys(directory: Path) -> set[str]:
    keys = set()
    for path in spool.pending(directory):
        request = ExportTraceServiceRequest.FromString(path.read_bytes())
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                keys.update(f"{s.trace_id.hex()}/{s.span_id.hex()}" for s in ss.spans)
    return keys


def test_many_bad_spans_are_one_partial_success_with_the_exact_count(collector):
    tag = f"many-bad-{uuid.uuid4().hex[:8]}"
    status, body = post(collector.url + "/v1/traces", dataset_request(300, tag, broken=set(range(0, 300, 2))))
    assert status == 200  # was 503 (retried forever) beyond 64 bad spans
    partial = ExportTraceServiceResponse.FromString(body).partial_success
    assert partial.rejected_spans == 150
    assert partial.error_message.count("/") >= 150  # names every one: [rejected: TRACE/SPAN ...]
    rows = sql(collector, f"""SELECT step FROM "remote".metrics WHERE execution_tag = '{tag}' ORDER BY step""")
    assert [r[0] for r in rows] == [float(i) for i in range(1, 300, 2)]


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_a_run_cannot_write_into_another_runs_execution(collector, tmp_path, monkeypatch, protocol):
    tag = f"owned-{uuid.uuid4().hex[:8]}"
    first = record(collector.url, tmp_path / "first", tag, monkeypatch)
    assert first["quarantined"] == 0 and first["exported"] == first["queued"] > 0
    epochs = f"""SET SCHEMA "mnist"; SELECT epoch, loss FROM otrainmodel WHERE execution_tag = '{tag}' ORDER BY epoch"""
    before = sql(collector, epochs)
    tasks_before = sql(collector, f"SELECT id, trace_id FROM sys.task WHERE execution_tag = '{tag}' ORDER BY id")
    assert len(before) == 2 and len(tasks_before) == 4
    rejects_before = rejected_keys(collector.log.parent / "rejected")

    # another run (its own trace) that names the same execution
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", protocol)
    endpoint = collector.url if protocol == "http/protobuf" else f"http://127.0.0.1:{collector.grpc_port}"
    second = record(endpoint, tmp_path / "second", tag, monkeypatch, stored=False)
    assert second["quarantined"] > 0, second
    assert second["exported"] + second["quarantined"] == second["queued"], second
    assert second["dropped"] == 0 and second["spooled"] == 0 and second["pending"] == 0

    # the first run is as it was: no rows, tasks or status from the second
    assert sql(collector, epochs) == before
    tasks = f"SELECT id, trace_id FROM sys.task WHERE execution_tag = '{tag}' ORDER BY id"
    assert sql(collector, tasks) == tasks_before

    # exactly the refused spans are in the client's quarantine, each with the collector's reason
    lines = [json.loads(line) for p in (tmp_path / "second" / "quarantine").glob("*.jsonl")
             for line in p.read_text().splitlines()]
    assert len(lines) == second["quarantined"]
    assert all("belongs to another run" in line["error"] for line in lines)
    quarantined = {f"{line['span']['context']['trace_id'][2:]}/{line['span']['context']['span_id'][2:]}"
                   for line in lines}
    refused = rejected_keys(collector.log.parent / "rejected") - rejects_before
    assert quarantined == refused


def test_nested_executions_and_one_run_are_never_refused(collector, tmp_path):
    """A run's own spans pass: nested executions of the Python API, each its own trace, and an
    execution re-entered in the same process."""
    outer_tag, inner_tag = f"outer-{uuid.uuid4().hex[:8]}", f"inner-{uuid.uuid4().hex[:8]}"

    def epoch(n: int, loss: float) -> dict:
        return {"timestamp": "12:00:00", "elapsed_time": 0.1, "loss": loss, "accuracy": 0.5, "val_loss": None,
                "val_accuracy": None, "epoch": n}

    tel = dlprov_otel.configure(endpoint=collector.url, schedule_delay=0.05, spool_dir=tmp_path / "spool")
    try:
        with dlprov_otel.execution(outer_tag, dataflow="nested"):
            with dlprov_otel.task("trainmodel") as outer_task:
                outer_task.output("otrainmodel", **epoch(0, 0.5))
                with dlprov_otel.execution(inner_tag, dataflow="nested"):
                    with dlprov_otel.task("trainmodel") as inner_task:
                        inner_task.output("otrainmodel", **epoch(0, 0.25))
                outer_task.output("otrainmodel", **epoch(1, 0.4))
            with dlprov_otel.execution(outer_tag, dataflow="nested"):  # the same run again
                with dlprov_otel.task("trainmodel") as again:
                    again.output("otrainmodel", **epoch(2, 0.3))
        assert dlprov_otel.flush(60)
        stats = tel.stats()
    finally:
        dlprov_otel.shutdown()
    assert stats["quarantined"] == 0 and stats["exported"] == stats["queued"], stats
    rows = sql(collector, 'SET SCHEMA "nested"; SELECT execution_tag, epoch FROM otrainmodel ORDER BY loss')
    assert rows == [(inner_tag, 0), (outer_tag, 2), (outer_tag, 1), (outer_tag, 0)]
