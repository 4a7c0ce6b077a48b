"""DLProvLightningCallback: the same sets as a plain loop, from a Lightning Trainer.

The training runs in a child process (Lightning loads triton, which cannot load next to the
TensorFlow that the Keras tests bring into the test session).
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from dlprov_otel.integrations._shared import STRICT_ENV
from dlprov_otel.store import open_store
from tests.torch_helpers import SCRIPTS, report, rows, run_instrumented, set_rows

pytestmark = pytest.mark.torch


@pytest.fixture
def subprocess_env(subprocess_env: dict[str, str]) -> dict[str, str]:
    """Strict mode in the child: a provenance failure raises instead of being logged."""
    return {**subprocess_env, STRICT_ENV: "1"}


def check_sets(st, own: dict) -> None:
    (hp,) = set_rows(st, "itrainmodel")
    assert (hp["optimizer_name"], hp["learning_rate"], hp["num_epochs"], hp["batch_size"]) == ("Adam", 0.02, 3, 32)
    assert hp["num_layers"] == 4 and hp["trainer"] == "lightning"  # Linear, ReLU, Linear, CrossEntropyLoss
    epochs = set_rows(st, "otrainmodel", "epoch")
    assert [r["epoch"] for r in epochs] == [0, 1, 2]
    for r, seen in zip(epochs, own["seen"], strict=True):
        assert math.isclose(r["loss"], seen["train_loss"], abs_tol=1e-6)
        assert math.isclose(r["accuracy"], seen["train_acc"], abs_tol=1e-6)
        assert math.isclose(r["val_loss"], seen["val_loss"], abs_tol=1e-6)
        assert math.isclose(r["val_accuracy"], seen["val_acc"], abs_tol=1e-6)
    assert [r["learning_rate"] for r in epochs] == [0.02, 0.01, 0.005]
    adapt = set_rows(st, "oadaptation", "epoch")
    assert [(a["epoch"], a["old_learning_rate"], a["new_learning_rate"], a["trigger"]) for a in adapt] == [
        (0, 0.02, 0.01, "StepLR"), (1, 0.01, 0.005, "StepLR"), (2, 0.005, 0.0025, "StepLR"),
    ]
    (saved,) = set_rows(st, "otrainedmodel")
    ckpt = Path(own["checkpoint"])
    assert saved["model_dir"] == str(ckpt.resolve()) and saved["model_name"] == "Classifier"
    assert saved["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    (test,) = set_rows(st, "otestmodel")
    assert math.isclose(test["loss"], own["tested"]["test_loss"], abs_tol=1e-6)
    assert math.isclose(test["accuracy"], own["tested"]["test_acc"], abs_tol=1e-6)
    tasks = rows(st, "SELECT dt_tag, status FROM task WHERE dt_tag IN ('trainmodel', 'testmodel') ORDER BY dt_tag")
    assert tasks == [{"dt_tag": "testmodel", "status": "FINISHED"}, {"dt_tag": "trainmodel", "status": "FINISHED"}]
    (ex,) = rows(st, "SELECT status FROM dataflow_execution")
    assert ex["status"] == "FINISHED"


def test_callback_records_the_training(tmp_path, subprocess_env):
    store = tmp_path / "store"
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "train_lightning.py"), "--callback", "--root", str(tmp_path / "root")],
        env={**subprocess_env, "DLPROV_STORE": str(store)}, cwd=tmp_path, capture_output=True, text=True,
        timeout=240,
    )
    own = report(proc)
    st = open_store(store)
    try:
        check_sets(st, own)
    finally:
        st.close()


def test_instrumented_trainer_gets_the_callback_once(tmp_path, subprocess_env):
    store = tmp_path / "store"
    proc = run_instrumented("train_lightning.py", ["--root", str(tmp_path / "root")], subprocess_env, store, tmp_path)
    own = report(proc)
    assert own["dlprov_callbacks"] == 1
    st = open_store(store)
    try:
        check_sets(st, own)  # exactly once: the loop capture stood aside during fit and test
        # and the lineage the patches saw: the seeded random_split
        (split,) = set_rows(st, "isplitconfig")
        assert (split["seed"], split["lengths"]) == ("5", "[128, 32]")
        deps = rows(st, "SELECT depends_on_task_id FROM task_dependency WHERE dt_tag = 'trainmodel'")
        assert deps == [{"depends_on_task_id": "splitdata-1"}]
        # in PROV, the test activity used the test dataset and the trained model (issue 16)
        assert used_by_test(st) == ["otestset", "otrainedmodel"]
    finally:
        st.close()


def used_by_test(st) -> list[str]:
    """The ``ds_tag`` of each entity the testmodel activity of the PROV document used."""
    from dlprov_otel.prov import build_document

    doc = json.loads(build_document(st, dataflow="torch").serialize(format="json"))
    (test,) = [k for k, a in doc["activity"].items() if a.get("dlprov:dt_tag") == "testmodel"]
    used = [u for u in doc["used"].values() for u in (u if isinstance(u, list) else [u])]
    return sorted(doc["entity"][u["prov:entity"]]["dlprov:ds_tag"] for u in used if u["prov:activity"] == test)
