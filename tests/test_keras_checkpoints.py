"""Keras checkpoints and a reload in another process, run unmodified under
``opentelemetry-instrument``: each checkpoint carries the epoch of its weights, and the
evaluation of the reloaded best model is linked to the run that saved it (by sha256)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from dlprov_otel.integrations._shared import STRICT_ENV
from dlprov_otel.store import open_store
from tests.torch_helpers import report, rows, run_instrumented

pytestmark = pytest.mark.keras

SCRIPT = Path(__file__).parent / "keras_scripts" / "checkpoint_reload.py"


def test_checkpoints_and_a_reload_in_another_process(tmp_path: Path, subprocess_env: dict) -> None:
    env = {**subprocess_env, STRICT_ENV: "1"}
    store = tmp_path / "store"
    ck = tmp_path / "ck"
    ck.mkdir()
    trained = run_instrumented(str(SCRIPT), ["--dir", str(ck)], env, store, tmp_path)
    own = report(trained)
    reloaded = run_instrumented(str(SCRIPT), ["--dir", str(ck), "--reload"], env, store, tmp_path)
    test = report(reloaded)["test"]
    for proc in (trained, reloaded):
        assert "no training was recognised" not in proc.stderr, proc.stderr[-2000:]
    digest = hashlib.sha256((ck / "best.keras").read_bytes()).hexdigest()

    st = open_store(store)
    try:
        train_tag, test_tag = [r["tag"] for r in rows(st, "SELECT tag FROM dataflow_execution ORDER BY start_time")]
        saved = rows(st, 'SELECT * FROM "keras"."otrainedmodel" WHERE execution_tag = ?', [train_tag])
        every = sorted((Path(r["model_dir"]).name, r["epoch"]) for r in saved if "epoch-" in r["model_dir"])
        assert every == [(f"epoch-{e + 1:02d}.keras", e) for e in range(4)]  # Keras names them from 1
        best = [r for r in saved if r["model_dir"].endswith("best.keras")]
        assert best[-1]["epoch"] == own["best_epoch"] and best[-1]["sha256"] == digest
        assert [r["epoch"] for r in best] == sorted(r["epoch"] for r in best)  # only improvements

        (given,) = rows(st, 'SELECT * FROM "keras"."otrainedmodel" WHERE execution_tag = ?', [test_tag])
        assert (given["sha256"], given["loaded"], given["model_dir"]) == (digest, "model", str(ck / "best.keras"))
        assert given["consumer_task_id"] is not None and given["producer_task_id"] is None
        (tested,) = rows(st, 'SELECT * FROM "keras"."otestmodel" WHERE execution_tag = ?', [test_tag])
        assert (tested["loss"], tested["accuracy"]) == (test["loss"], test["accuracy"])
    finally:
        st.close()

    # the file leads to both runs: the one that made it and the one that evaluated it
    proc = subprocess.run(
        ["dlprov", "lineage", str(ck / "best.keras"), "--store", str(store), "--json"],
        env=subprocess_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)["runs"]
    runs = {r["execution"]["tag"]: {(a["role"], a["set"]) for a in r["artifacts"]} for r in found}
    assert runs == {train_tag: {("output", "otrainedmodel")}, test_tag: {("input", "otrainedmodel")}}
