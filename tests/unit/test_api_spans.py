"""The DfAnalyzer API (Dataflow, Task, DataSet, Element) as OpenTelemetry spans, per semconv."""

from __future__ import annotations

import json
import math

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from dlprov_otel import Dataflow, DataSet, DLProvError, Element, SpecError, Task, Transformation, semconv
from dlprov_otel.model import Attribute, AttributeType, Set, SetType

from .user_scripts import seed_snippet


def test_seed_snippet_becomes_spans(memory):
    seed_snippet("run-1")
    finished = memory.spans()
    (df_span,) = [s for s in finished if s.attributes[semconv.KIND] == semconv.KIND_DATAFLOW]
    assert df_span.attributes[semconv.DATAFLOW_TAG] == "mnist"
    assert '"trainmodel"' in df_span.attributes[semconv.DATAFLOW_SPEC]
    (task,) = memory.kind(semconv.KIND_TASK)
    assert task.name == "trainmodel"
    assert task.attributes[semconv.TASK_STATUS] == semconv.FINISHED
    assert task.attributes[semconv.TASK_ID] == "1"
    datasets = memory.kind(semconv.KIND_DATASET)
    assert [d.attributes[semconv.DATASET_TAG] for d in datasets] == ["itrainmodel", "otrainmodel", "otrainmodel"]
    # every emission is a child of its task, in the execution's trace
    for d in datasets:
        assert d.parent.span_id == task.context.span_id
        assert d.context.trace_id == task.context.trace_id
        assert d.attributes[semconv.EXECUTION_TAG] == "run-1"
        assert d.attributes[semconv.TRANSFORMATION_TAG] == "trainmodel"
        assert d.attributes[semconv.TASK_ID] == "1"
    first = datasets[0].attributes
    assert first[semconv.DATASET_ROLE] == "INPUT"
    assert first[semconv.DATASET_ELEMENTS] == 1
    assert tuple(first[semconv.DATASET_ATTRIBUTES]) == (
        "optimizer_name",
        "learning_rate",
        "num_epochs",
        "num_layers",
        "batch_size",
    )
    assert tuple(first[semconv.DATASET_TYPES]) == ("TEXT", "NUMERIC", "NUMERIC", "NUMERIC", "NUMERIC")
    assert first[semconv.data_key("learning_rate")] == (0.001,)
    assert first[semconv.data_key("batch_size")] == (None,)  # optional, not given
    epoch1 = datasets[2].attributes
    assert epoch1[semconv.DATASET_ROLE] == "OUTPUT"
    assert epoch1[semconv.data_key("loss")] == (0.15,)
    assert math.isnan(epoch1[semconv.data_key("val_loss")][0])
    assert epoch1[semconv.data_key("val_accuracy")] == (None,)
    # the task's RUNNING marker, then the execution: its start marker is out, the root span
    # ends at shutdown
    (state,) = memory.kind(semconv.KIND_TASK_STATE)
    assert state.attributes[semconv.TASK_STATUS] == semconv.RUNNING and state.parent.span_id == task.context.span_id
    (start,) = memory.kind(semconv.KIND_EXECUTION_START)
    assert start.attributes[semconv.EXECUTION_TAG] == "run-1"
    assert start.attributes[semconv.EXECUTION_STATUS] == semconv.RUNNING
    assert start.attributes[semconv.HOST_NAME]
    assert start.parent is not None and start.context.trace_id == task.context.trace_id
    assert memory.kind(semconv.KIND_EXECUTION) == []
    (root,) = [s for s in memory.close() if s.attributes[semconv.KIND] == semconv.KIND_EXECUTION]
    assert root.attributes[semconv.EXECUTION_STATUS] == semconv.FINISHED
    assert root.context.span_id == task.parent.span_id == start.parent.span_id


def test_the_in_memory_pipeline_opens_no_store(memory):
    assert memory.telemetry.store is None and memory.telemetry.pending_store is None
    assert memory.telemetry.target == "exporter:InMemorySpanExporter"


def test_dependencies_are_links_and_attributes(memory, exec_tag):
    Dataflow("mnist", predefined=True).save()
    t0 = Task(0, "mnist", exec_tag, "loaddata")
    t0.add_dataset(DataSet("iinputdataset", [Element(["digits", "sklearn"])]))
    t0.begin()
    t0.add_dataset(DataSet("oloaddata", [Element(["/tmp/x"])]))
    t0.end()
    t1 = Task(1, "mnist", exec_tag, "splitdata", dependency=t0)
    t1.end()
    t2 = Task(2, "mnist", exec_tag, "trainmodel", dependency=[1])  # by id, within the execution
    t2.end()
    tasks = {s.attributes[semconv.TASK_ID]: s for s in memory.kind(semconv.KIND_TASK)}
    assert [lk.context.span_id for lk in tasks["1"].links] == [tasks["0"].context.span_id]
    assert tuple(tasks["1"].attributes[semconv.TASK_DEPENDENCIES]) == ("0",)
    assert tuple(tasks["1"].attributes[semconv.TASK_DEPENDENCY_TRANSFORMATIONS]) == ("loaddata",)
    assert tuple(tasks["2"].attributes[semconv.TASK_DEPENDENCIES]) == ("1",)
    assert [lk.context.span_id for lk in tasks["2"].links] == [tasks["1"].context.span_id]
    assert tasks["0"].attributes[semconv.TASK_DEPENDENCIES] == ()


def test_numpy_values_become_plain_numbers(memory, exec_tag):
    Dataflow("mnist", predefined=True).save()
    t = Task(1, "mnist", exec_tag, "testmodel")
    t.add_dataset(DataSet("otestmodel", [Element([np.float32(0.25), np.array(0.5)])]))
    t.end()
    (d,) = memory.kind(semconv.KIND_DATASET)
    assert d.attributes[semconv.data_key("loss")] == (0.25,)
    assert type(d.attributes[semconv.data_key("accuracy")][0]) is float


def test_elements_by_name_and_several_per_dataset(memory, exec_tag):
    Dataflow("mnist", predefined=True).save()
    t = Task(7, "mnist", exec_tag, "testmodel")
    ds = DataSet("otestmodel", [{"loss": 0.1, "accuracy": 0.9}])
    ds.add_element(Element(loss=0.2, accuracy=0.8))
    ds.add_element([0.3, 0.7])
    t.add_dataset(ds)
    t.end()
    (d,) = memory.kind(semconv.KIND_DATASET)
    assert d.attributes[semconv.DATASET_ELEMENTS] == 3
    assert d.attributes[semconv.data_key("loss")] == (0.1, 0.2, 0.3)
    assert d.attributes[semconv.data_key("accuracy")] == (0.9, 0.8, 0.7)


def test_an_undeclared_attribute_gets_a_column_with_its_inferred_type(memory, exec_tag):
    Dataflow("mnist", predefined=True).save()
    t = Task(1, "mnist", exec_tag, "testmodel")
    t.add_dataset(DataSet("otestmodel", [{"loss": 0.1, "accuracy": 0.9}, {"loss": 0.2, "accuracy": 0.8, "f1": 0.5}]))
    t.add_dataset(DataSet("otestmodel", [{"loss": 0.3, "accuracy": 0.7, "note": "late"}]))
    t.end()
    first, second = memory.kind(semconv.KIND_DATASET)
    assert tuple(first.attributes[semconv.DATASET_ATTRIBUTES]) == ("loss", "accuracy", "f1")
    assert tuple(first.attributes[semconv.DATASET_TYPES]) == ("NUMERIC", "NUMERIC", "NUMERIC")
    assert first.attributes[semconv.data_key("f1")] == (None, 0.5)  # padded for the element without it
    assert tuple(second.attributes[semconv.DATASET_TYPES])[-1] == "TEXT"
    assert second.attributes[semconv.data_key("note")] == ("late",)


def test_an_undeclared_reserved_name_is_refused(memory, exec_tag):
    Dataflow("mnist", predefined=True).save()
    t = Task(1, "mnist", exec_tag, "testmodel")
    with pytest.raises(SpecError, match=r"attribute name 'task_id' is reserved"):
        t.add_dataset(DataSet("otestmodel", [{"loss": 0.1, "accuracy": 0.9, "task_id": 3}]))


def test_a_dataflow_is_sent_once_per_version(memory, exec_tag):
    df = Dataflow("versioned", predefined=True)
    df.save()
    df.save()  # unchanged: no second span
    first = memory.kind(semconv.KIND_DATAFLOW)
    assert len(first) == 1
    extra = Set("iextra", SetType.INPUT, [Attribute("k", AttributeType.NUMERIC)])
    df.add_transformation(Transformation("extra", [extra], []))
    assert df.dirty
    # a task of the new transformation records the new version without another save()
    Task(1, df, exec_tag, "extra").end()
    specs = [s.attributes for s in memory.kind(semconv.KIND_DATAFLOW)]
    assert len(specs) == 2 and specs[0][semconv.DATAFLOW_SPEC_HASH] != specs[1][semconv.DATAFLOW_SPEC_HASH]
    assert "extra" in [t["tag"] for t in json.loads(specs[1][semconv.DATAFLOW_SPEC])["transformations"]]
    assert not df.dirty


def test_a_failed_task_records_its_error(memory, exec_tag):
    Dataflow("mnist", predefined=True).save()
    with pytest.raises(ValueError, match="diverged"), Task(3, "mnist", exec_tag, "trainmodel"):
        raise ValueError("loss diverged")
    t = Task(4, "mnist", exec_tag, "testmodel")
    t.fail("out of memory")
    failed = {s.attributes[semconv.TASK_ID]: s for s in memory.kind(semconv.KIND_TASK)}
    assert failed["3"].attributes[semconv.TASK_STATUS] == semconv.FAILED
    assert failed["3"].attributes[semconv.TASK_ERROR] == "ValueError: loss diverged"
    assert failed["3"].status.status_code.name == "ERROR"
    assert [e.name for e in failed["3"].events] == ["exception"]
    assert failed["4"].attributes[semconv.TASK_ERROR] == "out of memory"
    with pytest.raises(DLProvError, match=r"task '4' \(testmodel\) has ended"):
        t.add_dataset(DataSet("otestmodel", [Element([0.1, 0.2])]))


def test_save_records_only_what_was_added_since(memory, exec_tag):
    Dataflow("mnist", predefined=True).save()
    t = Task(1, "mnist", exec_tag, "testmodel")
    t.save()  # begins the task; nothing to record yet
    assert memory.kind(semconv.KIND_DATASET) == []
    t.add_dataset(DataSet("otestmodel", [Element([0.5, 0.5])]))
    t.save()
    t.save()
    t.end()
    t.end()  # a second end changes nothing
    assert len(memory.kind(semconv.KIND_DATASET)) == 1
    assert len(memory.kind(semconv.KIND_TASK)) == 1


def test_sub_ids_and_exec_tags_are_strings(memory):
    Dataflow("mnist", predefined=True).save()
    t = Task(5, "mnist", 42, "testmodel", sub_id="-a")
    t.end()
    (task,) = memory.kind(semconv.KIND_TASK)
    assert task.attributes[semconv.TASK_ID] == "5-a"
    assert task.attributes[semconv.EXECUTION_TAG] == "42"


def test_seeded_random_does_not_repeat_trace_ids(tmp_path):
    """Scripts call random.seed(42); two runs must still be two traces (the store dedups ids)."""
    import random

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import dlprov_otel

    trace_ids = []
    for n in range(2):
        random.seed(42)
        exporter = InMemorySpanExporter()
        dlprov_otel.configure(exporter=exporter, spool_dir=tmp_path / "spool", schedule_delay=0.01, set_global=False)
        Dataflow("mnist", predefined=True).save()
        Task(1, "mnist", f"seeded-{n}", "testmodel").end()
        dlprov_otel.shutdown()
        (task,) = [s for s in exporter.get_finished_spans() if s.attributes[semconv.KIND] == semconv.KIND_TASK]
        trace_ids.append(task.context.trace_id)
    assert trace_ids[0] != trace_ids[1]


NUMBER = st.one_of(
    st.none(),
    st.floats(),  # NaN and infinities included
    st.integers(-(2**53), 2**53),
    st.builds(np.float32, st.floats(width=32)),
    st.builds(np.int64, st.integers(-(2**62), 2**62)),
    st.sampled_from(["", "null", " 1.5 "]),  # text a NUMERIC attribute reads as missing or a number
)
TEXT = st.one_of(st.none(), st.booleans(), st.text(st.characters(exclude_characters="\x00"), max_size=10))


@st.composite
def rows(draw) -> list[dict]:
    """Elements of a set with a declared NUMERIC attribute and an undeclared one, whose type comes
    from its first value (so its values stay of that kind)."""
    note = draw(st.sampled_from([NUMBER, TEXT]))
    return draw(st.lists(st.fixed_dictionaries({"loss": NUMBER, "note": note}), min_size=1, max_size=4))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # one pipeline for all examples
@given(elements=rows())
def test_no_dataset_attribute_is_dropped_by_the_sdk(memory, elements):
    """OpenTelemetry silently drops an attribute whose list mixes types: every declared and
    undeclared attribute of every element must reach the exported span."""
    df = Dataflow("anyvalues")
    df.add_transformation(
        Transformation("t", [], [Set("o", SetType.OUTPUT, [Attribute("loss", AttributeType.NUMERIC, optional=True)])])
    )
    df.save()
    before = len(memory.exporter.get_finished_spans())
    task = Task(1, df, f"anyvalues-{before}", "t")
    task.add_dataset(DataSet("o", [Element(r) for r in elements]))
    task.end()
    (span,) = [s for s in memory.spans()[before:] if s.attributes[semconv.KIND] == semconv.KIND_DATASET]
    names = tuple(span.attributes[semconv.DATASET_ATTRIBUTES])
    assert names[0] == "loss"
    if any(r["note"] is not None for r in elements):
        assert names == ("loss", "note")
    for name in names:
        values = span.attributes[semconv.data_key(name)]  # present: not dropped
        assert len(values) == len(elements)
        assert len({type(v) for v in values if v is not None}) <= 1  # one type per list
