"""`dlprov lineage PATH`: a user's script writes a model file; the command, in its own process,
finds the run that made it, with the recipe, hyperparameters, input digests, epochs and test
metrics; the PROV sub-graph; several runs of one file; an unknown file; the dashboard's route."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "lineage_scripts" / "train_and_save.py"


def run_script(store: Path, model: Path, env: dict[str, str], seed: int = 42) -> str:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(store), str(model), str(seed)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]  # the execution tag


def lineage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dlprov_otel.cli", "lineage", *args], capture_output=True, text=True, env=env,
        timeout=300,
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def trained(tmp_path: Path, subprocess_env: dict[str, str]) -> tuple[Path, Path, str]:
    store, model = tmp_path / "store", tmp_path / "model.bin"
    tag = run_script(store, model, subprocess_env)
    return store, model, tag


def test_lineage_of_a_saved_model_file(trained, subprocess_env, tmp_path) -> None:
    store, model, tag = trained
    out = lineage(str(model), "--store", str(store), env=subprocess_env)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert f"sha256 {sha256(model)}" in text
    assert f"run {tag}" in text and "FINISHED" in text
    assert "made by    trainmodel (task 2) as otrainedmodel" in text
    assert f"script    {SCRIPT}" in text  # the recipe
    assert "seeds     numpy=42 numpy.default_rng=42 random=42" in text
    assert "itrainmodel: optimizer_name=adam learning_rate=0.01 num_epochs=3 num_layers=2" in text
    assert "isplitconfig: ratio=0.75" in text
    assert "epochs     3 (otrainmodel)" in text
    assert "best (lowest val_loss) 0.433333 at epoch 2" in text
    assert "test       otestmodel: loss=0.42 accuracy=0.88" in text

    doc = json.loads(lineage(str(model), "--store", str(store), "--json", env=subprocess_env).stdout)
    (run,) = doc["runs"]
    assert run["execution"]["tag"] == tag
    assert [(a["set"], a["role"], a["task"]["dt_tag"]) for a in run["artifacts"]] == [
        ("otrainedmodel", "output", "trainmodel")
    ]
    recipe = {e["name"]: e for e in run["recipe"]}
    assert recipe["script.path"]["digest"] == sha256(SCRIPT)
    commit = recipe["git.commit"]["value"]  # this checkout's commit then (others may commit since)
    assert subprocess.run(
        ["git", "-C", str(SCRIPT.parent), "cat-file", "-t", commit], capture_output=True, text=True
    ).stdout.strip() == "commit"
    assert recipe["package.numpy"]["value"]
    # the training's input data: the train split (by its digest), not the test split
    train = next(i for i in run["inputs"] if i["set"] == "otrainset")
    assert len(train["digest"]) == 64 and train["values"]["trainset"] == "train.npy"
    assert {i["set"] for i in run["inputs"]} == {"otrainset"}
    assert run["epochs"]["count"] == 3 and run["epochs"]["first"]["epoch"] == 0 and run["epochs"]["last"]["epoch"] == 2


def test_the_prov_sub_graph_of_the_lineage(trained, subprocess_env, tmp_path) -> None:
    store, model, _ = trained
    out_dir = tmp_path / "out"
    out = lineage(str(model), "--store", str(store), "--format", "json,provn,png,rdf", "--out", str(out_dir),
                  env=subprocess_env)
    assert out.returncode == 0, out.stderr
    stem = f"lineage-{sha256(model)[:12]}"
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(f"{stem}.{e}" for e in ("json", "provn", "png", "ttl"))
    doc = json.loads((out_dir / f"{stem}.json").read_text())
    by_tag: dict[str, list[str]] = {}
    for ident, e in doc["entity"].items():
        tag = e.get("dlprov:ds_tag")
        by_tag.setdefault(tag if isinstance(tag, str) else str(tag), []).append(ident)
    # what the model comes from and what used it are there; other epochs' rows are not
    assert len(by_tag["otrainedmodel"]) == 1
    assert {"itrainmodel", "otrainset", "isplitconfig", "otestmodel"} <= set(by_tag)
    assert "otrainmodel" not in by_tag
    model_id = by_tag["otrainedmodel"][0]
    derived = {d["prov:usedEntity"] for d in doc["wasDerivedFrom"].values() if d["prov:generatedEntity"] == model_id}
    assert set(by_tag["itrainmodel"]) <= derived and set(by_tag["otrainset"]) <= derived
    assert (out_dir / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_file_made_by_several_runs_lists_them_all(tmp_path, subprocess_env) -> None:
    store = tmp_path / "store"
    first = run_script(store, tmp_path / "a.bin", subprocess_env, seed=7)
    second = run_script(store, tmp_path / "b.bin", subprocess_env, seed=7)  # same seed: the same bytes
    other = run_script(store, tmp_path / "c.bin", subprocess_env, seed=8)
    assert sha256(tmp_path / "a.bin") == sha256(tmp_path / "b.bin") != sha256(tmp_path / "c.bin")
    doc = json.loads(lineage(str(tmp_path / "a.bin"), "--store", str(store), "--json", env=subprocess_env).stdout)
    assert [r["execution"]["tag"] for r in doc["runs"]] == [first, second]
    assert other not in json.dumps(doc)
    # the script's digest finds every run that ran it
    doc = json.loads(lineage("--digest", sha256(SCRIPT), "--store", str(store), "--json", env=subprocess_env).stdout)
    assert [r["execution"]["tag"] for r in doc["runs"]] == [first, second, other]
    assert {a["role"] for r in doc["runs"] for a in r["artifacts"]} == {"recipe"}


def test_an_unknown_file_says_so_with_its_digest(trained, subprocess_env, tmp_path) -> None:
    store, _, _ = trained
    stranger = tmp_path / "stranger.bin"
    stranger.write_bytes(b"never recorded")
    out = lineage(str(stranger), "--store", str(store), env=subprocess_env)
    assert out.returncode != 0 and out.stdout == ""
    (line,) = out.stderr.strip().splitlines()
    assert f"made or used {stranger}" in line and sha256(stranger) in line
    bad = lineage("--digest", "xyz", "--store", str(store), env=subprocess_env)
    assert bad.returncode != 0 and "not a sha256 digest" in bad.stderr
    missing = lineage(str(tmp_path / "nope.bin"), "--store", str(store), env=subprocess_env)
    assert missing.returncode != 0 and "cannot read" in missing.stderr


def test_the_dashboard_route_answers_the_same(trained) -> None:
    from dlprov_otel.http import HTTPError
    from dlprov_otel.store import artifacts, open_store
    from dlprov_otel.ui.web import _route

    store_dir, model, tag = trained
    store = open_store(store_dir)
    try:
        doc = _route(store, ["lineage"], {"digest": "sha256:" + sha256(model).upper()})
        assert doc == artifacts.as_json(artifacts.lineage(store, sha256(model)))
        assert doc["found"] and doc["runs"][0]["execution"]["tag"] == tag
        body, ctype, name = _route(store, ["lineage", "prov.provn"], {"digest": sha256(model)})
        assert body.startswith(b"document") and name.endswith(".provn") and ctype.startswith("text/provenance")
        with pytest.raises(HTTPError) as unknown:
            _route(store, ["lineage"], {"digest": "0" * 64})
        assert unknown.value.status == 404 and "0" * 64 in str(unknown.value)
        with pytest.raises(HTTPError) as bad:
            _route(store, ["lineage"], {"digest": "abc"})
        assert bad.value.status == 400
    finally:
        store.close()


DATA_SCRIPT = """\
import sys
import numpy as np
import dlprov_otel
from dlprov_otel.integrations.lineage import load_data

dlprov_otel.configure(store=sys.argv[1])
with dlprov_otel.execution(dataflow="datafile") as ex:
    @load_data("points", dataset_dir=sys.argv[2])
    def load():
        d = np.load(sys.argv[2])
        return d["x"], d["y"]

    x, y = load()
dlprov_otel.flush()
print(ex.tag)
"""


def test_a_data_file_a_load_step_read_finds_its_run(tmp_path, subprocess_env) -> None:
    import numpy as np

    data, store = tmp_path / "points.npz", tmp_path / "store"
    np.savez(data, x=np.arange(20.0).reshape(10, 2), y=np.arange(10))
    script = tmp_path / "load.py"
    script.write_text(DATA_SCRIPT)
    run = subprocess.run([sys.executable, str(script), str(store), str(data)], capture_output=True, text=True,
                         env=subprocess_env, timeout=300)
    assert run.returncode == 0, run.stderr
    tag = run.stdout.strip().splitlines()[-1]
    out = lineage(str(data), "--store", str(store), env=subprocess_env)
    assert out.returncode == 0, out.stderr
    assert f"sha256 {sha256(data)}" in out.stdout and f"run {tag}" in out.stdout
    assert "used by    loaddata" in out.stdout and "iinputdataset" in out.stdout


@pytest.mark.keras
def test_lineage_of_an_exported_savedmodel_folder(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    """``model.export(dir)`` (a SavedModel folder for serving) is recorded as the training's model,
    and ``dlprov lineage DIR`` finds the run from the folder itself."""
    from tests.torch_helpers import run_instrumented

    store, out = tmp_path / "store", tmp_path / "serving"
    proc = run_instrumented(
        str(Path(__file__).parent / "keras_scripts" / "export_savedmodel.py"), ["--out", str(out)],
        subprocess_env, store, tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "saved_model.pb").is_file()
    found = lineage(str(out), "--store", str(store), "--json", env=subprocess_env)
    assert found.returncode == 0, found.stderr
    (run,) = json.loads(found.stdout)["runs"]
    assert {(a["role"], a["set"]) for a in run["artifacts"]} == {("output", "otrainedmodel")}
    assert run["execution"]["dataflow_tag"] == "keras"
