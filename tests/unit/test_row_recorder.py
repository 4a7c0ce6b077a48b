"""The hot path of ``t.output`` (one closure per task and set) gives way whenever the general
path must decide: queued datasets keep their order, and rows follow the provider in use."""

from __future__ import annotations

import json
import subprocess
import sys

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import dlprov_otel
from dlprov_otel import DataSet, Element, semconv, tracing

PARAMS = {"optimizer_name": "sgd", "learning_rate": 0.1, "num_epochs": 3, "num_layers": 2}


def row(t, epoch: int) -> None:
    t.output("otrainmodel", timestamp="", elapsed_time=0.5, loss=0.25, accuracy=0.5, val_loss=None,
             val_accuracy=None, epoch=epoch)


def epochs(spans) -> list[float]:
    return [s.attributes[semconv.data_key("epoch")][0] for s in spans
            if s.attributes.get(semconv.DATASET_TAG) == "otrainmodel"]


def test_rows_after_a_queued_dataset_come_after_it(memory):
    with dlprov_otel.execution("rows-order", dataflow="mnist"):
        with dlprov_otel.task("trainmodel", inputs={"itrainmodel": PARAMS}) as t:
            row(t, 0)
            t.task.add_dataset(DataSet("otrainmodel", [Element(["", 0.5, 0.25, 0.5, None, None, 1])]))  # queued
            row(t, 2)  # records the queued one first
            row(t, 3)
    assert epochs(memory.spans()) == [0.0, 1.0, 2.0, 3.0]


def test_rows_follow_an_instrumentors_provider_and_come_back(memory):
    other = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(other))
    with dlprov_otel.execution("rows-provider", dataflow="mnist"):
        with dlprov_otel.task("trainmodel", inputs={"itrainmodel": PARAMS}) as t:
            row(t, 0)
            tracing.use_tracer_provider(provider)
            try:
                row(t, 1)
            finally:
                tracing.use_tracer_provider(None)
            row(t, 2)
    assert epochs(other.get_finished_spans()) == [1.0]
    assert epochs(memory.spans()) == [0.0, 2.0]


def test_rows_with_an_unknown_or_a_missing_attribute_take_the_general_path(memory):
    """The hot path takes a row only when its names are the set's (all given, or the required
    ones); any other row is recorded, or refused, exactly as ``add_dataset`` + ``save`` do."""
    full = {"timestamp": "", "elapsed_time": 0.5, "loss": 0.25, "accuracy": 0.5, "val_loss": None,
            "val_accuracy": None, "epoch": 1}
    swapped = {**{k: v for k, v in full.items() if k != "accuracy"}, "accuracy_top5": 0.75}  # same count
    extra = {**full, "accuracy_top5": 0.75}  # an attribute the set does not declare: a new column
    rows = [extra, full, swapped, {"epoch": 2}]
    hot, general = [], []
    with dlprov_otel.execution("rows-names", dataflow="mnist"):
        for out, via_output in ((hot, True), (general, False)):
            with dlprov_otel.task("trainmodel", inputs={"itrainmodel": PARAMS}) as t:
                for values in rows:
                    try:
                        if via_output:
                            t.output("otrainmodel", **values)
                        else:
                            t.task.add_dataset(DataSet("otrainmodel", [values]))
                            t.task.save()
                        out.append(None)
                    except Exception as exc:  # the same error both ways
                        out.append(f"{type(exc).__name__}: {exc}")
    spans = [s for s in memory.spans() if s.attributes.get(semconv.DATASET_TAG) == "otrainmodel"]
    assert hot == general
    recorded = [dict(s.attributes) for s in spans]
    for attrs in recorded:
        attrs.pop(semconv.TASK_ID, None)
    assert len(recorded) % 2 == 0 and recorded[: len(recorded) // 2] == recorded[len(recorded) // 2 :]
    assert hot[:2] == [None, None] and "lacks required attribute(s) ['accuracy']" in hot[2]
    assert semconv.data_key("accuracy_top5") in recorded[0]



WARM = """
import dis, json, sys
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import dlprov_otel
from dlprov_otel import tracing

def specialized(function):  # CPython 3.11 quickens a function's bytecode from its 8th call on
    return any(i.opname == "RESUME_QUICK" for i in dis.get_instructions(function, adaptive=True))

exporter = InMemorySpanExporter()
dlprov_otel.configure(exporter=exporter, spool_dir=sys.argv[1], set_global=False)
recorder = tracing.telemetry().recorder
with dlprov_otel.execution("rows-warm", dataflow="mnist"):
    with dlprov_otel.task("trainmodel") as t:
        record = t.task._rows["otrainmodel"]
        before = recorder.emitted, recorder.journal.records
        quick = specialized(record), specialized(type(t).output)
        t.output("otrainmodel", timestamp="", elapsed_time=0.5, loss=0.25, accuracy=0.5, val_loss=None,
                 val_accuracy=None, epoch=7)
        after = recorder.emitted, recorder.journal.records
        # the first row's types got a recorder of their own, warmed too
        quick += (t.task._rows["otrainmodel"] is not record and specialized(t.task._rows["otrainmodel"]),)
        same = "\\x00" not in t.task._rows
dlprov_otel.shutdown()
rows = [s.attributes["dlprov.data.epoch"] for s in exporter.get_finished_spans()
        if s.attributes.get("dlprov.dataset.tag") == "otrainmodel"]
print(json.dumps({"quick": quick, "before": before, "after": after, "same": same, "rows": rows}))
"""


def test_the_hot_path_is_warmed_before_the_first_row_and_the_warm_up_records_nothing(tmp_path):
    """A training loop calls ``t.output`` once per epoch, often fewer than the 8 calls after
    which CPython 3.11 specializes a function: in a fresh process, the task warms the row
    recorder and ``TaskScope.output`` when it starts, and the warm-up records nothing."""
    out = subprocess.run([sys.executable, "-c", WARM, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.splitlines()[-1])
    if sys.version_info[:2] == (3, 11):
        assert got["quick"] == [True, True, True]
    emitted, journalled = got["before"]
    assert got["after"] == [emitted + 1, journalled + 1]
    assert got["same"] is True
    assert got["rows"] == [[7.0]]
