"""Zero-code recording with ``opentelemetry-instrument``, the configurator, and ``dlprov demo``."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dlprov_otel
from dlprov_otel.store import open_store

pytestmark = pytest.mark.keras

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _query(store: Any, sql: str, *params: Any) -> list[dict[str, Any]]:
    return store.query(sql, list(params)).as_dicts()


PLAIN_SCRIPT = """
    import json, sys
    import tensorflow as tf
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = (digits.data / 16.0).astype("float32"), digits.target
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([
        tf.keras.Input((64,)),
        tf.keras.layers.Dense(16, activation="relu"),
        tf.keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x[:1500], y[:1500], epochs=2, batch_size=64, validation_split=0.2, verbose=0)
    model.save(sys.argv[2])
    test = model.evaluate(x[1500:], y[1500:], verbose=0, return_dict=True)
    with open(sys.argv[1], "w") as fh:
        json.dump({"history": history.history, "test": test}, fh)
"""


def test_opentelemetry_instrument_records_an_unmodified_script(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(PLAIN_SCRIPT))
    assert "dlprov" not in script.read_text()
    report, model_file, store_dir = tmp_path / "report.json", tmp_path / "model.keras", tmp_path / "store"
    proc = subprocess.run(
        [str(BIN / "opentelemetry-instrument"), "python", str(script), str(report), str(model_file)],
        env={
            **{k: v for k, v in subprocess_env.items() if not k.startswith(("DLPROV_DATAFLOW", "OTEL_"))},
            "DLPROV_STORE": str(store_dir),
            "TF_CPP_MIN_LOG_LEVEL": "2",
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    reported = json.loads(report.read_text())
    store = open_store(store_dir)
    try:
        (execution,) = _query(store, "SELECT * FROM dataflow_execution")
        assert (execution["dataflow_tag"], execution["status"]) == ("keras", "FINISHED")
        tag = execution["tag"]
        epochs = _query(store, 'SELECT * FROM "keras"."otrainmodel" WHERE execution_tag = ? ORDER BY epoch', tag)
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert [r[key] for r in epochs] == reported["history"][key]
        (hp,) = _query(store, 'SELECT * FROM "keras"."itrainmodel"')
        assert (hp["optimizer_name"], hp["num_epochs"], hp["batch_size"], hp["validation_split"]) == (
            "adam",
            2,
            64,
            0.2,
        )
        (tested,) = _query(store, 'SELECT * FROM "keras"."otestmodel"')
        assert (tested["loss"], tested["accuracy"]) == (reported["test"]["loss"], reported["test"]["accuracy"])
        (saved,) = _query(store, 'SELECT * FROM "keras"."otrainedmodel"')
        assert saved["sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest()
        statuses = {t["dt_tag"]: t["status"] for t in _query(store, "SELECT * FROM task")}
        assert statuses == {"splitdata": "FINISHED", "trainmodel": "FINISHED", "testmodel": "FINISHED"}
        assert [d["tag"] for d in _query(store, "SELECT tag FROM dataflow")] == ["keras"]
    finally:
        store.close()


def test_importing_the_integration_does_not_import_keras(subprocess_env: dict[str, str]) -> None:
    code = (
        "import sys, dlprov_otel, dlprov_otel.distro, dlprov_otel.integrations.keras as k\n"
        "k.KerasInstrumentor().instrument(dataflow='lazy')\n"
        "assert not {'keras', 'tensorflow'} & set(sys.modules), sorted(m for m in sys.modules if 'keras' in m)\n"
        "k.KerasInstrumentor().uninstrument()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=subprocess_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_configurator_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dlprov_otel import tracing
    from dlprov_otel.distro import DLProvConfigurator, DLProvDistro

    dlprov_otel.shutdown()
    monkeypatch.chdir(tmp_path)
    for name in ("DLPROV_STORE", "DLPROV_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # someone else's collector
    DLProvDistro().configure()
    DLProvConfigurator().configure()
    assert tracing._state is None  # nothing asked for DLProv: no store opened at start
    assert not (tmp_path / "dlprov-data").exists()

    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "dlprov")
    DLProvConfigurator().configure()
    try:
        telemetry = tracing._state
        assert telemetry is not None and telemetry.store is not None
        assert telemetry.target == "monetdbe:" + str((tmp_path / "dlprov-data").resolve())
    finally:
        dlprov_otel.shutdown()


def _check_demo(store_dir: Path, out: Path, api: str) -> tuple[Any, dict[str, Any], str]:
    reported = json.loads((out / "keras_history.json").read_text())
    tag = reported["execution"]
    store = open_store(store_dir)
    epochs = _query(store, 'SELECT * FROM "mnist"."otrainmodel" WHERE execution_tag = ? ORDER BY epoch', tag)
    assert [r["epoch"] for r in epochs] == [0, 1]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert [r[key] for r in epochs] == reported["history"][key]
    (tested,) = _query(store, 'SELECT * FROM "mnist"."otestmodel" WHERE execution_tag = ?', tag)
    assert (tested["loss"], tested["accuracy"]) == (reported["test"]["loss"], reported["test"]["accuracy"])
    (hp,) = _query(store, 'SELECT * FROM "mnist"."itrainmodel" WHERE execution_tag = ?', tag)
    assert (hp["num_epochs"], hp["num_layers"], hp["learning_rate"]) == (2, 4, float(np.float32(0.001)))
    (execution,) = _query(store, "SELECT * FROM dataflow_execution WHERE tag = ?", tag)
    assert execution["status"] == "FINISHED"
    assert [d["tag"] for d in _query(store, "SELECT tag FROM dataflow")] == ["mnist"]
    for ext in ("json", "provn", "png"):
        assert list(out.glob(f"*.{ext}")), f"no PROV .{ext} file in {out}"
    return store, reported, tag


def test_demo_auto_records_what_keras_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dlprov_otel.integrations.demo import run_demo

    out = tmp_path / "out"
    assert run_demo(epochs=2, store=tmp_path / "store", out=out) == 0
    printed = capsys.readouterr().out
    for sql in ("SELECT * FROM dataflow;", 'SET SCHEMA "mnist"; SELECT * FROM otestmodel;'):
        assert "sql> " + sql in printed
    on = f"--store {tmp_path / 'store'}"
    assert f"dlprov ui {on}" in printed and f"dlprov lineage {out / 'trained_model.keras'} {on}" in printed
    store, _, tag = _check_demo(tmp_path / "store", out, "auto")
    assert re.fullmatch(r"mnist-\d{8}-\d{6}-[0-9a-f]{4}", tag), tag  # a default tag people can type
    try:
        (hp,) = _query(store, 'SELECT * FROM "mnist"."itrainmodel" WHERE execution_tag = ?', tag)
        assert (hp["optimizer_name"], hp["batch_size"]) == ("adam", 32)
        order = [
            t["dt_tag"]
            for t in _query(store, "SELECT dt_tag FROM task WHERE execution_tag = ? ORDER BY start_time", tag)
        ]
        assert order == ["loaddata", "splitdata", "splitdata", "trainmodel", "testmodel"]
        (saved,) = _query(store, 'SELECT * FROM "mnist"."otrainedmodel" WHERE execution_tag = ?', tag)
        assert saved["sha256"] == hashlib.sha256((out / "trained_model.keras").read_bytes()).hexdigest()
        (source,) = _query(store, 'SELECT * FROM "mnist"."iinputdataset" WHERE execution_tag = ?', tag)
        assert source["dataset_source"] == "sklearn.datasets.load_digits"
    finally:
        store.close()


def test_demo_dfanalyzer_api_on_an_npz_file(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    from dlprov_otel.integrations.demo import run_demo

    digits = load_digits()
    images = (digits.images * 15).astype("uint8")  # pixels 0..240, as MNIST ships them
    data = tmp_path / "digits.npz"
    np.savez(
        data, x_train=images[:1400], y_train=digits.target[:1400], x_test=images[1400:], y_test=digits.target[1400:]
    )
    out = tmp_path / "out"
    assert run_demo(epochs=2, store=tmp_path / "store", out=out, data=str(data), api="dfanalyzer") == 0
    store, _, tag = _check_demo(tmp_path / "store", out, "dfanalyzer")
    try:
        tasks = _query(store, "SELECT id, dt_tag, status FROM task WHERE execution_tag = ? ORDER BY start_time", tag)
        assert [(t["id"], t["dt_tag"], t["status"]) for t in tasks] == [
            ("1", "loaddata", "FINISHED"),
            ("2", "splitdata", "FINISHED"),
            ("3", "trainmodel", "FINISHED"),
            ("4", "testmodel", "FINISHED"),
        ]
        (loaded,) = _query(store, 'SELECT * FROM "mnist"."oloaddata" WHERE execution_tag = ?', tag)
        assert loaded["dataset_dir"] == str(data)
        (config,) = _query(store, 'SELECT * FROM "mnist"."isplitconfig" WHERE execution_tag = ?', tag)
        assert config["ratio"] == pytest.approx(397 / 1797)
        (saved,) = _query(store, 'SELECT * FROM "mnist"."otrainedmodel" WHERE execution_tag = ?', tag)
        assert (saved["model_name"], saved["model_dir"]) == ("trained_model", str(out / "trained_model.keras"))
        (hp,) = _query(store, 'SELECT * FROM "mnist"."itrainmodel" WHERE execution_tag = ?', tag)
        assert hp["optimizer_name"] == "adam"  # the seed's opt.get_config()["name"]
    finally:
        store.close()


def test_demo_rejects_a_bad_data_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dlprov_otel.cli import main

    assert main(["demo", "--data", str(tmp_path / "missing.npz"), "--store", str(tmp_path / "s")]) == 1
    assert "missing.npz: no such file" in capsys.readouterr().err
    partial = tmp_path / "partial.npz"
    np.savez(partial, x_train=np.zeros((2, 2)))
    assert main(["demo", "--data", str(partial), "--store", str(tmp_path / "s")]) == 1
    assert "lacks y_train, x_test, y_test" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()  # refused before anything started
