"""The PROV document built from the store: the reference's content, plus agents, times,
typed values, stable identifiers, and lossless round trips through the W3C formats."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from prov.constants import PROV_ACTIVITY, PROV_AGENT, PROV_ENTITY, PROV_N_MAP
from prov.model import ProvDocument

import dlprov_otel
from dlprov_otel import Dataflow, DataSet, Element, Task, cli, execution
from dlprov_otel.prov import (
    FORMATS,
    ProvExportError,
    UnknownTagError,
    build_document,
    export,
    file_stem,
)
from tests.seedflow import TEST_LOSS, epoch_loss, record_seed_flow

# What the original DLProv produced for a 2-epoch MNIST run (copied from its repository, MIT).
REFERENCE = Path(__file__).resolve().parent / "data" / "dlprov-mnist-example"


def _attr(record, name: str):
    """First value of attribute ``name``, also under the reference's faulty ``name:`` key."""
    for key, value in record.attributes:
        if str(key).rstrip(":") == name:
            return value
    return None


def _kind(record) -> tuple[str, str]:
    """What a node is, at tag level: ("entity", ds_tag), ("activity", dt_tag), ..."""
    t = record.get_type()
    if t == PROV_ENTITY:
        if "dlprov:Recipe" in {str(v) for k, v in record.attributes if str(k) == "prov:type"}:
            return ("entity", "recipe")
        if "Plan" in str(_attr(record, "prov:type")):
            return ("entity", "plan")
        return ("entity", str(_attr(record, "dlprov:ds_tag")))
    if t == PROV_ACTIVITY:
        if _attr(record, "dlprov:exec_tag") is not None:
            return ("activity", "execution")
        return ("activity", str(_attr(record, "dlprov:dt_tag")))
    return ("agent", str(_attr(record, "prov:type")))


def _structure(doc: ProvDocument) -> tuple[Counter, Counter]:
    elements = {r.identifier: r for r in doc.get_records() if r.is_element()}
    nodes = Counter(_kind(r) for r in elements.values())
    relations: Counter = Counter()
    for r in doc.get_records():
        if r.is_relation():
            a, b = r.formal_attributes[0][1], r.formal_attributes[1][1]
            relations[(PROV_N_MAP[r.get_type()], _kind(elements[a]), _kind(elements[b]))] += 1
    return nodes, relations


@pytest.fixture
def seed(dlprov, store_dir):
    tag = record_seed_flow(store_dir, epochs=2)
    return dlprov.store, tag


def test_document_has_the_reference_content(seed) -> None:
    store, tag = seed
    doc = build_document(store, execution=tag)
    reference = ProvDocument.deserialize(str(REFERENCE / "mnist-example.json"), format="json")
    ref_nodes, ref_relations = _structure(reference)
    nodes, relations = _structure(doc)
    # the reference: 11 entities, 5 activities, 8 used, 7 wasGeneratedBy, 4 wasInformedBy
    assert sum(n for (k, _), n in ref_nodes.items() if k == "entity") == 11
    assert sum(n for (k, _), n in ref_nodes.items() if k == "activity") == 5
    for key, count in ref_nodes.items():
        assert nodes[key] >= count, key
    for key, count in ref_relations.items():
        assert relations[key] >= count, key
    kinds = Counter(r for r, _, _ in relations.elements())
    assert kinds["used"] == 8 and kinds["wasGeneratedBy"] == 7
    # beyond the reference: dependencies between tasks, lineage, agents
    assert kinds["wasInformedBy"] == 4 + 4
    assert relations[("wasInformedBy", ("activity", "testmodel"), ("activity", "trainmodel"))] == 1
    assert relations[("wasDerivedFrom", ("entity", "otestmodel"), ("entity", "otrainedmodel"))] == 1
    assert relations[("wasDerivedFrom", ("entity", "otrainmodel"), ("entity", "itrainmodel"))] == 2
    assert relations[("wasAttributedTo", ("entity", "otrainedmodel"), ("agent", "prov:Person"))] == 1
    # the scientist and the hardware with the dataflow's plan; the entry script (a software agent)
    # with the run's recipe, for the execution and each of its 4 tasks
    assert kinds["wasAssociatedWith"] == 2 + 1 + 4
    assert relations[("wasAssociatedWith", ("activity", "trainmodel"), ("agent", "prov:SoftwareAgent"))] == 1


def test_agents_and_times(seed) -> None:
    store, tag = seed
    doc = build_document(store, execution=tag)
    agents = [r for r in doc.get_records() if r.get_type() == PROV_AGENT]
    person = [a for a in agents if str(_attr(a, "prov:type")) == "prov:Person"]
    hardware = [a for a in agents if str(_attr(a, "prov:type")) == "dlprov:Hardware"]
    assert [str(_attr(a, "prov:label")) for a in person] == ["Débora Pina"]
    host = store.query(f"SELECT host_name FROM {store.cat('hardware')}").rows[0][0]
    assert len(hardware) == 1 and _attr(hardware[0], "dlprov:host_name") == host
    plan = next(r.identifier for r in doc.get_records() if "dataflow/" in str(r.identifier))
    recipe = next(r for r in doc.get_records() if "recipe/" in str(r.identifier))
    assert {str(v) for k, v in recipe.attributes if str(k) == "prov:type"} == {"prov:Plan", "dlprov:Recipe"}
    software = next(a for a in agents if str(_attr(a, "prov:type")) == "prov:SoftwareAgent")
    assert _attr(recipe, "dlprov:script_sha256") == _attr(software, "dlprov:script_sha256")
    assert len(_attr(recipe, "dlprov:script_sha256")) == 64
    assert _attr(recipe, "dlprov:python_version")
    execution = next(r for r in doc.get_records() if _kind(r) == ("activity", "execution"))
    assocs = {
        (r.formal_attributes[1][1], r.formal_attributes[2][1])
        for r in doc.get_records()
        if PROV_N_MAP.get(r.get_type()) == "wasAssociatedWith"
        and r.formal_attributes[0][1] == execution.identifier
    }
    assert assocs == {
        (person[0].identifier, plan), (hardware[0].identifier, plan), (software.identifier, recipe.identifier)
    }
    ex_start, ex_end = execution.get_startTime(), execution.get_endTime()
    assert ex_start.tzinfo is not None and ex_start <= ex_end
    row = store.query(f"SELECT start_time FROM {store.cat('dataflow_execution')} WHERE tag = ?", [tag]).rows[0]
    assert ex_start == row[0].replace(tzinfo=dt.UTC)
    for r in doc.get_records():
        if r.get_type() == PROV_ACTIVITY:
            assert r.get_startTime() is not None and r.get_endTime() is not None, r
            assert ex_start <= r.get_startTime() <= r.get_endTime() <= ex_end


def test_values_are_typed_and_nan_is_omitted(seed) -> None:
    store, tag = seed
    doc = build_document(store, execution=tag)
    train = sorted(
        (r for r in doc.get_records() if _kind(r) == ("entity", "otrainmodel")),
        key=lambda r: _attr(r, "dlprov:epoch"),
    )
    assert [_attr(r, "dlprov:loss") for r in train] == [epoch_loss(0), epoch_loss(1)]
    assert [type(_attr(r, "dlprov:epoch")) for r in train] == [float, float]
    assert [str(_attr(r, "prov:label")) for r in train] == ["otrainmodel · epoch 0", "otrainmodel · epoch 1"]
    for r in train:  # recorded as NaN: absent, never a -9999999 sentinel
        assert _attr(r, "dlprov:val_loss") is None and _attr(r, "dlprov:val_accuracy") is None
    test = next(r for r in doc.get_records() if _kind(r) == ("entity", "otestmodel"))
    assert _attr(test, "dlprov:loss") == TEST_LOSS
    data = json.loads(doc.serialize(format="json"))
    losses = [e["dlprov:loss"] for e in data["entity"].values() if "dlprov:loss" in e]
    assert losses and all(v["type"] == "xsd:double" for v in losses)
    assert "-9999999" not in doc.get_provn() and "NaN" not in doc.get_provn()
    json.loads(doc.serialize(format="json"), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))


def test_identifiers_are_stable_iris(seed) -> None:
    store, tag = seed
    first = build_document(store, execution=tag)
    second = build_document(store, execution=tag)
    assert first.serialize(format="json") == second.serialize(format="json")
    for ns in first.namespaces:
        parts = urlsplit(ns.uri)
        assert parts.scheme == "https" and parts.netloc, ns.uri
    trace = store.query(f"SELECT trace_id FROM {store.cat('dataflow_execution')} WHERE tag = ?", [tag]).rows[0][0]
    execution = next(r for r in first.get_records() if _kind(r) == ("activity", "execution"))
    assert execution.identifier.uri == f"https://w3id.org/dlprov/id/execution/{trace}"
    element_ids = {
        r[0] for r in store.query('SELECT element_id FROM "mnist"."otrainmodel" WHERE execution_tag = ?', [tag]).rows
    }
    train_ids = {str(r.identifier) for r in first.get_records() if _kind(r) == ("entity", "otrainmodel")}
    assert train_ids == {f"dlid:element/{trace}-{e}" for e in element_ids}


def test_round_trips_json_provn_xml_rdf(seed) -> None:
    store, tag = seed
    doc = build_document(store, execution=tag)
    via_json = ProvDocument.deserialize(content=doc.serialize(format="json"), format="json")
    assert via_json == doc
    via_provn = ProvDocument.deserialize(content=via_json.serialize(format="provn"), format="provn")
    assert via_provn == doc
    via_xml = ProvDocument.deserialize(content=via_provn.serialize(format="xml"), format="xml")
    assert via_xml == doc
    turtle = doc.serialize(format="rdf", rdf_format="turtle")
    assert ProvDocument.deserialize(content=turtle, format="rdf", rdf_format="turtle") == doc


def test_dataflow_document_holds_every_execution(seed, store_dir) -> None:
    store, first = seed
    second = record_seed_flow(store_dir, epochs=3, scientist="Ada Lovelace")
    doc = build_document(store, dataflow="mnist")
    nodes, _ = _structure(doc)
    assert nodes[("entity", "plan")] == 1
    assert nodes[("entity", "recipe")] == 2  # one per run
    assert nodes[("activity", "execution")] == 2
    assert nodes[("entity", "otrainmodel")] == 2 + 3
    people = sorted(str(_attr(r, "prov:label")) for r in doc.get_records() if _kind(r) == ("agent", "prov:Person"))
    assert people == ["Ada Lovelace", "Débora Pina"]
    assert nodes[("agent", "dlprov:Hardware")] == 1  # same machine: one agent
    one = build_document(store, execution=second)
    assert {r.identifier for r in one.get_records() if r.is_element()} < {
        r.identifier for r in doc.get_records() if r.is_element()
    }
    assert first != second


def test_unknown_names_are_clear_errors(seed) -> None:
    store, tag = seed
    with pytest.raises(UnknownTagError, match=r"unknown execution 'nope'.*known: " + "'" + tag):
        build_document(store, execution="nope")
    with pytest.raises(UnknownTagError, match=r"unknown dataflow 'cifar'.*known: 'mnist'"):
        build_document(store, dataflow="cifar")
    with pytest.raises(ProvExportError, match="unknown PROV format 'pdf'"):
        export(store, execution=tag, formats="json,pdf")


def test_export_writes_every_format(seed, tmp_path: Path) -> None:
    store, tag = seed
    paths = export(store, execution=tag, formats=list(FORMATS), out_dir=tmp_path / "out")
    stem = file_stem(tag)
    assert " " not in stem and ":" not in stem
    assert [p.name for p in paths] == [f"{stem}.{ext}" for ext in FORMATS.values()]
    assert all(p.stat().st_size > 0 for p in paths)
    doc = build_document(store, execution=tag)
    assert ProvDocument.deserialize(str(paths[0]), format="json") == doc
    assert ProvDocument.deserialize(str(paths[1]), format="provn") == doc
    assert ProvDocument.deserialize(str(paths[2]), format="xml") == doc
    assert paths[5].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_bar_when_asked(seed, tmp_path: Path, capfd) -> None:
    store, tag = seed
    export(store, execution=tag, formats=("json",), out_dir=tmp_path, progress="always")
    assert "PROV records" in capfd.readouterr().err
    export(store, execution=tag, formats=("json",), out_dir=tmp_path, progress=True)  # not a TTY
    assert "PROV records" not in capfd.readouterr().err


def test_cli_export(seed, store_dir: Path, tmp_path: Path, capsys) -> None:
    _, tag = seed
    out = tmp_path / "cli-out"
    code = cli.main(
        ["prov", "export", "--execution", tag, "--store", str(store_dir), "--format", "json,provn", "--out", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in printed) == sorted([f"{file_stem(tag)}.json", f"{file_stem(tag)}.provn"])
    assert cli.main(["prov", "export", "--dataflow", "mnist", "--store", str(store_dir), "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} >= {"mnist.json", "mnist.provn", "mnist.png"}
    code = cli.main(["prov", "export", "--execution", "nope", "--store", str(store_dir), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "unknown execution 'nope'" in err and tag in err


def test_adaptation_during_training_uses_the_epoch_it_saw(dlprov) -> None:
    """A task that runs while its dependency still produces (a learning-rate adaptation during
    training) used the latest element emitted before it started, not every epoch: lineage
    stays right, and a long run with many adaptations stays linear."""

    df = Dataflow("adapt", predefined=True)
    df.save()
    with execution("adapt-run", dataflow=df):
        train = Task(1, df, "adapt-run", "trainmodel")
        train.add_dataset(DataSet("itrainmodel", [Element(["sgd", 0.1, 4, 2])]))
        train.begin()
        for epoch in range(4):
            row = ["t", 1.0, 1.0 / (epoch + 1), 0.5, 0.4, 0.6, epoch]
            train.add_dataset(DataSet("otrainmodel", [Element(row)]))
            train.save()
            time.sleep(0.02)  # the store keeps milliseconds
            if epoch in (1, 2):
                adapt = Task(10 + epoch, df, "adapt-run", "adaptation", dependency=train)
                adapt.add_dataset(DataSet("iadaptation", [Element({"adaptation_id": f"a{epoch}"})]))
                adapt.begin()
                new_lr = {"adaptation_id": f"a{epoch}", "new_learning_rate": 0.1 / (epoch + 1)}
                adapt.add_dataset(DataSet("oadaptation", [Element(new_lr)]))
                adapt.end()
                time.sleep(0.02)
        train.end()
    assert dlprov_otel.flush()
    doc = build_document(dlprov.store, execution="adapt-run")
    elements = {r.identifier: r for r in doc.get_records() if r.is_element()}
    used_epochs: dict[str, list[float]] = {}
    derived: dict[str, set[str]] = {}
    for r in doc.get_records():
        if not r.is_relation():
            continue
        name = PROV_N_MAP.get(r.get_type())
        a, b = r.formal_attributes[0][1], r.formal_attributes[1][1]
        if name == "used" and _kind(elements[a]) == ("activity", "adaptation"):
            task_id = str(_attr(elements[a], "dlprov:task_id"))
            if _kind(elements[b]) == ("entity", "otrainmodel"):
                used_epochs.setdefault(task_id, []).append(_attr(elements[b], "dlprov:epoch"))
        if name == "wasDerivedFrom" and _kind(elements[a]) == ("entity", "oadaptation"):
            derived.setdefault(str(_attr(elements[a], "dlprov:adaptation_id")), set()).add(
                str(_attr(elements[b], "prov:label"))
            )
    assert used_epochs == {"11": [1.0], "12": [2.0]}
    assert derived == {"a1": {"iadaptation", "otrainmodel · epoch 1"}, "a2": {"iadaptation", "otrainmodel · epoch 2"}}

