"""Unmodified PyTorch loops under ``opentelemetry-instrument`` (DLPROV_STORE in a subprocess)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest

from dlprov_otel.integrations._shared import STRICT_ENV
from dlprov_otel.store import open_store
from tests.torch_helpers import report, rows, run_instrumented, set_rows

pytestmark = pytest.mark.torch


@pytest.fixture
def subprocess_env(subprocess_env: dict[str, str]) -> dict[str, str]:
    """Strict mode in the child: a provenance failure raises instead of being logged."""
    return {**subprocess_env, STRICT_ENV: "1"}


@pytest.fixture
def store_path(tmp_path: Path):
    return tmp_path / "store"


@pytest.fixture
def opened(store_path: Path):
    holder = {}

    def _open():
        holder["store"] = open_store(store_path)
        return holder["store"]

    yield _open
    if "store" in holder:
        holder["store"].close()


def close(a: float | None, b: float, tol: float = 1e-6) -> bool:
    return a is not None and not math.isnan(a) and abs(a - b) <= tol


def test_plain_loop_with_workers_step_lr_and_save(tmp_path, store_path, subprocess_env, opened):
    model_file = tmp_path / "model.pt"
    proc = run_instrumented(
        "train_loop.py", ["--scheduler", "step", "--workers", "2", "--save", str(model_file)],
        subprocess_env, store_path, tmp_path,
    )
    own = report(proc)
    st = opened()

    (ex,) = rows(st, "SELECT * FROM dataflow_execution")
    assert ex["status"] == "FINISHED" and ex["dataflow_tag"] == "torch"
    tasks = rows(st, "SELECT id, dt_tag, status FROM task ORDER BY id")
    assert {t["status"] for t in tasks} == {"FINISHED"}
    assert sorted(t["dt_tag"] for t in tasks) == sorted(
        ["loaddata", "splitdata", "trainmodel", "testmodel"] + ["adaptation"] * len(own["lr_changes"])
    )

    # one row per epoch, the loop's own mean loss and its validation pass
    epochs = set_rows(st, "otrainmodel", "epoch")
    assert [r["epoch"] for r in epochs] == [0, 1, 2]
    for r, mine in zip(epochs, own["epochs"], strict=True):
        assert close(r["loss"], mine["loss"]), (r["loss"], mine["loss"])
        assert close(r["val_loss"], mine["val_loss"])
        assert close(r["val_accuracy"], mine["val_accuracy"])
        assert r["samples"] == 480 and r["batches"] == 15 and r["val_samples"] == 160
        assert r["elapsed_time"] > 0
    assert [r["learning_rate"] for r in epochs] == [0.2, 0.1, 0.05]

    # hyperparameters, seen from outside the script
    (hp,) = set_rows(st, "itrainmodel")
    assert hp["optimizer_name"] == "SGD" and hp["learning_rate"] == 0.2 and hp["opt_momentum"] == 0.5
    assert json.loads(hp["optimizer_defaults"])["weight_decay"] == 1e-4
    assert hp["batch_size"] == 32 and hp["shuffle"] == 1 and hp["num_workers"] == 2
    assert hp["num_epochs"] == 3  # args.epochs in the loop's frame
    assert hp["num_layers"] == 4 and hp["num_parameters"] == 20 * 32 + 32 + 32 * 2 + 2
    assert hp["loss_function"] == "CrossEntropyLoss"

    # StepLR: one adaptation per scheduler step
    adapt = set_rows(st, "oadaptation", "epoch")
    assert [(a["epoch"], a["old_learning_rate"], a["new_learning_rate"], a["trigger"]) for a in adapt] == [
        (c["epoch"], c["old"], c["new"], "StepLR") for c in own["lr_changes"]
    ]

    # the test pass after training, and the saved state dict
    (test,) = set_rows(st, "otestmodel")
    assert close(test["loss"], own["test"]["loss"]) and close(test["accuracy"], own["test"]["accuracy"])
    (saved,) = set_rows(st, "otrainedmodel")
    data = model_file.read_bytes()
    assert saved["model_dir"] == str(model_file.resolve()) and saved["content"] == "state_dict"
    assert saved["sha256"] == hashlib.sha256(data).hexdigest() and saved["size_bytes"] == len(data)

    # lineage: the dataset, the seeded random_split, and nothing twice (2 DataLoader workers)
    (load,) = set_rows(st, "oloaddata")
    assert load["num_samples"] == 640 and load["shapes"] == "[[640, 20], [640]]"
    (split,) = set_rows(st, "isplitconfig")
    assert split["ratio"] == 0.75 and split["seed"] == "42" and split["lengths"] == "[480, 160]"
    assert [r["num_samples"] for r in set_rows(st, "otrainset")] == [480]
    assert [r["num_samples"] for r in set_rows(st, "otestset")] == [160]
    deps = rows(st, "SELECT task_id, depends_on_task_id FROM task_dependency WHERE task_id = 'trainmodel-1'")
    assert deps == [{"task_id": "trainmodel-1", "depends_on_task_id": "splitdata-1"}]
    dup = rows(st, "SELECT span_id, COUNT(*) AS n FROM span_log GROUP BY span_id HAVING COUNT(*) > 1")
    assert dup == []


def test_reduce_lr_on_plateau(tmp_path, store_path, subprocess_env, opened):
    proc = run_instrumented(
        "train_loop.py", ["--scheduler", "plateau", "--epochs", "4", "--save", str(tmp_path / "m.pt")],
        subprocess_env, store_path, tmp_path,
    )
    own = report(proc)
    assert own["lr_changes"], "the script's plateau settings should reduce the rate at least once"
    st = opened()
    adapt = set_rows(st, "oadaptation", "epoch")
    assert [(a["epoch"], a["old_learning_rate"], a["new_learning_rate"], a["trigger"]) for a in adapt] == [
        (c["epoch"], c["old"], c["new"], "ReduceLROnPlateau") for c in own["lr_changes"]
    ]
    inputs = set_rows(st, "iadaptation", "epoch")
    assert [(i["adaptation_id"], i["trigger"]) for i in inputs] == [
        (a["adaptation_id"], "ReduceLROnPlateau") for a in adapt
    ]
    epochs = set_rows(st, "otrainmodel", "epoch")
    assert [r["epoch"] for r in epochs] == [0, 1, 2, 3]
    for r, mine in zip(epochs, own["epochs"], strict=True):
        assert close(r["loss"], mine["loss"])


def test_failing_loop_marks_task_and_execution_failed(tmp_path, store_path, subprocess_env, opened):
    proc = run_instrumented(
        "train_loop.py", ["--scheduler", "none", "--fail-at", "1"], subprocess_env, store_path, tmp_path
    )
    assert proc.returncode != 0 and "RuntimeError: diverged at epoch 1" in proc.stderr
    st = opened()
    (train,) = rows(st, "SELECT status, error FROM task WHERE dt_tag = 'trainmodel'")
    assert train["status"] == "FAILED" and "RuntimeError: diverged at epoch 1" in train["error"]
    (ex,) = rows(st, "SELECT status, error FROM dataflow_execution")
    assert ex["status"] == "FAILED" and "diverged at epoch 1" in ex["error"]
    # the epoch that completed is kept; the broken one is not an epoch
    assert [r["epoch"] for r in set_rows(st, "otrainmodel", "epoch")] == [0]
