"""The store's read model on a real embedded store (monetdbe): dataflows, executions, tasks,
elements, and one lineage rule that the PROV document and the dashboard's drawing share."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prov.constants import PROV_N_MAP

import dlprov_otel
from dlprov_otel import Dataflow, DataSet, Element, Task, execution, semconv
from dlprov_otel.model import DataflowSpec
from dlprov_otel.prov import build_document
from dlprov_otel.store import readmodel, schema
from dlprov_otel.store.lineage import link
from dlprov_otel.ui import data
from tests.seedflow import epoch_loss, record_seed_flow


@pytest.fixture
def seeded(dlprov, store_dir: Path):
    """Two runs of the seed's MNIST flow (3 and 2 epochs)."""
    first = record_seed_flow(store_dir, epochs=3, exec_tag="run-a")
    second = record_seed_flow(store_dir, epochs=2, exec_tag="run-b")
    return dlprov.store, first, second


def _adaptation_run(store_dir: Path) -> str:
    """Adaptations that run while training still produces epochs (the time cut-off matters)."""
    df = Dataflow("adapt", predefined=True)
    df.save()
    with execution("adapt-run", dataflow=df):
        train = Task(1, df, "adapt-run", "trainmodel")
        train.add_dataset(DataSet("itrainmodel", [Element(["sgd", 0.1, 4, 2])]))
        train.begin()
        for epoch in range(4):
            train.add_dataset(DataSet("otrainmodel", [Element(["t", 1.0, 1.0 / (epoch + 1), 0.5, 0.4, 0.6, epoch])]))
            train.save()
            time.sleep(0.02)  # the store keeps milliseconds
            if epoch in (1, 2):
                adapt = Task(10 + epoch, df, "adapt-run", "adaptation", dependency=train)
                adapt.add_dataset(DataSet("iadaptation", [Element({"adaptation_id": f"a{epoch}"})]))
                adapt.begin()
                adapt.add_dataset(
                    DataSet("oadaptation", [Element({"adaptation_id": f"a{epoch}", "new_learning_rate": 0.01})])
                )
                adapt.end()
                time.sleep(0.02)
        train.end()
    assert dlprov_otel.flush()
    return "adapt-run"


def test_schema_layout_covers_every_provenance_column() -> None:
    layout = [c for c, _ in schema.SET_LEAD_COLUMNS + schema.SET_TRAIL_COLUMNS]
    assert sorted(layout) == sorted(semconv.PROVENANCE_COLUMNS)
    assert schema.RESERVED_COLUMNS == semconv.RESERVED_COLUMNS
    assert schema.INTERNAL_COLUMNS < schema.RESERVED_COLUMNS
    assert data.HIDDEN_COLUMNS == schema.INTERNAL_COLUMNS


def test_dataflows_and_specs(seeded) -> None:
    store, _, _ = seeded
    (flow,) = readmodel.dataflows(store)
    assert (flow.tag, flow.version) == ("mnist", 1)
    assert readmodel.dataflow_tags(store) == ["mnist"]
    spec = readmodel.latest_spec(store, "mnist")
    assert isinstance(spec, DataflowSpec)
    assert spec.hash == flow.spec_hash
    assert {"loaddata", "splitdata", "trainmodel", "testmodel"} <= {t["tag"] for t in spec.transformations}
    assert readmodel.latest_specs(store)["mnist"].hash == spec.hash
    (version,) = readmodel.spec_versions(store, "mnist")
    assert version.spec is not None and version.spec.hash == spec.hash
    assert readmodel.latest_spec(store, "nope") is None
    assert readmodel.runs_per_dataflow(store)["mnist"].executions == 2
    tables = readmodel.set_tables(store, "mnist")
    tags = readmodel.set_tags(store, "mnist", spec)
    assert tags == [t for t in spec.sets if t in tables] and {"iinputdataset", "otrainmodel"} <= set(tags)
    columns = tables["otrainmodel"]
    assert columns[0][0] == "task_id" and [c for c, _ in columns[-9:]] == [c for c, _ in schema.SET_TRAIL_COLUMNS]
    assert dict(columns)["loss"] == "double"
    assert {a.name for a in readmodel.attributes(store, "mnist") if a.ds_tag == "otrainmodel"} >= {"loss", "epoch"}


def test_executions_with_counts(seeded) -> None:
    store, first, second = seeded
    summaries = readmodel.execution_summaries(store)
    assert [s.tag for s in summaries] == [first, second]
    assert [s.tasks for s in summaries] == [4, 4]
    assert all(s.status == "FINISHED" for s in summaries)
    assert list(summaries[0].as_dict()) == readmodel.SUMMARY_COLUMNS
    counts = readmodel.element_counts(store, first)
    assert counts["otrainmodel"] == 3
    assert readmodel.element_counts(store, second)["otrainmodel"] == 2
    (ex,) = readmodel.executions(store, tag=first)
    assert ex.dataflow_tag == "mnist" and ex.scientist == "Débora Pina"
    assert [e.tag for e in readmodel.executions(store, newest_first=True)] == [second, first]
    assert readmodel.execution_tags(store) == [first, second]
    hw = readmodel.hardware(store, [ex.hardware_id])[ex.hardware_id]
    assert hw.host_name and isinstance(hw.gpu_list(), list)
    procs = readmodel.processes(store, [first])[first]
    assert procs and procs[0].pid and procs[0].host_name == hw.host_name
    assert set(readmodel.last_activity(store, [ex.trace_id])) == {ex.trace_id}


def test_tasks_and_elements(seeded) -> None:
    store, first, _ = seeded
    tasks = readmodel.tasks(store, [first])
    assert [t.dt_tag for t in tasks] == ["loaddata", "splitdata", "trainmodel", "testmodel"]
    assert all(t.execution_tag == first and t.status == "FINISHED" for t in tasks)
    assert readmodel.task_status_counts(store)[first] == {"FINISHED": 4}
    deps = readmodel.task_dependencies(store, [first])
    assert {(d.task_id, d.depends_on_task_id) for d in deps} >= {("2", "1"), ("3", "2"), ("4", "3")}
    epochs = readmodel.elements(store, "mnist", "otrainmodel", [first])
    # emission times may tie within a millisecond: the epoch orders them
    assert [e.get("loss") for e in sorted(epochs, key=lambda e: e.get("epoch"))] == [epoch_loss(i) for i in range(3)]
    assert all(e.execution_tag == first and e.producer_task_id == "3" for e in epochs)
    assert not any(name in schema.RESERVED_COLUMNS for name, _ in epochs[0].attributes())
    assert readmodel.count_elements(store, "mnist", "otrainmodel") == 5
    assert readmodel.count_elements(store, "mnist", "otrainmodel", first) == 3
    last = readmodel.boundary_elements(store, "mnist", "otrainmodel", ["execution_tag", "emitted_at"], [first])
    assert last[first][1] == 3 and last[first][0]["loss"] == epoch_loss(2)
    rows = readmodel.element_rows(store, "mnist", "otrainmodel", ["loss", "epoch"], first, limit=2)
    assert len(rows) == 2 and all(loss == epoch_loss(int(epoch)) for loss, epoch in rows)


def _prov_used(store, tag: str) -> set[tuple[str, str, str]]:
    """(set, producer task, consumer task) for every element a task used that another made."""
    doc = build_document(store, execution=tag)
    records = list(doc.get_records())
    elements = {r.identifier: r for r in records if r.is_element()}

    def attr(record, name):
        values = record.get_attribute(name)
        return str(next(iter(values))) if values else None

    made_by = {}
    for r in records:
        if r.is_relation() and PROV_N_MAP.get(r.get_type()) == "wasGeneratedBy":
            made_by[r.formal_attributes[0][1]] = attr(elements[r.formal_attributes[1][1]], "dlprov:task_id")
    out = set()
    for r in records:
        if r.is_relation() and PROV_N_MAP.get(r.get_type()) == "used":
            task, entity = r.formal_attributes[0][1], r.formal_attributes[1][1]
            consumer = attr(elements[task], "dlprov:task_id")
            if entity in made_by and consumer is not None:
                out.add((attr(elements[entity], "dlprov:ds_tag"), made_by[entity], consumer))
    return out


def _drawn_used(store, tag: str) -> set[tuple[str, str, str]]:
    """The same, from the dashboard's lineage drawing."""
    doc = data.execution_detail(store, tag)
    out = set()
    for edge in doc["lineage"]["edges"]:
        if edge["kind"] == "used" and edge["from"].startswith("d:") and ":output:" in edge["from"]:
            _, set_tag, _, producer = edge["from"].split(":", 3)
            out.add((set_tag, producer, edge["to"][len("t:") :]))
    return out


def test_prov_document_and_dashboard_follow_one_lineage_rule(seeded, store_dir: Path) -> None:
    store, first, _ = seeded
    tag = _adaptation_run(store_dir)
    for execution_tag in (first, tag):
        drawn, documented = _drawn_used(store, execution_tag), _prov_used(store, execution_tag)
        assert drawn == documented and drawn, execution_tag
    # the seed: each task uses its predecessor's outputs
    assert ("otrainset", "2", "3") in _drawn_used(store, first)
    # adaptations during training used the epoch they saw, not every epoch
    assert {("otrainmodel", "1", "11"), ("otrainmodel", "1", "12")} <= _drawn_used(store, tag)


def test_time_cut_off_of_the_lineage_rule(dlprov, store_dir: Path) -> None:
    store = dlprov.store
    tag = _adaptation_run(store_dir)
    spec = readmodel.latest_spec(store, "adapt")
    elements = [
        el for s in readmodel.set_tags(store, "adapt", spec) for el in readmodel.elements(store, "adapt", s, [tag])
    ]
    links = link(spec, readmodel.tasks(store, [tag]), readmodel.task_dependencies(store, [tag]), elements)
    used = {node.id: [(s, [el.get("epoch") for el in found]) for s, found in links.used[node]] for node in links.tasks}
    # task 11 started after epoch 1, task 12 after epoch 2: one epoch each, not all four
    assert used["11"] == [("otrainmodel", [1.0])]
    assert used["12"] == [("otrainmodel", [2.0])]
    assert [d.id for d in next(n for n in links.tasks if n.id == "11").deps] == ["1"]


def test_example_queries_run(seeded) -> None:
    store = seeded[0]
    for label, statements in schema.example_queries("mnist"):
        result = store.run_script(statements, read_only=True)
        assert result.rows, label
    (executions,) = [q for q in data.example_queries("mnist") if q["label"] == "executions"]
    assert executions["sql"] == "SELECT * FROM dataflow_execution;"


def test_a_running_task_is_linked_alike_in_both_views(dlprov) -> None:
    """Dependencies are stored when a task ends: while it runs, neither view guesses them."""
    df = Dataflow("live", predefined=True)
    df.save()
    with execution("live-run", dataflow=df):
        load = Task(1, df, "live-run", "loaddata")
        load.begin()
        load.add_dataset(DataSet("oloaddata", [Element(["/data"])]))
        load.end()
        split = Task(2, df, "live-run", "splitdata", dependency=load)
        split.add_dataset(DataSet("isplitconfig", [Element([60])]))
        split.begin()
        split.add_dataset(DataSet("otrainset", [Element(["/data/train.npz"])]))
        split.end()
        train = Task(3, df, "live-run", "trainmodel", dependency=split)
        train.begin()
        assert dlprov_otel.flush()
        store = dlprov.store
        running = [t for t in readmodel.tasks(store, ["live-run"]) if t.status == "RUNNING"]
        assert [t.id for t in running] == ["3"]
        assert _drawn_used(store, "live-run") == _prov_used(store, "live-run") == {("oloaddata", "1", "2")}
        train.end()
    assert dlprov_otel.flush()
    assert ("otrainset", "2", "3") in _drawn_used(dlprov.store, "live-run")
    assert _drawn_used(dlprov.store, "live-run") == _prov_used(dlprov.store, "live-run")


def test_an_execution_is_found_by_its_tag_latest_its_name_or_a_prefix(dlprov, store_dir: Path) -> None:
    record_seed_flow(store_dir, epochs=1, exec_tag="\r")  # a tag of blanks is a tag all the same
    record_seed_flow(store_dir, epochs=1, exec_tag="mnist-20261201-101010-ab12")
    store = dlprov.store
    assert readmodel.resolve_execution(store, "\r").tag == "\r"
    assert readmodel.resolve_execution(store, " latest ").tag == "mnist-20261201-101010-ab12"
    assert readmodel.resolve_execution(store, "mnist-2026").tag == "mnist-20261201-101010-ab12"
    with pytest.raises(readmodel.ExecutionLookupError, match="unknown execution 'nope'"):
        readmodel.resolve_execution(store, "nope")
