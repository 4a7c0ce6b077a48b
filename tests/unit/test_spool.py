"""The spool: spans that could not be exported are kept as OTLP files and read back whole; spans
refused as bad data are quarantined as JSON lines. (Replay into a real store: tests/test_core_bad_input.py.)"""

from __future__ import annotations

import json
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from dlprov_otel import Dataflow, DataSet, Element, Task, semconv, spool
from dlprov_otel.records import from_otlp, from_readable_spans


def record_task(memory, exec_tag: str, loss: float) -> tuple:
    Dataflow("mnist", predefined=True).save()
    t = Task(1, "mnist", exec_tag, "testmodel")
    t.add_dataset(DataSet("otestmodel", [Element([loss, 0.5])]))
    t.end()
    return memory.spans()


def test_write_then_read_back(memory, exec_tag, tmp_path: Path):
    spans = record_task(memory, exec_tag, 0.25)
    path = Path(spool.spool_writer(tmp_path / "spool")(spans))
    assert path.parent == tmp_path / "spool" and path.name.endswith(".otlp.pb")
    assert spool.pending(tmp_path / "spool") == [path]
    assert not list((tmp_path / "spool").glob(".*.tmp"))  # written atomically
    request = ExportTraceServiceRequest()
    request.ParseFromString(path.read_bytes())
    decoded = from_otlp(request)
    assert [(r.span_id, r.name) for r in decoded] == [(r.span_id, r.name) for r in from_readable_spans(spans)]
    (dataset,) = [r for r in decoded if r.kind == semconv.KIND_DATASET]
    assert list(dataset.attributes[semconv.data_key("loss")]) == [0.25]


def test_quarantined_spans_are_json_lines_with_their_error(memory, exec_tag, tmp_path: Path):
    spans = record_task(memory, exec_tag, 0.5)
    write = spool.quarantine_writer(tmp_path / "spool")
    path = Path(write(spans[:2], "bad value"))
    write(spans[2:3], "worse value")  # appended to the same day's file
    assert path.parent == tmp_path / "spool" / "quarantine"
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [x["error"] for x in lines] == ["bad value", "bad value", "worse value"]
    assert [x["span"]["name"] for x in lines] == [s.name for s in spans[:3]]
    assert spool.pending(tmp_path / "spool") == []  # never replayed as if it were spooled


def test_the_default_spool_dir_follows_the_environment(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("DLPROV_SPOOL_DIR", str(tmp_path / "elsewhere"))
    assert spool.default_spool_dir() == tmp_path / "elsewhere"
    assert spool.pending() == []  # a spool that does not exist yet holds nothing
    monkeypatch.delenv("DLPROV_SPOOL_DIR")
    assert spool.default_spool_dir() == Path.home() / ".cache" / "dlprov" / "spool"


def test_spans_left_at_shutdown_reach_the_spool_as_readable_files(tmp_path: Path):
    """The processor's spool hook and the spool file format, together: nothing lost."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from dlprov_otel.processor import LosslessSpanProcessor

    class Down(SpanExporter):
        def export(self, spans):
            return SpanExportResult.FAILURE

    d = tmp_path / "spool"
    processor = LosslessSpanProcessor(Down(), schedule_delay=0.01, shutdown_timeout=0.2, spool=spool.spool_writer(d))
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    for i in range(5):
        provider.get_tracer("t").start_span(f"s{i}", attributes={semconv.KIND: semconv.KIND_TASK}).end()
    provider.shutdown()
    names = []
    for path in spool.pending(d):
        request = ExportTraceServiceRequest()
        request.ParseFromString(path.read_bytes())
        names += [r.name for r in from_otlp(request)]
    assert sorted(names) == [f"s{i}" for i in range(5)]
    assert processor.stats.spooled == 5 and processor.stats.dropped == 0
