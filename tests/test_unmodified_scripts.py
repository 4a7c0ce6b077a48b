"""Published training scripts that nobody on the project wrote, unmodified apart from their data.

tests/user_scripts/ holds pytorch/examples ``mnist`` and ``word_language_model``, keras-io
``mnist_convnet`` and the timeseries classification example, the Keras guide "Writing a
training loop from scratch in TensorFlow" and a Lightning script with ReduceLROnPlateau and
ModelCheckpoint (each file says where it comes from and what was changed: the data loading,
made synthetic, and the number of epochs). Each runs under ``opentelemetry-instrument`` as the
README says, against an embedded store; the rows must say what the script printed (issue 16),
and ``dlprov prov export`` must work on the run.
"""

from __future__ import annotations

import math
import random
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dlprov_otel.integrations._shared import STRICT_ENV
from dlprov_otel.store import open_store
from tests.torch_helpers import rows, run_instrumented

USER_SCRIPTS = Path(__file__).parent / "user_scripts"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def env(subprocess_env: dict[str, str]) -> dict[str, str]:
    """Strict mode (a provenance failure raises), no display for matplotlib."""
    return {**subprocess_env, STRICT_ENV: "1", "MPLBACKEND": "Agg"}


def run(script: str, args: list[str], env: dict[str, str], tmp_path: Path) -> str:
    """Run the script unchanged; its stdout with the terminal colours taken out."""
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    proc = run_instrumented(str(USER_SCRIPTS / script), args, env, tmp_path / "store", cwd)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "no training was recognised" not in proc.stderr
    return _ANSI.sub("", proc.stdout).replace("\r", "\n")


def stored(tmp_path: Path, dataflow: str) -> dict[str, list[dict[str, Any]]]:
    """The rows of the training, adaptation, test and model sets, in the order they came."""
    st = open_store(tmp_path / "store")
    try:
        return {
            tag: rows(st, f'SELECT * FROM "{dataflow}"."{tag}" ORDER BY emitted_at, idx')
            for tag in ("itrainmodel", "otrainmodel", "oadaptation", "otestmodel", "otrainedmodel")
        }
    finally:
        st.close()


def exported(tmp_path: Path, dataflow: str, env: dict[str, str]) -> str:
    """``dlprov prov export`` of the dataflow: the PROV-JSON text."""
    out = tmp_path / "prov"
    proc = subprocess.run(
        ["dlprov", "prov", "export", "--dataflow", dataflow, "--store", str(tmp_path / "store"), "--out", str(out),
         "--format", "json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return next(out.glob("*.json")).read_text()


def used_by(text: str, activity: str) -> list[str]:
    """The sets of the entities that the activities labelled ``activity`` used, in PROV-JSON."""
    import json

    doc = json.loads(text)
    labels = {k: str(v.get("prov:label", "")) for k, v in {**doc["entity"], **doc["activity"]}.items()}
    return sorted(
        labels.get(u["prov:entity"], "").split(" ")[0]
        for u in doc.get("used", {}).values()
        if labels.get(u["prov:activity"], "").split(" ")[0] == activity
    )


def near(stored_value: float | None, printed: float, decimals: int) -> bool:
    """A stored value equals a value the script printed with ``decimals`` decimals."""
    if stored_value is None or math.isnan(stored_value):
        return False
    return abs(stored_value - printed) <= 0.6 * 10**-decimals


def floats(pattern: str, text: str) -> list[float]:
    return [float(m) for m in re.findall(pattern, text, re.M)]


# -- PyTorch ------------------------------------------------------------------------------------


@pytest.mark.torch
def test_pytorch_examples_mnist(tmp_path, env):
    out = run("pytorch_mnist/main.py", ["--epochs", "2", "--log-interval", "2", "--save-model"], env, tmp_path)
    tests = re.findall(r"Test set: Average loss: ([\d.]+), Accuracy: (\d+)/(\d+)", out)
    assert len(tests) == 2
    got = stored(tmp_path, "torch")
    (hp,) = got["itrainmodel"]
    assert (hp["optimizer_name"], hp["learning_rate"], hp["batch_size"]) == ("Adadelta", 1.0, 64)
    epochs = got["otrainmodel"]
    assert [e["epoch"] for e in epochs] == [0, 1]
    for row, (loss, correct, total) in zip(epochs, tests, strict=True):  # test() after each epoch
        assert near(row["val_loss"], float(loss), 4)
        assert row["val_accuracy"] == pytest.approx(int(correct) / int(total))
    # StepLR(step_size=1, gamma=0.7) stepped after each epoch: labelled with that epoch
    assert [(a["epoch"], a["trigger"]) for a in got["oadaptation"]] == [(0, "StepLR"), (1, "StepLR")]
    assert [a["new_learning_rate"] for a in got["oadaptation"]] == pytest.approx([0.7, 0.49])
    (test,) = got["otestmodel"]  # the last test()
    assert near(test["loss"], float(tests[-1][0]), 4)
    (saved,) = got["otrainedmodel"]  # torch.save(model.state_dict(), "mnist_cnn.pt") after the last epoch
    assert (Path(saved["model_dir"]).name, saved["epoch"]) == ("mnist_cnn.pt", 1)
    assert saved["size_bytes"] == (tmp_path / "cwd" / "mnist_cnn.pt").stat().st_size
    text = exported(tmp_path, "torch", env)
    assert "otrainmodel" in text and "oadaptation" in text and "otestmodel" in text
    # two datasets loaded apart (no split): each activity used the data it read, the test the model
    assert used_by(text, "trainmodel") == ["itrainmodel", "otrainset"]
    assert used_by(text, "testmodel") == ["otestset", "otrainedmodel"]


@pytest.mark.torch
def test_pytorch_examples_mnist_dry_run(tmp_path, env):
    """``--dry-run`` (what pytorch/examples' own CI runs): ``break`` after the first batch of
    each epoch, so no training DataLoader pass runs out; each epoch is recorded all the same."""
    out = run("pytorch_mnist/main.py", ["--epochs", "3", "--dry-run"], env, tmp_path)
    tests = floats(r"Test set: Average loss: ([\d.]+),", out)
    first_losses = floats(r"Train Epoch: \d+ \[0/\d+ \(0%\)\]\s+Loss: ([\d.]+)", out)
    assert len(tests) == len(first_losses) == 3
    got = stored(tmp_path, "torch")
    epochs = got["otrainmodel"]
    assert [e["epoch"] for e in epochs] == [0, 1, 2]
    assert all(e["steps"] == 1 for e in epochs)
    assert all(near(e["loss"], v, 6) for e, v in zip(epochs, first_losses, strict=True))
    assert all(near(e["val_loss"], v, 4) for e, v in zip(epochs, tests, strict=True))
    assert [a["epoch"] for a in got["oadaptation"]] == [0, 1, 2]
    (test,) = got["otestmodel"]
    assert near(test["loss"], tests[-1], 4)


def _corpus(root: Path) -> Path:
    """A tiny text corpus in wikitext-2's layout (train/valid/test.txt, one sentence a line)."""
    rng = random.Random(0)
    words = ["the", "cat", "dog", "sat", "on", "a", "mat", "ran", "to", "house", "big", "small", "red"]
    for name, lines in (("train", 150), ("valid", 30), ("test", 30)):
        text = "\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(5, 15))) for _ in range(lines))
        (root / f"{name}.txt").write_text(text + "\n")
    return root


@pytest.mark.torch
def test_pytorch_examples_word_language_model(tmp_path, env):
    data = _corpus(tmp_path)
    args = ["--data", str(data), "--epochs", "4", "--emsize", "16", "--nhid", "16", "--bptt", "10",
            "--batch_size", "8", "--log-interval", "1", "--save", "model.pt", "--lr", "40"]  # fmt: skip
    out = run("word_language_model/main.py", args, env, tmp_path)
    valid = floats(r"end of epoch +\d+ .*valid loss +([\d.]+)", out)
    # the rate of each epoch, as its log lines print it
    lrs = {int(e): float(lr) for e, lr in re.findall(r"\| epoch +(\d+) .*\| lr ([\d.]+) \|", out)}
    (test_loss,) = floats(r"End of training \| test loss +([\d.]+)", out)
    assert len(valid) == 4 and sorted(lrs) == [1, 2, 3, 4]
    got = stored(tmp_path, "torch")
    (hp,) = got["itrainmodel"]
    assert (hp["optimizer_name"], hp["learning_rate"]) == ("manual_sgd", 40.0)
    epochs = got["otrainmodel"]
    assert [e["epoch"] for e in epochs] == [0, 1, 2, 3]
    assert all(near(row["val_loss"], v, 2) for row, v in zip(epochs, valid, strict=True))
    assert [row["learning_rate"] for row in epochs] == [lrs[e] for e in (1, 2, 3, 4)]
    # ``lr /= 4.0`` when the validation loss did not improve, labelled with that epoch (from 0)
    changes = [(e - 2, lrs[e - 1], lrs[e]) for e in (2, 3, 4) if lrs[e] != lrs[e - 1]]
    assert changes, "this corpus and --lr 40 make the script anneal at least once"
    adaptations = [(a["epoch"], a["old_learning_rate"], a["new_learning_rate"]) for a in got["oadaptation"]]
    assert adaptations[: len(changes)] == changes
    # each epoch either saved the model (torch.save(model, f) to an open file) or annealed; an
    # anneal after the last epoch is not seen (no manual update follows to show the new rate)
    saves = [m for m in got["otrainedmodel"] if m["producer_task_id"]]
    saved, annealed = {m["epoch"] for m in saves}, {a["epoch"] for a in got["oadaptation"]}
    assert saved.isdisjoint(annealed) and {0, 1, 2} <= saved | annealed <= {0, 1, 2, 3}
    (test,) = got["otestmodel"]
    assert near(test["loss"], test_loss, 2)
    (loaded,) = [m for m in got["otrainedmodel"] if m["consumer_task_id"]]  # torch.load(f) of the best
    assert loaded["sha256"] == saves[-1]["sha256"] and loaded["consumer_task_id"] == test["task_id"]
    assert "otestmodel" in exported(tmp_path, "torch", env)


@pytest.mark.torch
def test_lightning_reduce_lr_on_plateau_and_model_checkpoint(tmp_path, env):
    out = run("lightning_plateau_checkpoint.py", ["--max_epochs", "4"], env, tmp_path)
    lrs = [float(x) for x in re.findall(r"^epoch \d+ lr ([\d.e-]+)$", out, re.M)]
    (final_lr,) = floats(r"^final lr ([\d.e-]+)$", out)
    best_epoch, best_score = re.search(r"best checkpoint: .*epoch=(\d+)-step=\d+\.ckpt val_loss ([\d.]+)", out).groups()
    (test_loss,) = floats(r"test_loss\W+([\d.]+)", out)
    got = stored(tmp_path, "torch")
    epochs = got["otrainmodel"]
    assert [e["epoch"] for e in epochs] == [0, 1, 2, 3]
    assert [e["learning_rate"] for e in epochs] == pytest.approx(lrs)
    assert near(epochs[int(best_epoch)]["val_loss"], float(best_score), 6)
    # every change of the rate, labelled with the epoch whose validation triggered it
    rates = [*lrs, final_lr]
    changes = [(e, rates[e], rates[e + 1]) for e in range(4) if rates[e + 1] != rates[e]]
    assert changes
    assert [(a["epoch"], a["old_learning_rate"], a["new_learning_rate"]) for a in got["oadaptation"]] == changes
    assert {a["trigger"] for a in got["oadaptation"]} == {"ReduceLROnPlateau"}
    (test,) = got["otestmodel"]
    assert near(test["loss"], test_loss, 4)
    # the best checkpoint holds the weights of the epoch in its name
    (best,) = [m for m in got["otrainedmodel"] if m["producer_task_id"]]
    assert Path(best["model_dir"]).name.startswith(f"epoch={best_epoch}-")
    assert best["epoch"] == int(best_epoch)
    text = exported(tmp_path, "torch", env)
    # the test activity used its data and the best checkpoint it loaded (issue 16)
    assert used_by(text, "trainmodel") == ["itrainmodel", "otrainset"]
    assert used_by(text, "testmodel") == ["otestset", "otrainedmodel"]


# -- Keras / TensorFlow ---------------------------------------------------------------------------


def _fit_epochs(out: str) -> list[dict[str, float]]:
    """The metrics of the last progress line of each ``Epoch k/N`` of a ``fit(verbose=1)``."""
    found = []
    for chunk in re.split(r"^Epoch \d+/\d+$", out, flags=re.M)[1:]:
        last = [line for line in chunk.splitlines() if "val_loss" in line][-1]
        found.append({k: float(v) for k, v in re.findall(r"(\w+): ([\d.]+)", last)})
    return found


@pytest.mark.keras
def test_keras_io_mnist_convnet(tmp_path, env):
    out = run("keras_mnist_convnet.py", [], env, tmp_path)
    printed = _fit_epochs(out)
    (test_loss,) = floats(r"^Test loss: ([\d.]+)$", out)
    (test_acc,) = floats(r"^Test accuracy: ([\d.]+)$", out)
    got = stored(tmp_path, "keras")
    epochs = got["otrainmodel"]
    assert [e["epoch"] for e in epochs] == list(range(len(printed))) == [0, 1]
    for row, p in zip(epochs, printed, strict=True):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert near(row[key], p[key], 4), (key, row[key], p[key])
    assert got["oadaptation"] == [] and got["otrainedmodel"] == []
    (test,) = got["otestmodel"]
    assert test["loss"] == pytest.approx(test_loss) and test["accuracy"] == pytest.approx(test_acc)
    assert "otestmodel" in exported(tmp_path, "keras", env)


@pytest.mark.keras
def test_keras_io_timeseries_classification(tmp_path, env):
    out = run("keras_timeseries_classification.py", [], env, tmp_path)
    printed = _fit_epochs(out)
    assert len(printed) == 4 and "Test accuracy" in out
    got = stored(tmp_path, "keras")
    epochs = got["otrainmodel"]
    assert [e["epoch"] for e in epochs] == [0, 1, 2, 3]
    for row, p in zip(epochs, printed, strict=True):
        assert near(row["val_loss"], p["val_loss"], 4) and near(row["loss"], p["loss"], 4)
    # ReduceLROnPlateau(patience=20) and EarlyStopping(patience=50) do nothing in 4 epochs
    assert got["oadaptation"] == []
    # ModelCheckpoint("best_model.h5", save_best_only=True): a save each time val_loss improved
    best, improved = math.inf, []
    for row in epochs:
        if row["val_loss"] < best:
            best, improved = row["val_loss"], [*improved, row["epoch"]]
    saves = [m for m in got["otrainedmodel"] if m["producer_task_id"]]
    assert [m["epoch"] for m in saves] == improved
    assert all(Path(m["model_dir"]).name == "best_model.h5" for m in saves)
    # keras.models.load_model("best_model.h5"), then predict(x_test) (the accuracy comes from
    # scikit-learn): a test of the loaded best model on the 80 test series, without metrics
    (test,) = got["otestmodel"]
    assert test["samples"] == 80 and test["loss"] is None
    (given,) = [m for m in got["otrainedmodel"] if m["consumer_task_id"]]
    assert given["consumer_task_id"] == test["task_id"] and given["sha256"] == saves[-1]["sha256"]
    assert given["epoch"] == improved[-1]
    # in PROV the test used x_test and the very model entity the training generated
    assert used_by(exported(tmp_path, "keras", env), "testmodel") == ["otestset", "otrainedmodel"]


@pytest.mark.keras
def test_keras_guide_custom_training_loop(tmp_path, env):
    out = run("keras_custom_training_loop_tf.py", [], env, tmp_path)
    train_acc = floats(r"^Training acc over epoch: ([\d.]+)$", out)
    val_acc = floats(r"^Validation acc: ([\d.]+)$", out)
    assert len(train_acc) == len(val_acc) == 4
    got = stored(tmp_path, "keras")
    # the guide's optimizers step with Keras 3's ``optimizer.apply(grads, weights)``
    hps = got["itrainmodel"]
    # three trainings: each `optimizer = keras.optimizers.Adam(...)` in place of the last one's, and
    # the GAN's (its discriminator's optimizer; the generator's steps beside it)
    assert [h["optimizer_name"] for h in hps] == ["adam"] * 3
    assert [h["learning_rate"] for h in hps] == pytest.approx([1e-3, 1e-3, 3e-4])
    first, second, gan = ([e for e in got["otrainmodel"] if e["task_id"] == h["task_id"]] for h in hps)
    # the first loop: a fresh model and optimizer, three epochs without metrics
    assert [e["epoch"] for e in first] == [0, 1, 2]
    assert all(e["val_accuracy"] is None for e in first)
    # the second model: two eager epochs, then two more in a tf.function with the same optimizer
    assert [e["epoch"] for e in second] == [0, 1, 2, 3]
    assert all(near(e["accuracy"], a, 4) for e, a in zip(second, train_acc, strict=True))
    assert all(near(e["val_accuracy"], a, 4) for e, a in zip(second, val_acc, strict=True))
    (test,) = got["otestmodel"]  # no test pass: the last validation is the test
    assert near(test["accuracy"], val_acc[-1], 4)
    # the GAN loop breaks after 12 of its batches: one epoch, recorded at exit
    assert [e["epoch"] for e in gan] == [0]
    assert "otrainmodel" in exported(tmp_path, "keras", env)
