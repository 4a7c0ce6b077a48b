"""The training loops people write, unmodified, under ``opentelemetry-instrument``.

``mnist_like.py`` and ``word_lm_like.py`` follow pytorch/examples ``mnist`` and
``word_language_model`` line by line on generated data: evaluation inside the epoch loop,
functional losses, ``StepLR``; no DataLoader, no optimizer, manual SGD, ``torch.save(model, f)``
to an open file and ``torch.load`` of the best model. Each prints what it computed; the
store must say the same (issue 16). Epoch rows arrive while the script still runs (issue 12).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import time
from pathlib import Path

import pytest

from dlprov_otel import client
from dlprov_otel.integrations._shared import STRICT_ENV
from dlprov_otel.prov import build_document
from dlprov_otel.store import open_store
from tests.collector_proc import start_collector
from tests.torch_helpers import SCRIPTS, report, rows, run_instrumented, set_rows

pytestmark = pytest.mark.torch

NEVER_SILENT = "DLProv: torch was imported and instrumented, but no training was recognised"


@pytest.fixture
def subprocess_env(subprocess_env: dict[str, str]) -> dict[str, str]:
    """Strict mode in the child: a provenance failure raises instead of being logged."""
    return {**subprocess_env, STRICT_ENV: "1"}


@pytest.fixture
def store(tmp_path: Path):
    opened = []

    def _open():
        opened.append(open_store(tmp_path / "store"))
        return opened[-1]

    yield _open
    for st in opened:
        st.close()


def close(a: float | None, b: float, tol: float = 1e-6) -> bool:
    return a is not None and not math.isnan(a) and abs(a - b) <= tol


def test_mnist_example_eval_in_loop_step_lr(tmp_path, subprocess_env, store):
    proc = run_instrumented("mnist_like.py", ["--epochs", "3", "--save-model"], subprocess_env, tmp_path / "store",
                            tmp_path)
    own = report(proc)
    assert NEVER_SILENT not in proc.stderr
    st = store()
    epochs = set_rows(st, "otrainmodel", "epoch")
    assert [r["epoch"] for r in epochs] == [0, 1, 2]  # numbered from 0 (the script counts from 1)
    for i, r in enumerate(epochs):
        assert close(r["loss"], own["train_loss"][i])
        # test() after each epoch, F.nll_loss(reduction="sum") / len(dataset), under eval + no_grad
        assert close(r["val_loss"], own["test_loss"][i]) and close(r["val_accuracy"], own["test_accuracy"][i])
        assert r["samples"] == 256 and r["val_samples"] == 100
    (hp,) = set_rows(st, "itrainmodel")
    assert hp["optimizer_name"] == "Adadelta" and hp["learning_rate"] == 1.0 and hp["loss_function"] == "nll_loss"
    # StepLR after each epoch: labelled with the epoch whose end triggered it, emitted after its row
    adapt = set_rows(st, "oadaptation", "epoch")
    rates = [1.0, *own["lr"]]
    assert [(a["epoch"], a["trigger"]) for a in adapt] == [(0, "StepLR"), (1, "StepLR"), (2, "StepLR")]
    for a, old, new in zip(adapt, rates[:-1], rates[1:], strict=True):
        assert close(a["old_learning_rate"], old) and close(a["new_learning_rate"], new)
    for a, e in zip(adapt, epochs, strict=True):
        assert a["emitted_at"] >= e["emitted_at"]
    # the last evaluation is the test
    (test,) = set_rows(st, "otestmodel")
    assert close(test["loss"], own["test_loss"][-1]) and close(test["accuracy"], own["test_accuracy"][-1])
    (saved,) = set_rows(st, "otrainedmodel")
    data = (tmp_path / "mnist_cnn.pt").read_bytes()
    assert saved["content"] == "state_dict" and saved["epoch"] == 2  # the weights of the last epoch
    assert saved["sha256"] == hashlib.sha256(data).hexdigest() and saved["size_bytes"] == len(data)


def test_word_language_model_manual_loop(tmp_path, subprocess_env, store):
    model_file = tmp_path / "model.pt"
    proc = run_instrumented("word_lm_like.py", ["--epochs", "6", "--save", str(model_file)], subprocess_env,
                            tmp_path / "store", tmp_path)
    own = report(proc)
    assert NEVER_SILENT not in proc.stderr
    st = store()
    epochs = set_rows(st, "otrainmodel", "epoch")
    assert [r["epoch"] for r in epochs] == list(range(6))
    for r, mine in zip(epochs, own["epochs"], strict=True):
        assert close(r["loss"], mine["loss"]) and r["steps"] == mine["steps"]
        assert close(r["val_loss"], mine["val_loss"], 1e-5)  # evaluate(): loss per token, under eval + no_grad
        assert close(r["learning_rate"], mine["lr"])
    (hp,) = set_rows(st, "itrainmodel")
    assert (hp["optimizer_name"], hp["learning_rate"]) == ("manual_sgd", 20.0)  # p.data.add_(p.grad, alpha=-lr)
    assert hp["model_class"] == "RNNModel" and hp["loss_function"] == "NLLLoss" and hp["num_epochs"] == 6
    # lr /= 4 after an epoch without improvement: seen at the next update (a cut after the last
    # epoch is never applied, so never seen)
    applied = [c for c in own["lr_changes"] if c["epoch"] < 5]
    assert applied, "the generated corpus should make the validation loss stall at least once"
    adapt = set_rows(st, "oadaptation", "epoch")
    assert [(a["epoch"], a["old_learning_rate"], a["new_learning_rate"], a["trigger"]) for a in adapt] == [
        (c["epoch"], c["old"], c["new"], "manual") for c in applied
    ]
    # torch.save(model, f) to an open file, each time the validation improved; hashed once closed
    saved = rows(st, 'SELECT * FROM "torch"."otrainedmodel" WHERE producer_task_id IS NOT NULL '
                     "ORDER BY emitted_at, idx")
    assert [s["epoch"] for s in saved] == own["saves"]
    assert {s["content"] for s in saved} == {"module"} and {s["model_dir"] for s in saved} == {str(model_file)}
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()
    assert saved[-1]["sha256"] == digest and len({s["sha256"] for s in saved}) == len(saved)
    # torch.load of the best model, then the test: the test used that file
    (test,) = set_rows(st, "otestmodel")
    assert close(test["loss"], own["test_loss"], 1e-5)
    (loaded,) = rows(st, 'SELECT * FROM "torch"."otrainedmodel" WHERE consumer_task_id = ?', [test["task_id"]])
    assert loaded["sha256"] == digest and loaded["epoch"] == own["saves"][-1]
    deps = rows(st, "SELECT depends_on_task_id FROM task_dependency WHERE task_id = ?", [test["task_id"]])
    assert deps == []  # it tested the loaded file, not the model in memory
    # in PROV, the test used the very model entity the training generated with that digest
    doc = json.loads(build_document(st, dataflow="torch").serialize(format="json"))
    (test_act,) = [k for k, a in doc["activity"].items() if a.get("dlprov:dt_tag") == "testmodel"]
    used = [u["prov:entity"] for u in doc["used"].values() for u in (u if isinstance(u, list) else [u])
            if u["prov:activity"] == test_act]
    made = {g["prov:entity"] for g in doc["wasGeneratedBy"].values() for g in (g if isinstance(g, list) else [g])}
    models = [e for e in used if doc["entity"][e].get("dlprov:ds_tag") == "otrainedmodel"]
    assert len(models) == 1 and models[0] in made and doc["entity"][models[0]]["dlprov:sha256"] == digest


def test_epoch_row_stored_while_the_script_waits(tmp_path, subprocess_env):
    """The last epoch's row (with its validation) is queryable before the script goes on:
    the script waits after training until the test has seen that row."""
    col = start_collector(tmp_path / "collector")
    try:
        signal = tmp_path / "seen"
        env = {**subprocess_env, "DLPROV_ENDPOINT": col.url, "PYTHONUNBUFFERED": "1"}
        env.pop("DLPROV_STORE", None)
        cmd = ["opentelemetry-instrument", "python", str(SCRIPTS / "word_lm_like.py"), "--epochs", "2",
               "--save", str(tmp_path / "m.pt"), "--wait-for", str(signal)]
        proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        seen = None
        while proc.poll() is None and seen is None:
            try:
                _, found = client.query(col.url, 'SELECT epoch, val_loss FROM "torch"."otrainmodel" WHERE epoch = 1',
                                        timeout=10)
            except Exception:  # the dataflow's tables do not exist yet
                found = []
            if found:
                seen = found[0]
                signal.write_text("seen")
            else:
                time.sleep(0.1)
        out, err = proc.communicate(timeout=120)
        own = report(subprocess.CompletedProcess(cmd, proc.returncode, out, err))
        assert own["waited"], "the last epoch's row was not stored while the script waited"
        assert seen is not None and close(seen[1], own["epochs"][1]["val_loss"], 1e-5)
    finally:
        col.stop()


NO_EPOCHS = """
import torch
from torch import nn
torch.manual_seed(0)
x, y = torch.randn(64, 4), torch.randn(64, 1)
model = nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(3):
    for i in range(0, 64, 16):  # no DataLoader, no train()/eval(), no evaluation: no epoch to see
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x[i:i + 16]), y[i:i + 16])
        loss.backward()
        opt.step()
print("done")
"""


def test_unrecognised_training_says_so_once(tmp_path, subprocess_env):
    script = tmp_path / "plain.py"
    script.write_text(NO_EPOCHS)
    env = {**subprocess_env, "DLPROV_STORE": str(tmp_path / "store")}
    proc = subprocess.run(["opentelemetry-instrument", "python", str(script)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("DLProv: torch was imported")]
    assert lines == [lines[0]] and NEVER_SILENT in lines[0]
    assert "from dlprov_otel.integrations.torch import log_epoch" in lines[0]
    quiet = subprocess.run(["opentelemetry-instrument", "python", str(script)], env={**env, "DLPROV_QUIET": "1"},
                           cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert quiet.returncode == 0 and NEVER_SILENT not in quiet.stderr
    # a script that never imports torch is not told anything about torch
    other = subprocess.run(["opentelemetry-instrument", "python", "-c", "print(1)"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=240)
    assert other.returncode == 0 and "DLProv: torch" not in other.stderr
    assert os.path.exists(script)


def test_plain_loop_manual_update_and_checkpoints(tmp_path, subprocess_env, store):
    proc = run_instrumented("plain_loop.py", ["--epochs", "4", "--out", str(tmp_path)], subprocess_env,
                            tmp_path / "store", tmp_path)
    own = report(proc)
    st = store()
    # epochs: steps resuming after the validation loss under no_grad end each one
    epochs = set_rows(st, "otrainmodel", "epoch")
    assert [r["epoch"] for r in epochs] == [0, 1, 2, 3]
    for r, mine in zip(epochs, own["epochs"], strict=True):
        assert close(r["loss"], mine["loss"]) and close(r["val_loss"], mine["val_loss"], 1e-5)
        assert r["val_accuracy"] is None or math.isnan(r["val_accuracy"])  # MSE: no accuracy to derive
        assert r["steps"] == 8 and close(r["learning_rate"], mine["lr"])
    (hp,) = set_rows(st, "itrainmodel")
    assert (hp["optimizer_name"], hp["learning_rate"], hp["loss_function"]) == ("manual_sgd", 0.05, "MSELoss")
    (adapt,) = set_rows(st, "oadaptation")  # `p -= lr * p.grad` with lr halved after epoch 1
    (change,) = own["lr_changes"]
    assert (adapt["epoch"], adapt["old_learning_rate"], adapt["new_learning_rate"], adapt["trigger"]) == (
        change["epoch"], change["old"], change["new"], "manual")
    # a checkpoint dictionary after each epoch carries the epoch whose weights it holds
    saved = set_rows(st, "otrainedmodel")
    assert [(s["epoch"], s["content"], s["model_dir"]) for s in saved] == [
        (i, "checkpoint", str(Path(p).resolve())) for i, p in enumerate(own["checkpoints"])
    ]
    for s in saved:
        assert s["sha256"] == hashlib.sha256(Path(s["model_dir"]).read_bytes()).hexdigest()
    (test,) = set_rows(st, "otestmodel")  # the last evaluation
    assert close(test["loss"], own["epochs"][-1]["val_loss"], 1e-5)


RESUMED = """
import torch
from torch import nn
torch.manual_seed(0)
x, y = torch.randn(128, 4), torch.randint(0, 2, (128,))
model = nn.Linear(4, 2)
torch.save(model.state_dict(), "init.pt")
model.load_state_dict(torch.load("init.pt"))  # resume from a checkpoint, then train on
opt = torch.optim.SGD(model.parameters(), lr=0.1)
crit = nn.CrossEntropyLoss()
for epoch in range(2):
    model.train()
    for i in range(0, 128, 32):
        opt.zero_grad()
        crit(model(x[i:i + 32]), y[i:i + 32]).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        crit(model(x), y)
"""


def test_loaded_then_trained_is_tested_as_trained(tmp_path, subprocess_env, store):
    script = tmp_path / "resumed.py"
    script.write_text(RESUMED)
    env = {**subprocess_env, "DLPROV_STORE": str(tmp_path / "store")}
    proc = subprocess.run(["opentelemetry-instrument", "python", str(script)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    st = store()
    assert [r["epoch"] for r in set_rows(st, "otrainmodel", "epoch")] == [0, 1]
    (init,) = set_rows(st, "otrainedmodel")
    assert init.get("epoch") is None or math.isnan(init["epoch"])  # saved before any epoch ended
    (test,) = set_rows(st, "otestmodel")
    given = rows(st, 'SELECT * FROM "torch"."otrainedmodel" WHERE consumer_task_id = ?', [test["task_id"]])
    deps = rows(st, "SELECT depends_on_dt_tag FROM task_dependency WHERE task_id = ?", [test["task_id"]])
    assert given == [] and deps == [{"depends_on_dt_tag": "trainmodel"}]
