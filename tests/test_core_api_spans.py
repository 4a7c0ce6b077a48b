"""The DfAnalyzer API as OpenTelemetry spans (captured with the SDK's in-memory exporter)."""

from __future__ import annotations

import math
from datetime import datetime

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dlprov_otel import Dataflow, DataSet, Element, Task, semconv


@pytest.fixture
def spans(dlprov):
    exporter = InMemorySpanExporter()
    dlprov.provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def seed_snippet(exec_tag: str, epochs: int = 2) -> None:
    """The seed's snippet, unchanged apart from its imports (and values filled in)."""
    dataflow_tag = "mnist"
    df = Dataflow(dataflow_tag, predefined=True)
    df.save()
    t1 = Task(1, dataflow_tag, exec_tag, "TrainModel")
    opt_name, lr, layers = "adam", 0.001, 4
    tf1_input = DataSet("iTrainModel", [Element([opt_name, lr, epochs, layers])])
    t1.add_dataset(tf1_input)
    t1.begin()
    final_epoch = epochs - 1
    for epoch in range(epochs):
        elapsed_time, loss, accuracy, val_loss, val_accuracy = 1.5, 0.3 / (epoch + 1), 0.9, math.nan, None
        tf1_output = DataSet(
            "oTrainModel",
            [
                Element(
                    [
                        datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
                        elapsed_time,
                        loss,
                        accuracy,
                        val_loss,
                        val_accuracy,
                        epoch,
                    ]
                )
            ],
        )
        t1.add_dataset(tf1_output)
        if epoch == final_epoch:
            t1.end()
        else:
            t1.save()


def by_kind(finished, kind):
    return [s for s in finished if s.attributes.get(semconv.KIND) == kind]


def test_seed_snippet_becomes_spans(dlprov, spans):
    seed_snippet("run-1")
    dlprov.flush()
    finished = spans.get_finished_spans()
    (df_span,) = by_kind(finished, semconv.KIND_DATAFLOW)
    assert df_span.attributes[semconv.DATAFLOW_TAG] == "mnist"
    assert '"trainmodel"' in df_span.attributes[semconv.DATAFLOW_SPEC]
    (task,) = by_kind(finished, semconv.KIND_TASK)
    assert task.name == "trainmodel"
    assert task.attributes[semconv.TASK_STATUS] == semconv.FINISHED
    assert task.attributes[semconv.TASK_ID] == "1"
    datasets = by_kind(finished, semconv.KIND_DATASET)
    assert [d.attributes[semconv.DATASET_TAG] for d in datasets] == ["itrainmodel", "otrainmodel", "otrainmodel"]
    # every emission is a child of its task, in the execution's trace
    for d in datasets:
        assert d.parent.span_id == task.context.span_id
        assert d.context.trace_id == task.context.trace_id
    first = datasets[0].attributes
    assert first[semconv.DATASET_ROLE] == "INPUT"
    assert tuple(first[semconv.DATASET_ATTRIBUTES]) == (
        "optimizer_name",
        "learning_rate",
        "num_epochs",
        "num_layers",
        "batch_size",
    )
    assert first[semconv.data_key("learning_rate")] == (0.001,)
    assert first[semconv.data_key("batch_size")] == (None,)  # optional, not given
    epoch1 = datasets[2].attributes
    assert epoch1[semconv.DATASET_ROLE] == "OUTPUT"
    assert epoch1[semconv.data_key("loss")] == (0.15,)
    assert math.isnan(epoch1[semconv.data_key("val_loss")][0])
    # the execution is the trace's root span, ended at shutdown; its start marker is already out
    (start,) = by_kind(finished, semconv.KIND_EXECUTION_START)
    assert start.attributes[semconv.EXECUTION_TAG] == "run-1"
    assert start.attributes[semconv.HOST_NAME]
    assert start.parent is not None and start.context.trace_id == task.context.trace_id


def test_dependencies_are_links_and_attributes(dlprov, spans):
    Dataflow("mnist", predefined=True).save()
    t0 = Task(0, "mnist", "run-2", "loaddata")
    t0.add_dataset(DataSet("iinputdataset", [Element(["digits", "sklearn"])]))
    t0.begin()
    t0.add_dataset(DataSet("oloaddata", [Element(["/tmp/x"])]))
    t0.end()
    t1 = Task(1, "mnist", "run-2", "splitdata", dependency=t0)
    t1.end()
    t2 = Task(2, "mnist", "run-2", "trainmodel", dependency=[1])
    t2.end()
    dlprov.flush()
    tasks = {s.attributes[semconv.TASK_ID]: s for s in by_kind(spans.get_finished_spans(), semconv.KIND_TASK)}
    assert [lk.context.span_id for lk in tasks["1"].links] == [tasks["0"].context.span_id]
    assert tuple(tasks["1"].attributes[semconv.TASK_DEPENDENCIES]) == ("0",)
    assert tuple(tasks["1"].attributes[semconv.TASK_DEPENDENCY_TRANSFORMATIONS]) == ("loaddata",)
    assert tuple(tasks["2"].attributes[semconv.TASK_DEPENDENCIES]) == ("1",)


def test_numpy_values_become_plain_numbers(dlprov, spans):
    import numpy as np
    Dataflow("mnist", predefined=True).save()
    t = Task(1, "mnist", "run-np", "testmodel")
    t.add_dataset(DataSet("otestmodel", [Element([np.float32(0.25), np.array(0.5)])]))
    t.end()
    dlprov.flush()
    (d,) = by_kind(spans.get_finished_spans(), semconv.KIND_DATASET)
    assert d.attributes[semconv.data_key("loss")] == (0.25,)
    assert type(d.attributes[semconv.data_key("accuracy")][0]) is float


def test_pythonic_api_over_the_same_model(dlprov, spans):
    import dlprov_otel

    with dlprov_otel.execution("py-1", dataflow="mnist"):
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
    dlprov.flush()
    finished = spans.get_finished_spans()
    (root,) = by_kind(finished, semconv.KIND_EXECUTION)
    assert root.attributes[semconv.EXECUTION_STATUS] == semconv.FINISHED
    assert len(by_kind(finished, semconv.KIND_DATASET)) == 2


def test_failed_block_marks_task_and_execution_failed(dlprov, spans):
    import dlprov_otel

    with pytest.raises(ZeroDivisionError), dlprov_otel.execution("py-fail", dataflow="mnist"):
        with dlprov_otel.task("trainmodel"):
            1 / 0  # noqa: B018
    dlprov.flush()
    finished = spans.get_finished_spans()
    (task,) = by_kind(finished, semconv.KIND_TASK)
    assert task.attributes[semconv.TASK_STATUS] == semconv.FAILED
    assert "ZeroDivisionError" in task.attributes[semconv.TASK_ERROR]
    (root,) = by_kind(finished, semconv.KIND_EXECUTION)
    assert root.attributes[semconv.EXECUTION_STATUS] == semconv.FAILED
