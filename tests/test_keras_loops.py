"""TensorFlow custom training loops (the Keras guide's GradientTape over tf.data, no fit),
run unmodified under ``opentelemetry-instrument``: rows equal what the script computed."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dlprov_otel.integrations._shared import STRICT_ENV
from dlprov_otel.store import open_store
from tests.torch_helpers import report, rows, run_instrumented, set_rows

pytestmark = pytest.mark.keras

SCRIPTS = Path(__file__).parent / "keras_scripts"


def close(a: Any, b: float, rel: float = 1e-6) -> bool:
    return a is not None and not (isinstance(a, float) and math.isnan(a)) and math.isclose(a, b, rel_tol=rel)


def train(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[dict[str, Any], Any]:
    store = tmp_path / "store"
    proc = run_instrumented(str(SCRIPTS / "tf_loop.py"), list(args), {**env, STRICT_ENV: "1"}, store, tmp_path)
    own = report(proc)
    assert "no training was recognised" not in proc.stderr
    return own, open_store(store)


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "tf.function"])
def test_gradient_tape_loop_epochs_validation_cut_and_test(tmp_path: Path, subprocess_env: dict, traced: bool) -> None:
    args = ["--cut", "1", "--test"] + (["--function"] if traced else [])
    own, st = train(tmp_path, subprocess_env, *args)
    try:
        epochs = set_rows(st, "otrainmodel", "epoch", dataflow="keras")
        assert [r["epoch"] for r in epochs] == [0, 1, 2]
        for r, mine in zip(epochs, own["epochs"], strict=True):
            assert close(r["loss"], mine["loss"]), (r["loss"], mine["loss"])
            assert close(r["val_loss"], mine["val_loss"]), (r["val_loss"], mine["val_loss"])
            assert r["steps"] == mine["steps"] == 5
            assert close(r["accuracy"], mine["accuracy"]) and close(r["val_accuracy"], mine["val_accuracy"])
            assert close(r["learning_rate"], mine["lr"])
        (hp,) = set_rows(st, "itrainmodel", dataflow="keras")
        assert (hp["optimizer_name"], hp["num_layers"], hp["training_loop"]) == ("sgd", 3, "GradientTape")
        assert hp["num_epochs"] == 3  # the script's args.epochs
        data = set_rows(st, "otrainset", dataflow="keras")  # the datasets of the first passes
        assert [(r["data_name"], r["subset"], r["cardinality"]) for r in data] == [
            ("train_dataset", "train", 5),
            ("validation_dataset", "validation", 2),
        ]
        assert close(hp["learning_rate"], own["epochs"][0]["lr"])
        assert hp["loss_function"] == "SparseCategoricalCrossentropy"
        assert hp["param_count"] == 16 * 32 + 32 + 32 * 4 + 4

        # optimizer.learning_rate.assign after epoch 1: labelled with epoch 1, after its row
        (cut,) = set_rows(st, "oadaptation", dataflow="keras")
        assert (cut["epoch"], cut["trigger"]) == (1, "user")
        assert close(cut["old_learning_rate"], own["epochs"][1]["lr"])
        assert close(cut["new_learning_rate"], own["lr_changes"][0]["new"])
        assert cut["emitted_at"] >= epochs[1]["emitted_at"]

        # the pass after the training with only evaluation losses is the test
        (test,) = set_rows(st, "otestmodel", dataflow="keras")
        assert close(test["loss"], own["test_loss"]) and close(test["accuracy"], own["test_accuracy"])
        tasks = {t["dt_tag"]: t for t in rows(st, "SELECT * FROM task")}
        assert {t["status"] for t in tasks.values()} == {"FINISHED"}
        deps = rows(st, "SELECT * FROM task_dependency WHERE task_id = ?", [tasks["testmodel"]["id"]])
        assert [d["depends_on_dt_tag"] for d in deps] == ["trainmodel"]
    finally:
        st.close()


def test_schedule_is_an_adaptation_per_epoch_and_the_last_validation_is_the_test(
    tmp_path: Path, subprocess_env: dict
) -> None:
    own, st = train(tmp_path, subprocess_env, "--function", "--schedule", "--epochs", "2")
    try:
        epochs = set_rows(st, "otrainmodel", "epoch", dataflow="keras")
        assert [close(r["learning_rate"], e["lr"]) for r, e in zip(epochs, own["epochs"], strict=True)] == [True] * 2
        adaptations = set_rows(st, "oadaptation", "epoch", dataflow="keras")
        # a per-step schedule: one change per epoch, labelled with the epoch in progress
        assert [(a["epoch"], a["trigger"]) for a in adaptations] == [(0, "ExponentialDecay"), (1, "ExponentialDecay")]
        assert close(adaptations[0]["new_learning_rate"], own["epochs"][1]["lr"])
        assert close(adaptations[1]["new_learning_rate"], own["final_lr"])
        (test,) = set_rows(st, "otestmodel", dataflow="keras")
        assert close(test["loss"], own["epochs"][-1]["val_loss"])
    finally:
        st.close()
    # what failed with "known: none" before
    out = tmp_path / "prov"
    proc = subprocess.run(
        ["dlprov", "prov", "export", "--dataflow", "keras", "--store", str(tmp_path / "store"), "--out", str(out),
         "--format", "json"],
        env=subprocess_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = next(out.glob("*.json")).read_text()
    assert "otrainmodel" in text and "oadaptation" in text and "otestmodel" in text


def test_a_script_whose_training_is_not_recognised_says_so_once(tmp_path: Path, subprocess_env: dict) -> None:
    script = tmp_path / "predict_only.py"
    script.write_text(
        "import numpy as np\nimport keras\n"
        "model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])\n"
        "print(model.predict(np.ones((3, 4), 'float32'), verbose=0).shape)\n"
    )
    proc = run_instrumented(str(script), [], {**subprocess_env, STRICT_ENV: "1"}, tmp_path / "store", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if "no training was recognised" in line]
    assert len(lines) == 1 and lines[0].startswith("DLProv: tensorflow was imported"), proc.stderr[-3000:]
    assert "DLProvCallback" in lines[0]


def test_a_loop_that_raises_ends_failed_with_its_epochs_recorded(tmp_path: Path, subprocess_env: dict) -> None:
    store = tmp_path / "store"
    env = {**subprocess_env, STRICT_ENV: "1"}
    proc = run_instrumented(str(SCRIPTS / "tf_loop.py"), ["--fail-at", "1"], env, store, tmp_path)
    assert proc.returncode == 1 and "RuntimeError: diverged after epoch 1" in proc.stderr
    own = json.loads(proc.stdout.strip().splitlines()[-1])
    st = open_store(store)
    try:
        epochs = set_rows(st, "otrainmodel", "epoch", dataflow="keras")
        assert [close(r["loss"], e["loss"]) for r, e in zip(epochs, own["epochs"], strict=True)] == [True, True]
        (train,) = rows(st, "SELECT * FROM task WHERE dt_tag = 'trainmodel'")
        assert train["status"] == "FAILED" and "diverged after epoch 1" in train["error"]
        (ex,) = rows(st, "SELECT * FROM dataflow_execution")
        assert ex["status"] == "FAILED"
    finally:
        st.close()


def test_two_optimizers_in_one_pass_are_one_training_and_a_later_one_another(dlprov: Any) -> None:
    import uuid

    import keras
    import numpy as np
    import tensorflow as tf

    import dlprov_otel
    from dlprov_otel.integrations._shared import strict
    from dlprov_otel.integrations.keras import KerasInstrumentor

    tag = f"loops-{uuid.uuid4().hex[:6]}"
    inst = KerasInstrumentor()
    inst.instrument(dataflow="kloops", execution=tag)
    data = tf.data.Dataset.from_tensor_slices(np.random.default_rng(0).random((64, 8), "float32")).batch(16)
    try:
        with strict():
            gen = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8)])
            disc = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
            g_opt, d_opt = keras.optimizers.Adam(1e-3), keras.optimizers.SGD(1e-2)
            bce = keras.losses.BinaryCrossentropy(from_logits=True)
            for _ in range(2):  # a GAN: two optimizers step in every batch
                for batch in data:
                    noise = tf.random.normal((16, 4))
                    with tf.GradientTape() as tape:
                        d_loss = bce(tf.ones((16, 1)), disc(batch)) + bce(tf.zeros((16, 1)), disc(gen(noise)))
                    d_opt.apply_gradients(
                        zip(tape.gradient(d_loss, disc.trainable_weights), disc.trainable_weights, strict=True)
                    )
                    with tf.GradientTape() as tape:
                        g_loss = bce(tf.ones((16, 1)), disc(gen(noise)))
                    g_opt.apply_gradients(
                        zip(tape.gradient(g_loss, gen.trainable_weights), gen.trainable_weights, strict=True)
                    )
            head = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
            h_opt = keras.optimizers.RMSprop(1e-3)
            for batch in data:  # then another model with its own optimizer: another training
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.square(head(batch)))
                h_opt.apply_gradients(
                    zip(tape.gradient(loss, head.trainable_weights), head.trainable_weights, strict=True)
                )
    finally:
        inst.uninstrument()
    assert dlprov_otel.flush(30)
    st = dlprov_otel.get_store()
    trainings = st.query("SELECT id FROM task WHERE execution_tag = ? AND dt_tag = 'trainmodel'", [tag]).as_dicts()
    assert len(trainings) == 2
    hp = st.query('SELECT * FROM "kloops"."itrainmodel" WHERE execution_tag = ? ORDER BY emitted_at', [tag])
    assert [r["optimizer_name"] for r in hp.as_dicts()] == ["sgd", "rmsprop"]
    epochs = st.query('SELECT * FROM "kloops"."otrainmodel" WHERE execution_tag = ? ORDER BY emitted_at', [tag])
    assert [(r["epoch"], r["steps"]) for r in epochs.as_dicts()] == [(0, 8), (1, 8), (0, 4)]


def test_a_long_pass_without_tf_data_is_one_row_with_every_step(dlprov: Any) -> None:
    import uuid

    import keras
    import numpy as np
    import tensorflow as tf

    import dlprov_otel
    from dlprov_otel.integrations._shared import strict
    from dlprov_otel.integrations.keras import KerasInstrumentor

    tag = f"loops-{uuid.uuid4().hex[:6]}"
    inst = KerasInstrumentor()
    inst.instrument(dataflow="kloops", execution=tag)
    x = np.random.default_rng(0).random((2100, 4), "float32")
    losses = []
    try:
        with strict():
            w = keras.Variable(np.zeros((4, 1), "float32"))
            opt = keras.optimizers.SGD(1e-3)
            for row in x:  # numpy rows, no tf.data: no epoch boundary until the training ends
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.square(tf.matmul(row[None, :], w) - 1.0))
                opt.apply_gradients([(tape.gradient(loss, w), w)])
                losses.append(float(loss))
    finally:
        inst.uninstrument()  # ends the training: the pass so far is its one epoch
    assert dlprov_otel.flush(30)
    sql = 'SELECT * FROM "kloops"."otrainmodel" WHERE execution_tag = ?'
    (epoch,) = dlprov_otel.get_store().query(sql, [tag]).as_dicts()
    assert epoch["steps"] == 2100  # more than are kept as tensors: summed on the device, none lost
    assert close(epoch["loss"], sum(losses) / len(losses))
