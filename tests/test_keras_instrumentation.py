"""Keras training recorded by the KerasInstrumentor: rows equal what Keras reported."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dlprov_otel
from dlprov_otel.integrations._shared import forget_reported, strict
from dlprov_otel.integrations.keras import KerasInstrumentor, load_data, split_data, transform

pytestmark = pytest.mark.keras

import keras  # noqa: E402

DF = "kt"


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.data / 16.0).astype("float32"), d.target.astype("int64")


@pytest.fixture
def run(dlprov: Any) -> Iterator[str]:
    """Instrumented, in strict mode; yields the execution tag every task of the test goes to."""
    tag = f"kt-{uuid.uuid4().hex[:8]}"
    inst = KerasInstrumentor()
    inst.instrument(dataflow=DF, execution=tag)
    try:
        with strict():  # a provenance failure fails the test instead of being logged
            yield tag
    finally:
        inst.uninstrument()


def make_model(lr: float = 0.01) -> Any:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(10, activation="softmax")]
    )
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def rows(sql: str, *params: Any) -> list[dict[str, Any]]:
    assert dlprov_otel.flush(30)
    return dlprov_otel.get_store().query(sql, list(params)).as_dicts()


def set_rows(set_tag: str, tag: str, order: str = "emitted_at, idx") -> list[dict[str, Any]]:
    return rows(f'SELECT * FROM "{DF}"."{set_tag}" WHERE execution_tag = ? ORDER BY {order}', tag)


def tasks(tag: str, dt_tag: str) -> list[dict[str, Any]]:
    return rows("SELECT * FROM task WHERE execution_tag = ? AND dt_tag = ? ORDER BY start_time", tag, dt_tag)


def depends_on(tag: str, task_id: str) -> set[tuple[str, str]]:
    found = rows("SELECT * FROM task_dependency WHERE execution_tag = ? AND task_id = ?", tag, task_id)
    return {(d["depends_on_dt_tag"], d["depends_on_task_id"]) for d in found}


def null(value: Any) -> bool:
    """SQL NULL as a query returns it (monetdbe gives NaN for a NULL double)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def test_fit_records_hyperparameters_epochs_and_split(run: str, digits: Any) -> None:
    x, y = digits
    model = make_model()
    history = model.fit(x, y, epochs=3, batch_size=64, validation_split=0.2, verbose=0)

    epochs = set_rows("otrainmodel", run, "epoch")
    assert [r["epoch"] for r in epochs] == [0, 1, 2]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert [r[key] for r in epochs] == history.history[key]  # exactly what Keras reported
    assert all(r["elapsed_time"] > 0 for r in epochs)
    assert {r["learning_rate"] for r in epochs} == {float(np.float32(0.01))}

    (train,) = tasks(run, "trainmodel")
    assert train["status"] == "FINISHED"
    (hp,) = set_rows("itrainmodel", run)
    assert (hp["optimizer_name"], hp["num_epochs"], hp["num_layers"], hp["batch_size"]) == ("adam", 3, 2, 64)
    assert hp["learning_rate"] == float(np.float32(0.01))
    assert hp["param_count"] == model.count_params()
    assert json.loads(hp["model_architecture"]) == json.loads(model.to_json())
    assert json.loads(hp["optimizer_config"])["name"] == "adam"
    assert hp["loss_function"] == "sparse_categorical_crossentropy"
    assert json.loads(hp["metrics"]) == ["accuracy"]

    # validation_split: a splitdata task produced both parts, and the training depends on it
    (split,) = tasks(run, "splitdata")
    (config,) = set_rows("isplitconfig", run)
    assert (config["ratio"], config["train_samples"], config["validation_samples"]) == (0.2, 1437, 360)
    parts = {(r["data_name"], r["subset"]): r for r in set_rows("otrainset", run)}
    assert parts[("x", "train")]["sha256"] == sha(x[:1437])
    assert parts[("y", "validation")]["sha256"] == sha(y[1437:])
    assert parts[("x", "train")]["trainset"] == "sha256:" + sha(x[:1437])
    assert parts[("x", "validation")]["shape"] == "(360, 64)"
    assert {r["producer_task_id"] for r in parts.values()} == {split["id"]}
    assert depends_on(run, train["id"]) == {("splitdata", split["id"])}


def test_learning_rate_scheduler_is_an_adaptation(run: str, digits: Any) -> None:
    x, y = digits
    model = make_model(0.01)
    schedule = keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch > 0 else lr)
    history = model.fit(x, y, epochs=3, batch_size=128, verbose=0, callbacks=[schedule])

    rates = history.history["learning_rate"]  # the rate each epoch trained with
    adaptations = set_rows("oadaptation", run, "epoch")
    # labelled with the epoch whose end triggered the change (the scheduler runs at the next begin)
    assert [(a["epoch"], a["old_learning_rate"], a["new_learning_rate"]) for a in adaptations] == [
        (0, rates[0], rates[1]),
        (1, rates[1], rates[2]),
    ]
    assert {a["trigger"] for a in adaptations} == {"LearningRateScheduler"}
    assert [r["learning_rate"] for r in set_rows("otrainmodel", run, "epoch")] == rates
    (train,) = tasks(run, "trainmodel")
    adapt_tasks = tasks(run, "adaptation")
    assert len(adapt_tasks) == 2
    for t in adapt_tasks:
        assert depends_on(run, t["id"]) == {("trainmodel", train["id"])}
    inputs = set_rows("iadaptation", run, "epoch")
    assert [(i["adaptation_id"], i["epoch"]) for i in inputs] == [(a["adaptation_id"], a["epoch"]) for a in adaptations]


def test_schedule_objects_and_a_users_change_are_adaptations(run: str, digits: Any) -> None:
    x, y = digits
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=5, decay_rate=0.5)
    model = make_model()
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=256, verbose=0)  # 8 steps per epoch

    def rate(step: int) -> float:
        return float(keras.ops.convert_to_numpy(schedule(step)))

    adaptations = set_rows("oadaptation", run, "epoch")
    # a per-step schedule: labelled with the epoch in progress
    assert [(a["epoch"], a["trigger"]) for a in adaptations] == [(0, "ExponentialDecay"), (1, "ExponentialDecay")]
    assert [a["old_learning_rate"] for a in adaptations] == pytest.approx([rate(0), rate(8)], rel=1e-6)
    assert [a["new_learning_rate"] for a in adaptations] == pytest.approx([rate(8), rate(16)], rel=1e-6)
    (hp,) = set_rows("itrainmodel", run)
    assert json.loads(hp["learning_rate_schedule"])["class_name"] == "ExponentialDecay"

    class Bump(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            if epoch == 1:
                self.model.optimizer.learning_rate = 0.05

    model = make_model(0.01)
    model.fit(x, y, epochs=2, batch_size=256, verbose=0, callbacks=[Bump()])
    bumped = set_rows("oadaptation", run, "emitted_at")[2:]
    assert [(a["epoch"], a["trigger"], a["old_learning_rate"], a["new_learning_rate"]) for a in bumped] == [
        (0, "Bump", float(np.float32(0.01)), float(np.float32(0.05)))
    ]


def test_reduce_lr_on_plateau_and_early_stopping(run: str, digits: Any) -> None:
    x, y = digits
    model = make_model(0.01)
    # min_delta so large that no epoch improves: the rate halves after every epoch
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=100.0)
    stop = keras.callbacks.EarlyStopping(monitor="loss", min_delta=100.0, patience=2, restore_best_weights=True)
    history = model.fit(x, y, epochs=10, batch_size=128, verbose=0, callbacks=[plateau, stop])

    rates = history.history["learning_rate"]
    final = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    # reduced at the end of epoch i - 1: labelled i - 1, and recorded after that epoch's row
    expected = [(i - 1, rates[i - 1], rates[i]) for i in range(1, len(rates)) if rates[i] != rates[i - 1]]
    if final != rates[-1]:
        expected.append((len(rates) - 1, rates[-1], final))  # reduced after the last epoch
    adaptations = set_rows("oadaptation", run, "epoch")
    assert expected
    assert [(a["epoch"], a["old_learning_rate"], a["new_learning_rate"]) for a in adaptations] == expected
    assert {a["trigger"] for a in adaptations} == {"ReduceLROnPlateau"}
    rows_of = {r["epoch"]: r for r in set_rows("otrainmodel", run, "epoch")}
    assert all(a["emitted_at"] >= rows_of[a["epoch"]]["emitted_at"] for a in adaptations)

    epochs = set_rows("otrainmodel", run, "epoch")
    assert len(epochs) == len(history.history["loss"]) == stop.stopped_epoch + 1 < 10
    assert [r["loss"] for r in epochs] == history.history["loss"]
    last = epochs[-1]
    assert last["stopped_epoch"] == stop.stopped_epoch
    assert last["best_epoch"] == stop.best_epoch
    assert last["restore_best_weights"] == "True"
    assert all(null(r["stopped_epoch"]) for r in epochs[:-1])


def test_save_and_evaluate(run: str, digits: Any, tmp_path: Path) -> None:
    x, y = digits
    model = make_model()
    model.fit(x[:1200], y[:1200], epochs=2, batch_size=64, verbose=0)
    model.save(tmp_path / "model.keras")
    model.save_weights(str(tmp_path / "model.weights.h5"))
    as_dict = model.evaluate(x[1200:], y[1200:], verbose=0, return_dict=True)
    as_list = model.evaluate(x[1500:], y[1500:], verbose=0)

    (train,) = tasks(run, "trainmodel")
    saved = {r["format"]: r for r in set_rows("otrainedmodel", run)}
    assert set(saved) == {"keras", "weights.h5"}
    for fmt, name in (("keras", "model.keras"), ("weights.h5", "model.weights.h5")):
        data = (tmp_path / name).read_bytes()
        assert saved[fmt]["sha256"] == hashlib.sha256(data).hexdigest()
        assert saved[fmt]["size_bytes"] == len(data)
        assert saved[fmt]["model_dir"] == str(tmp_path / name)
        assert saved[fmt]["producer_task_id"] == train["id"]
        assert saved[fmt]["model_name"] == model.name

    tests = tasks(run, "testmodel")
    assert len(tests) == 2  # fit's validation is not a test
    results = set_rows("otestmodel", run)
    assert (results[0]["loss"], results[0]["accuracy"]) == (as_dict["loss"], as_dict["accuracy"])
    assert (results[1]["loss"], results[1]["accuracy"]) == tuple(as_list)
    for t in tests:
        assert depends_on(run, t["id"]) == {("trainmodel", train["id"])}
    test_sets = set_rows("otestset", run)
    assert [(r["data_name"], r["samples"]) for r in test_sets] == [("x", 597), ("y", 597), ("x", 297), ("y", 297)]
    assert test_sets[0]["sha256"] == sha(x[1200:])


def test_failed_fit_is_failed_and_the_error_propagates(run: str, digits: Any) -> None:
    x, y = digits
    boom = RuntimeError("boom at epoch 1")

    class Boom(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if epoch == 1:
                raise boom

    model = make_model()
    with pytest.raises(RuntimeError) as caught:
        model.fit(x, y, epochs=3, batch_size=128, verbose=0, callbacks=[Boom()])
    assert caught.value is boom
    (train,) = tasks(run, "trainmodel")
    assert train["status"] == "FAILED"
    assert "boom at epoch 1" in train["error"]
    assert [r["epoch"] for r in set_rows("otrainmodel", run)] == [0]
    assert len(set_rows("itrainmodel", run)) == 1
    # the model still trains afterwards, as a new task
    model.fit(x, y, epochs=1, batch_size=128, verbose=0)
    assert [t["status"] for t in tasks(run, "trainmodel")] == ["FAILED", "FINISHED"]


def test_uninstrument_restores_keras(dlprov: Any, digits: Any) -> None:
    from keras.src.models.model import Model

    def owner(name: str) -> type:
        return next(k for k in Model.__mro__ if name in k.__dict__)

    import tensorflow as tf
    from tensorflow.python.data.ops import dataset_ops, iterator_ops

    names = ("fit", "evaluate", "save", "save_weights", "load_weights")
    originals = {n: owner(n).__dict__[n] for n in names}
    # what custom loops and loading patch, where it is defined
    others = [
        (tf.GradientTape, "gradient"),
        (iterator_ops.OwnedIterator, "__next__"),
        (dataset_ops.DatasetV2, "__iter__"),
        (next(k for k in keras.losses.Loss.__mro__ if "__call__" in k.__dict__), "__call__"),
        (next(k for k in keras.optimizers.SGD.__mro__ if "apply_gradients" in k.__dict__), "apply_gradients"),
        (keras.models, "load_model"),
        (keras.saving, "load_model"),
    ]
    before = [vars(o)[n] for o, n in others]
    inst = KerasInstrumentor()
    inst.instrument(dataflow=DF, execution="kt-uninstrument")
    try:
        assert all(owner(n).__dict__[n] is not originals[n] for n in names)
        assert all(vars(o)[n] is not b for (o, n), b in zip(others, before, strict=True))
    finally:
        inst.uninstrument()
    assert all(owner(n).__dict__[n] is originals[n] for n in names)
    assert all(vars(o)[n] is b for (o, n), b in zip(others, before, strict=True))
    assert "fit" not in Model.__dict__ and "evaluate" not in Model.__dict__  # nothing left behind
    x, y = digits
    make_model().fit(x[:256], y[:256], epochs=1, verbose=0)
    assert rows("SELECT * FROM task WHERE execution_tag = ?", "kt-uninstrument") == []


def test_dependency_check_accepts_tensorflows_keras() -> None:
    from importlib.metadata import distribution

    from opentelemetry.instrumentation.dependencies import get_dependency_conflicts, get_dist_dependency_conflicts

    assert get_dependency_conflicts(KerasInstrumentor().instrumentation_dependencies()) is None
    assert get_dist_dependency_conflicts(distribution("dlprov-otel")) is None


def test_unusable_store_never_breaks_training(
    tmp_path: Path, digits: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    x, y = digits
    monkeypatch.setenv("DLPROV_SHUTDOWN_TIMEOUT", "1")
    spool = tmp_path / "spool"
    dlprov_otel.configure(store=tmp_path / "store", spool_dir=spool)
    dlprov_otel.get_store().backend.close()  # the store dies under the running job
    inst = KerasInstrumentor()
    inst.instrument(dataflow=DF, execution="kt-dead-store")
    caplog.set_level(logging.WARNING)
    try:
        model = make_model()
        h1 = model.fit(x, y, epochs=2, batch_size=128, verbose=0)
        model.evaluate(x, y, verbose=0)
        dlprov_otel.flush(1)
        h2 = model.fit(x, y, epochs=2, batch_size=128, verbose=0)
    finally:
        inst.uninstrument()
        stats = dlprov_otel.stats()
        dlprov_otel.shutdown()
    assert len(h1.history["loss"]) == len(h2.history["loss"]) == 2
    assert stats["export_failures"] >= 1 and stats["dropped"] == 0
    errors = [r for r in caplog.records if "cannot store provenance" in r.getMessage()]
    assert len(errors) == 1  # logged once, not per batch
    # nothing was lost: the spool directory holds the run, and replays into a working store
    # (as `dlprov replay` does: the journals of ended processes, then any spooled requests)
    from dlprov_otel.exporter import MonetDBSpanExporter
    from dlprov_otel.replay import replay_orphans
    from dlprov_otel.spool import replay
    from dlprov_otel.store import open_store

    fresh = open_store(tmp_path / "fresh")
    try:
        journals = replay_orphans(spool, None, MonetDBSpanExporter(store=fresh), patience=0)
        files, spans = replay(fresh, spool)
        assert journals.journals + files >= 1 and journals.spans + spans > 0
        stored = fresh.query(
            f'SELECT loss FROM "{DF}"."otrainmodel" WHERE execution_tag = ? ORDER BY emitted_at', ["kt-dead-store"]
        )
        assert [r[0] for r in stored.rows] == h1.history["loss"] + h2.history["loss"]
    finally:
        fresh.close()


def test_bad_store_url_never_breaks_training(
    digits: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    dlprov_otel.shutdown()
    monkeypatch.setenv("DLPROV_STORE", "nosuchscheme://nowhere")
    monkeypatch.delenv("DLPROV_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    forget_reported()
    caplog.set_level(logging.WARNING)
    inst = KerasInstrumentor()
    inst.instrument(dataflow=DF)
    try:
        x, y = digits
        model = make_model()
        histories = [model.fit(x, y, epochs=1, batch_size=256, verbose=0) for _ in range(3)]
    finally:
        inst.uninstrument()
        dlprov_otel.shutdown()
    assert all(len(h.history["loss"]) == 1 for h in histories)
    warnings = [r for r in caplog.records if "recording provenance (fit)" in r.getMessage()]
    assert len(warnings) == 1
    assert "nosuchscheme" in warnings[0].getMessage()


def test_data_steps_tf_data_and_lineage(run: str, digits: Any, tmp_path: Path) -> None:
    import tensorflow as tf

    x_all, y_all = digits

    @load_data("digits", source="sklearn.datasets.load_digits")
    def load() -> tuple[np.ndarray, np.ndarray]:
        return x_all * 16.0, y_all

    @transform("normalize")
    def normalize(images: np.ndarray) -> np.ndarray:
        return images / 16.0

    raw, labels = load()
    x = normalize(raw)
    with split_data(0.25, inputs={"x": x, "y": labels}) as step:
        x_train, x_test, y_train, y_test = x[:1347], x[1347:], labels[:1347], labels[1347:]
        step.train(x=x_train, y=y_train)
        step.test(x=x_test, y=y_test)
    model = make_model()
    dataset = tf.data.Dataset.from_tensor_slices((x_train, y_train)).batch(64)
    history = model.fit(dataset, epochs=2, verbose=0)
    model.evaluate(x_test, y_test, verbose=0)

    (loaded,) = set_rows("iinputdataset", run)
    assert (loaded["dataset_name"], loaded["dataset_source"]) == ("digits", "sklearn.datasets.load_digits")
    out = {r["data_name"]: r for r in set_rows("oloaddata", run)}
    assert out["output[0]"]["sha256"] == sha(raw) and out["output[1]"]["sha256"] == sha(labels)
    assert [r["sha256"] for r in set_rows("onormalize", run)] == [sha(x)]
    assert [r["sha256"] for r in set_rows("inormalize", run)] == [sha(raw)]
    trainset = [r for r in set_rows("otrainset", run) if r["consumer_task_id"] is not None]
    assert len(trainset) == 1 and trainset[0]["kind"] == "tf.data._BatchDataset"
    assert null(trainset[0]["sha256"]) and trainset[0]["cardinality"] == 22
    assert "TensorSpec(shape=(None, 64)" in trainset[0]["shape"]
    assert [r["loss"] for r in set_rows("otrainmodel", run, "epoch")] == history.history["loss"]

    ids = {dt: tasks(run, dt)[0]["id"] for dt in ("loaddata", "normalize", "splitdata", "trainmodel", "testmodel")}
    assert depends_on(run, ids["normalize"]) == {("loaddata", ids["loaddata"])}
    # x was normalized, the labels come straight from the load
    assert depends_on(run, ids["splitdata"]) == {("normalize", ids["normalize"]), ("loaddata", ids["loaddata"])}
    # tf.data hides its arrays: the training depends on the latest data step
    assert depends_on(run, ids["trainmodel"]) == {("splitdata", ids["splitdata"])}
    # the test arrays come from the split, which the test task then depends on too
    assert depends_on(run, ids["testmodel"]) == {("trainmodel", ids["trainmodel"]), ("splitdata", ids["splitdata"])}
    assert [r for r in set_rows("otestset", run) if r["consumer_task_id"] is not None] == []  # not re-emitted


def test_hand_added_callback_without_instrumentor(dlprov: Any, digits: Any) -> None:
    from dlprov_otel.integrations.keras import DLProvCallback

    x, y = digits
    tag = f"kt-cb-{uuid.uuid4().hex[:6]}"
    callback = DLProvCallback(dataflow=DF, execution=tag)
    model = make_model()
    schedule = keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.1 if epoch == 1 else lr)
    history = model.fit(x, y, epochs=2, batch_size=128, verbose=0, callbacks=[schedule, callback])
    result = model.evaluate(x, y, verbose=0, return_dict=True, callbacks=[callback])

    assert [r["loss"] for r in set_rows("otrainmodel", tag, "epoch")] == history.history["loss"]
    assert [t["status"] for t in tasks(tag, "trainmodel")] == ["FINISHED"]
    (hp,) = set_rows("itrainmodel", tag)
    assert hp["num_epochs"] == 2 and hp["optimizer_name"] == "adam"
    (adaptation,) = set_rows("oadaptation", tag)
    rates = history.history["learning_rate"]
    assert (adaptation["epoch"], adaptation["old_learning_rate"], adaptation["new_learning_rate"]) == (
        0,
        rates[0],
        rates[1],
    )
    (tested,) = set_rows("otestmodel", tag)
    assert (tested["loss"], tested["accuracy"]) == (result["loss"], result["accuracy"])


def test_ten_megabyte_architecture_is_stored_whole(run: str, digits: Any) -> None:
    @keras.saving.register_keras_serializable(package="dlprov_test")
    class Noted(keras.layers.Layer):
        def __init__(self, note: str = "", **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.note = note

        def call(self, inputs: Any) -> Any:
            return inputs

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "note": self.note}

    note = ("0123456789abcdefghijklmnopqrstuvwxyz-" * 300_000)[: 10 * 1024 * 1024]
    model = keras.Sequential([keras.Input((64,)), Noted(note), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = digits
    model.fit(x[:64], y[:64], epochs=1, verbose=0)
    (hp,) = set_rows("itrainmodel", run)
    expected = model.to_json()
    assert len(expected) > 10 * 1024 * 1024
    assert hp["model_architecture"] == expected


def test_fit_spans_go_to_the_given_tracer_provider(digits: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from dlprov_otel import semconv

    dlprov_otel.shutdown()
    monkeypatch.setenv("DLPROV_STORE", "nosuchscheme://nowhere")  # no pipeline could take a span
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    x, y = digits
    inst = KerasInstrumentor()
    inst.instrument(tracer_provider=provider, dataflow=DF, execution="kt-provider")
    try:
        with strict():
            history = make_model().fit(x[:256], y[:256], epochs=2, batch_size=64, verbose=0)
    finally:
        inst.uninstrument()
    spans = exporter.get_finished_spans()
    (train,) = [s for s in spans if s.attributes.get(semconv.KIND) == semconv.KIND_TASK]
    assert (train.name, train.attributes[semconv.EXECUTION_TAG]) == ("trainmodel", "kt-provider")
    assert train.attributes[semconv.TASK_STATUS] == semconv.FINISHED
    epochs = [s for s in spans if s.attributes.get(semconv.DATASET_TAG) == "otrainmodel"]
    assert [e.attributes[semconv.data_key("loss")][0] for e in epochs] == history.history["loss"]


def test_checkpoints_carry_their_epoch_and_a_loaded_model_links_to_its_training(
    run: str, digits: Any, tmp_path: Path
) -> None:
    from prov.model import ProvGeneration, ProvUsage

    from dlprov_otel.prov import build_document

    x, y = digits
    model = make_model()
    every = keras.callbacks.ModelCheckpoint(str(tmp_path / "e{epoch:02d}.keras"))  # Keras names epochs from 1
    best = keras.callbacks.ModelCheckpoint(str(tmp_path / "best.keras"), monitor="loss", save_best_only=True)
    history = model.fit(x, y, epochs=3, batch_size=128, verbose=0, callbacks=[every, best])
    best_epoch = min(range(3), key=lambda e: history.history["loss"][e])

    (train,) = tasks(run, "trainmodel")
    saved = [r for r in set_rows("otrainedmodel", run) if r["producer_task_id"] == train["id"]]
    # each checkpoint carries the epoch whose weights it holds (saved at that epoch's end)
    assert sorted((Path(r["model_dir"]).name, r["epoch"]) for r in saved if "best" not in r["model_dir"]) == [
        ("e01.keras", 0),
        ("e02.keras", 1),
        ("e03.keras", 2),
    ]
    assert [r["epoch"] for r in saved if r["model_dir"].endswith("best.keras")][-1] == best_epoch

    loaded = keras.models.load_model(tmp_path / "best.keras")
    result = loaded.evaluate(x, y, verbose=0, return_dict=True)
    (test,) = tasks(run, "testmodel")
    assert depends_on(run, test["id"]) == {("trainmodel", train["id"])}
    digest = hashlib.sha256((tmp_path / "best.keras").read_bytes()).hexdigest()
    (given,) = [r for r in set_rows("otrainedmodel", run) if r["consumer_task_id"] == test["id"]]
    assert (given["sha256"], given["epoch"], given["loaded"]) == (digest, best_epoch, "model")
    assert given["model_dir"] == str(tmp_path / "best.keras")
    (tested,) = set_rows("otestmodel", run)
    assert tested["loss"] == result["loss"]

    # PROV: the evaluation used the very model entity the training generated (by sha256)
    doc = build_document(dlprov_otel.get_store(), execution=run)
    entities = {
        str(r.identifier): r
        for r in doc.get_records()
        if r.get_type().localpart == "Entity" and digest in {str(v) for _, v in r.attributes}
    }
    generated = {str(g.args[0]) for g in doc.get_records(ProvGeneration)} & set(entities)
    used = {str(u.args[1]) for u in doc.get_records(ProvUsage)} & set(entities)
    last_best = generated & used
    assert len(last_best) == 1, (generated, used)
