"""The Pythonic API (execution, task, step) over the same model and spans."""

from __future__ import annotations

import os

import pytest

import dlprov_otel
from dlprov_otel import semconv


def test_execution_and_task_blocks(memory):
    with dlprov_otel.execution("py-1", dataflow="mnist") as ex:
        assert dlprov_otel.current_execution() is ex
        with dlprov_otel.task(
            "trainmodel",
            inputs={"itrainmodel": {"optimizer_name": "sgd", "learning_rate": 0.1, "num_epochs": 1, "num_layers": 2}},
        ) as t:
            t.output(
                "otrainmodel",
                timestamp="now",
                elapsed_time=1,
                loss=0.5,
                accuracy=0.7,
                val_loss=None,
                val_accuracy=None,
                epoch=0,
            )
    assert dlprov_otel.current_execution() is None
    (root,) = memory.kind(semconv.KIND_EXECUTION)  # ended with its block, not at shutdown
    assert root.attributes[semconv.EXECUTION_STATUS] == semconv.FINISHED
    assert root.attributes[semconv.EXECUTION_TAG] == "py-1"
    assert root.attributes[semconv.DATAFLOW_TAG] == "mnist"
    assert root.attributes[semconv.EXECUTION_SCIENTIST]
    (task,) = memory.kind(semconv.KIND_TASK)
    assert task.attributes[semconv.EXECUTION_TAG] == "py-1" and task.parent.span_id == root.context.span_id
    inputs, outputs = memory.kind(semconv.KIND_DATASET)
    assert inputs.attributes[semconv.DATASET_ROLE] == "INPUT"
    assert inputs.attributes[semconv.data_key("optimizer_name")] == ("sgd",)
    assert outputs.attributes[semconv.DATASET_ROLE] == "OUTPUT"
    assert outputs.attributes[semconv.data_key("loss")] == (0.5,)


def test_a_failed_block_marks_task_and_execution_failed(memory):
    with pytest.raises(ZeroDivisionError), dlprov_otel.execution("py-fail", dataflow="mnist"):
        with dlprov_otel.task("trainmodel"):
            1 / 0  # noqa: B018
    (task,) = memory.kind(semconv.KIND_TASK)
    assert task.attributes[semconv.TASK_STATUS] == semconv.FAILED
    assert "ZeroDivisionError" in task.attributes[semconv.TASK_ERROR]
    (root,) = memory.kind(semconv.KIND_EXECUTION)
    assert root.attributes[semconv.EXECUTION_STATUS] == semconv.FAILED
    assert root.attributes[semconv.EXECUTION_ERROR] == "ZeroDivisionError: division by zero"
    assert root.status.status_code.name == "ERROR"


def test_step_makes_each_call_a_task(memory):
    @dlprov_otel.step("testmodel")
    def evaluate(x: float) -> float:
        """Evaluate."""
        return x * 2

    with dlprov_otel.execution("py-step", dataflow="mnist"):
        assert evaluate(1.5) == 3.0
        assert evaluate(2.0) == 4.0
    assert evaluate.__name__ == "evaluate" and evaluate.__doc__ == "Evaluate."
    tasks = memory.kind(semconv.KIND_TASK)
    assert [t.name for t in tasks] == ["testmodel", "testmodel"]
    ids = [t.attributes[semconv.TASK_ID] for t in tasks]
    assert len(set(ids)) == 2  # one task per call
    assert {t.attributes[semconv.EXECUTION_TAG] for t in tasks} == {"py-step"}


def test_rows_as_lists_mappings_and_keywords(memory):
    with dlprov_otel.execution("py-rows", dataflow="mnist"):
        with dlprov_otel.task("testmodel", id="t-list") as t:
            t.output("otestmodel", [0.1, 0.9])  # one element as a list of values
        with dlprov_otel.task("testmodel", id="t-rows") as t:
            t.output("otestmodel", [[0.2, 0.8], {"loss": 0.3, "accuracy": 0.7}])  # two elements
        with dlprov_otel.task("testmodel", id="t-kw", depends_on="t-list") as t:
            t.output("otestmodel", loss=0.4, accuracy=0.6)
    by_task = {d.attributes[semconv.TASK_ID]: d.attributes for d in memory.kind(semconv.KIND_DATASET)}
    assert by_task["t-list"][semconv.data_key("loss")] == (0.1,)
    assert by_task["t-rows"][semconv.data_key("loss")] == (0.2, 0.3)
    assert by_task["t-kw"][semconv.data_key("accuracy")] == (0.6,)
    deps = {t.attributes[semconv.TASK_ID]: t.attributes[semconv.TASK_DEPENDENCIES] for t in memory.kind("task")}
    assert deps["t-kw"] == ("t-list",)


def test_a_task_outside_an_execution_joins_the_process_execution(memory):
    with dlprov_otel.task("testmodel", dataflow="mnist") as t1:
        t1.output("otestmodel", loss=0.1, accuracy=0.9)
    with dlprov_otel.task("testmodel", dataflow="mnist") as t2:
        t2.output("otestmodel", loss=0.2, accuracy=0.8)
    a, b = memory.kind(semconv.KIND_TASK)
    assert a.attributes[semconv.EXECUTION_TAG] == b.attributes[semconv.EXECUTION_TAG]
    assert a.attributes[semconv.EXECUTION_TAG].startswith("mnist-")
    assert a.context.trace_id == b.context.trace_id


V = {"val_loss": None, "val_accuracy": None}
ROWS = [
    {"timestamp": "t0", "elapsed_time": 1.5, "loss": 0.25, "accuracy": 0.9, "val_loss": None,
     "val_accuracy": float("nan"), "epoch": 3},
    {"timestamp": "t1", "elapsed_time": 2, "loss": 0.125, "accuracy": 1, "epoch": 4, **V},  # ints
    {"timestamp": "t2", "elapsed_time": 2**60, "loss": 0.1, "accuracy": 0.5, "epoch": 5, **V},  # a huge int
    {"timestamp": 7, "elapsed_time": 1.0, "loss": 0.1, "accuracy": 0.5, "epoch": 6, **V},  # a number as TEXT
    {"timestamp": "t3", "elapsed_time": "1.5", "loss": 0.1, "accuracy": 0.5, "epoch": 7, **V},  # text as a number
    {"timestamp": "t4", "elapsed_time": 1.0, "loss": 0.1, "accuracy": 0.5, "epoch": 8, "lr": 0.01, **V},  # undeclared
]


def _rows(spans):
    out = []
    for s in spans:
        a = dict(s.attributes)
        out.append({k: (tuple("nan" if v != v else v for v in a[k]) if isinstance(a[k], tuple) else a[k])
                    for k in a})
    return out


@pytest.mark.parametrize("row", ROWS)
def test_a_plain_row_is_recorded_as_the_general_path_records_it(memory, row):
    """t.output(**values) of a running task takes a shorter path; what it records is the same."""
    with dlprov_otel.execution("fast", dataflow="mnist"):
        with dlprov_otel.task("trainmodel") as t:
            t.output("otrainmodel", **row)  # keywords: the hot path when the row allows it
            t.output("otrainmodel", [row])  # a list of rows: always the general path
    fast, general = memory.kind(semconv.KIND_DATASET)
    assert _rows([fast]) == _rows([general])


def test_a_bad_row_still_fails_where_it_is_written(memory):
    from dlprov_otel import ElementError

    with dlprov_otel.execution("fast-bad", dataflow="mnist"):
        with dlprov_otel.task("trainmodel") as t:
            t.output("otrainmodel", timestamp="t", elapsed_time=1.0, loss=0.1, accuracy=0.5, epoch=0, **V)
            with pytest.raises(ElementError, match="loss"):
                t.output("otrainmodel", timestamp="t", elapsed_time=1.0, loss="high", accuracy=0.5, epoch=1, **V)
            with pytest.raises(ElementError, match="lacks required"):
                t.output("otrainmodel", timestamp="t", loss=0.1)


def test_the_hot_path_skips_the_general_one(memory, monkeypatch):
    from dlprov_otel import api

    def general(*_a, **_k):
        raise AssertionError("the general path ran for a plain row")

    with dlprov_otel.execution("fast-only", dataflow="mnist"):
        with dlprov_otel.task("trainmodel") as t:
            monkeypatch.setattr(api, "dataset_attributes", general)
            for epoch in range(3):
                t.output("otrainmodel", timestamp="t", elapsed_time=1.0, loss=0.1, accuracy=0.5, epoch=epoch, **V)
    assert [s.attributes[semconv.data_key("epoch")] for s in memory.kind(semconv.KIND_DATASET)] == [
        (0.0,), (1.0,), (2.0,)]


def test_undecodable_bytes_in_a_path_become_storable_text(memory):
    # a model saved under a file name that is not UTF-8 (Latin-1 é): Python's os.fsdecode makes a
    # lone surrogate of the byte, which no store and no OTLP message can carry
    path = os.fsdecode(b"/data/mod\xe8le.pt")
    with dlprov_otel.execution("py-bytes", dataflow="mnist"):
        with dlprov_otel.task("trainmodel") as t:
            t.output("otrainedmodel", model_name="net", model_dir=path)
    (row,) = [d for d in memory.kind(semconv.KIND_DATASET) if d.attributes[semconv.DATASET_TAG] == "otrainedmodel"]
    stored = row.attributes[semconv.data_key("model_dir")]
    assert stored == ("/data/mod\ufffdle.pt",)
    stored[0].encode("utf-8")  # no lone surrogate left
