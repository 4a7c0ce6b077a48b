"""Standard outputs that standard tools accept (issue 15, part 7).

- PROV-CONSTRAINTS ordering, checked over whole exported documents: every generation and usage
  lies within its activity (generation-within-activity, usage-within-activity), every
  communication has its informant start before the informed activity ends, an entity is
  generated before it is used. A model saved after ``fit`` returned (the Keras pattern: the
  trained model ``add_late_dataset`` after the task ended) widens its task's activity to the
  save, and the span's own end is kept as ``dlprov:span_end``.
- The RDF export asserts the unqualified relations beside the qualified ones, so plain PROV-O
  SPARQL (``?e prov:wasGeneratedBy ?a``, ``prov:wasDerivedFrom+``) finds a model's inputs.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import rdflib

import dlprov_otel
from dlprov_otel import DataSet, Element, Task
from dlprov_otel.prov import export
from tests.seedflow import record_seed_flow

PREFIXES = """
PREFIX prov: <http://www.w3.org/ns/prov#>
PREFIX dlprov: <https://w3id.org/dlprov/ns#>
"""


def _time(value: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else None


def ordering_violations(doc: dict[str, Any]) -> list[str]:
    """What in a PROV-JSON document breaks PROV-CONSTRAINTS' ordering of generation, usage and
    communication (times are instants, so "precedes" is <=)."""
    acts = {
        k: (_time(v.get("prov:startTime")), _time(v.get("prov:endTime"))) for k, v in doc.get("activity", {}).items()
    }
    bad: list[str] = []
    generated: dict[str, dt.datetime] = {}
    for kind, who in (("wasGeneratedBy", "prov:entity"), ("used", "prov:entity")):
        for rid, r in doc.get(kind, {}).items():
            when = _time(r.get("prov:time"))
            start, end = acts.get(r["prov:activity"], (None, None))
            if when is None:
                continue
            if (start and when < start) or (end and when > end):
                bad.append(f"{kind} {rid}: {r[who]} at {when} outside {r['prov:activity']} [{start}, {end}]")
            if kind == "wasGeneratedBy":
                generated[r[who]] = when
    for rid, r in doc.get("used", {}).items():
        when, made = _time(r.get("prov:time")), generated.get(r["prov:entity"])
        if when and made and made > when:
            bad.append(f"used {rid}: {r['prov:entity']} used at {when} before its generation at {made}")
    for rid, r in doc.get("used", {}).items():  # a usage lies within its activity: before it ends
        made, end = generated.get(r["prov:entity"]), acts.get(r["prov:activity"], (None, None))[1]
        if made and end and made > end:
            bad.append(f"used {rid}: {r['prov:entity']} generated at {made}, after its user ended at {end}")
    for rid, r in doc.get("wasInformedBy", {}).items():
        informant_start = acts.get(r["prov:informant"], (None, None))[0]
        informed_end = acts.get(r["prov:informed"], (None, None))[1]
        if informant_start and informed_end and informant_start > informed_end:
            bad.append(f"wasInformedBy {rid}: {r['prov:informant']} starts after {r['prov:informed']} ended")
    for k, (start, end) in acts.items():
        if start and end and start > end:
            bad.append(f"activity {k} ends before it starts")
    return bad


def model_inputs_by_sparql(ttl: Path) -> dict[str, set[str]]:
    g = rdflib.Graph()
    g.parse(ttl, format="json-ld" if ttl.suffix == ".jsonld" else "turtle")
    generated = g.query(
        PREFIXES + 'SELECT ?a WHERE { ?m dlprov:ds_tag "otrainedmodel" . ?m prov:wasGeneratedBy ?a . '
        '?a dlprov:dt_tag "trainmodel" }'
    )
    ancestors = g.query(
        PREFIXES + 'SELECT DISTINCT ?tag WHERE { ?m dlprov:ds_tag "otrainedmodel" . '
        "?m prov:wasDerivedFrom+ ?x . ?x dlprov:ds_tag ?tag }"
    )
    plain = {}
    for name in ("used", "wasAssociatedWith", "wasInformedBy", "wasGeneratedBy", "wasDerivedFrom"):
        plain[name] = {str(r[0]) for r in g.query(PREFIXES + f"SELECT ?s WHERE {{ ?s prov:{name} ?o }}")}
    qualified = {str(r[0]) for r in g.query(PREFIXES + "SELECT ?q WHERE { ?e prov:qualifiedGeneration ?q }")}
    return {
        "generated_by": {str(r[0]) for r in generated},
        "ancestors": {str(r[0]) for r in ancestors},
        "qualified": qualified,
        **{f"plain_{k}": v for k, v in plain.items()},
    }


def _record_with_a_late_model(store_dir: Path) -> str:
    """The seed's flow, and a model saved 50 ms after its training ended (as Keras's
    ``model.save`` after ``fit``)."""
    tag = record_seed_flow(store_dir, epochs=2, exec_tag="late-save")
    train = Task(99, "mnist", tag, "trainmodel")
    train.add_dataset(DataSet("itrainmodel", [Element(["adam", 0.01, 1, 2])]))
    train.begin()
    train.add_dataset(DataSet("otrainmodel", [Element(["t", 0.1, 0.5, 0.5, 0.6, 0.5, 0])]))
    train.end()
    time.sleep(0.05)  # the save comes after the training returned: what is tested is that gap
    train.add_late_dataset(DataSet("otrainedmodel", [Element(["late_model", "/tmp/late.keras"])]))
    assert dlprov_otel.flush(60)
    return tag


def test_whole_documents_respect_the_ordering_constraints(dlprov, store_dir, tmp_path) -> None:
    tag = _record_with_a_late_model(store_dir)
    (path,) = export(dlprov.store, execution=tag, formats=("json",), out_dir=tmp_path)
    doc = json.loads(path.read_text())
    assert ordering_violations(doc) == []
    # the late save widened its task's activity to the save; the span's own end is kept
    late = next(
        k for k, e in doc["entity"].items() if e.get("dlprov:model_name") == "late_model"
    )
    gen = next(r for r in doc["wasGeneratedBy"].values() if r["prov:entity"] == late)
    activity = doc["activity"][gen["prov:activity"]]
    assert activity["prov:endTime"] == gen["prov:time"]
    span_end = activity["dlprov:span_end"]
    span_end = _time(span_end["$"] if isinstance(span_end, dict) else span_end)
    assert span_end < _time(gen["prov:time"])
    assert (_time(gen["prov:time"]) - span_end) >= dt.timedelta(milliseconds=50)
    # a task whose outputs all came while it ran keeps its span's times
    others = [a for a in doc["activity"].values() if a.get("dlprov:dt_tag") == "testmodel"]
    assert others and all("dlprov:span_end" not in a for a in others)


@pytest.mark.parametrize("fmt", ["rdf", "jsonld"])
def test_rdf_lineage_queries_find_the_model_inputs(dlprov, store_dir, tmp_path, fmt) -> None:
    tag = record_seed_flow(store_dir, epochs=2)
    (path,) = export(dlprov.store, execution=tag, formats=(fmt,), out_dir=tmp_path)
    found = model_inputs_by_sparql(path)
    assert len(found["generated_by"]) == 1
    assert {"itrainmodel", "otrainset"} <= found["ancestors"]
    assert {"iinputdataset", "isplitconfig", "oloaddata"} <= found["ancestors"]  # transitively
    assert found["qualified"]  # the qualified forms stay
    for name in ("used", "wasAssociatedWith", "wasInformedBy", "wasGeneratedBy", "wasDerivedFrom"):
        assert found[f"plain_{name}"], name


@pytest.mark.keras
def test_a_real_keras_run_exports_ordered_and_queryable_prov(tmp_path, subprocess_env) -> None:
    store, out = tmp_path / "store", tmp_path / "out"
    demo = subprocess.run(
        [sys.executable, "-m", "dlprov_otel.cli", "demo", "--epochs", "2", "--store", str(store), "--out", str(out)],
        capture_output=True, text=True, env=subprocess_env, timeout=600,
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    exported = subprocess.run(
        [sys.executable, "-m", "dlprov_otel.cli", "prov", "export", "--execution", "latest", "--store", str(store),
         "--format", "json,rdf", "--out", str(tmp_path / "prov"), "--no-progress"],
        capture_output=True, text=True, env=subprocess_env, timeout=600,
    )
    assert exported.returncode == 0, exported.stderr
    (doc_path,) = (tmp_path / "prov").glob("*.json")
    doc = json.loads(doc_path.read_text())
    assert doc["wasGeneratedBy"] and doc["used"] and doc["wasInformedBy"]
    assert ordering_violations(doc) == []
    found = model_inputs_by_sparql(next((tmp_path / "prov").glob("*.ttl")))
    assert len(found["generated_by"]) >= 1
    assert {"itrainmodel", "otrainset"} <= found["ancestors"]


@pytest.mark.torch
def test_a_real_torch_run_exports_ordered_prov_and_its_model_has_a_lineage(tmp_path, subprocess_env) -> None:
    from tests.torch_helpers import run_instrumented

    store = tmp_path / "store"
    trained = run_instrumented("mnist_like.py", ["--epochs", "2", "--save-model"], subprocess_env, store, tmp_path)
    assert trained.returncode == 0, trained.stderr[-4000:]
    cli = [sys.executable, "-m", "dlprov_otel.cli"]
    exported = subprocess.run(
        [*cli, "prov", "export", "--execution", "latest", "--store", str(store), "--format", "json,rdf",
         "--out", str(tmp_path / "prov"), "--no-progress"],
        capture_output=True, text=True, env=subprocess_env, timeout=600,
    )
    assert exported.returncode == 0, exported.stderr
    doc = json.loads(next((tmp_path / "prov").glob("*.json")).read_text())
    assert doc["wasGeneratedBy"] and doc["used"]
    assert ordering_violations(doc) == []
    assert model_inputs_by_sparql(next((tmp_path / "prov").glob("*.ttl")))["generated_by"]
    found = subprocess.run(
        [*cli, "lineage", str(tmp_path / "mnist_cnn.pt"), "--store", str(store), "--json"],
        capture_output=True, text=True, env=subprocess_env, timeout=600,
    )
    assert found.returncode == 0, found.stderr
    (run,) = json.loads(found.stdout)["runs"]
    recipe = {e["name"]: e["value"] for e in run["recipe"]}
    assert recipe["seed.torch"] == "1"  # the script's torch.manual_seed(args.seed)
    assert recipe["script.path"].endswith("mnist_like.py")
    assert "package.torch" in recipe
    assert run["epochs"]["count"] == 2
    assert [a["set"] for a in run["artifacts"]] == ["otrainedmodel"]


def test_an_evaluation_before_the_save_did_not_use_the_saved_file(dlprov, store_dir, tmp_path) -> None:
    """fit, evaluate, then model.save (the Keras order): the evaluation ended before the file
    existed, so it did not use the file's entity; the training still generated it."""
    tag = "eval-then-save"
    with dlprov_otel.execution(tag, dataflow="mnist"):
        train = Task(1, "mnist", tag, "trainmodel")
        train.add_dataset(DataSet("itrainmodel", [Element(["adam", 0.01, 1, 2])]))
        train.begin()
        train.add_dataset(DataSet("otrainmodel", [Element(["t", 0.1, 0.5, 0.5, 0.6, 0.5, 0])]))
        train.end()
        test = Task(2, "mnist", tag, "testmodel", dependency=train)
        test.begin()
        test.add_dataset(DataSet("otestmodel", [Element([0.4, 0.9])]))
        test.end()
        time.sleep(0.01)  # the save comes after the evaluation returned: what is tested is that order
        train.add_late_dataset(DataSet("otrainedmodel", [Element(["saved_after_eval", "/tmp/eval-then-save.keras"])]))
    assert dlprov_otel.flush(60)
    (path,) = export(dlprov.store, execution=tag, formats=("json",), out_dir=tmp_path)
    doc = json.loads(path.read_text())
    assert ordering_violations(doc) == []
    model = next(k for k, e in doc["entity"].items() if e.get("dlprov:model_name") == "saved_after_eval")
    assert [r for r in doc["wasGeneratedBy"].values() if r["prov:entity"] == model]
    assert not [r for r in doc["used"].values() if r["prov:entity"] == model]
