"""``dlprov demo``: the seed's MNIST example, end to end, in about a minute.

Load the data (scikit-learn's 8x8 digits, or a real MNIST ``.npz``), split it, train a small
Keras network with one ``otrainmodel`` row per epoch, save the model, test it; then print
the seed's SQL session and write the W3C PROV files.

``--api auto`` (the default) records with the ``KerasInstrumentor``: the training code is
plain Keras. ``--api dfanalyzer`` records through the DfAnalyzer API exactly as the seed does
(``Task``/``DataSet``/``Element``, ``t.save()`` per epoch, ``t.end()`` after the last).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import dlprov_otel
from dlprov_otel.errors import DLProvError
from dlprov_otel.store.schema import example_queries
from dlprov_otel.tracing import default_execution_tag

from .keras import KerasInstrumentor
from .lineage import load_data, split_data

DATAFLOW = "mnist"
SPLIT_RATIO = 0.25  # fraction of the digits held out for the test
VALIDATION_SPLIT = 0.1
BATCH_SIZE = 32
LEARNING_RATE = 0.001
# the seed's session: the catalog's dataflows and executions, then hyperparameters, epochs, test
SEED_QUERIES = tuple(tuple(statements) for _, statements in example_queries(DATAFLOW)[:5])


# --- data and model (plain code, as in a user's script) --------------------------------------
def _read_npz(path: str) -> dict[str, Any]:
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise DLProvError(f"--data {path}: no such file")
    try:
        with np.load(p, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as exc:
        raise DLProvError(f"--data {path}: not a readable .npz file ({exc})") from exc
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in arrays]
    if missing:
        raise DLProvError(f"--data {path}: lacks {', '.join(missing)} (has {', '.join(sorted(arrays)) or 'nothing'})")
    for k in ("x_train", "x_test"):
        if arrays[k].dtype.kind in "ui":  # 0..255 pixels, as keras.datasets.mnist ships them
            arrays[k] = (arrays[k] / 255.0).astype("float32")
    return arrays


def _read_digits() -> tuple[Any, Any]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images / 16.0).astype("float32"), digits.target.astype("int64")


def _split(x: Any, y: Any, ratio: float) -> tuple[Any, Any, Any, Any]:
    """A stratified, seeded split: ``ratio`` of the samples go to the test set."""
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=ratio, random_state=0, stratify=y)
    return x_train, y_train, x_test, y_test


def _model(input_shape: tuple[int, ...], classes: int) -> Any:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(classes, activation="softmax"),
        ],
        name="mnist_mlp",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE, name="adam"),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _classes(*ys: Any) -> int:
    return int(max(int(y.max()) for y in ys)) + 1


# --- the two ways to record ------------------------------------------------------------------
def _run_auto(epochs: int, data: str | None, out: Path) -> dict[str, Any]:
    """Plain Keras; the instrumentor records it. The data steps are marked with helpers."""
    if data is None:
        with load_data("digits", source="sklearn.datasets.load_digits") as step:
            x, y = _read_digits()
            step.output(x=x, y=y)
        with split_data(SPLIT_RATIO, inputs={"x": x, "y": y}, method="stratified train_test_split") as step:
            x_train, y_train, x_test, y_test = _split(x, y, SPLIT_RATIO)
            step.train(x=x_train, y=y_train)
            step.test(x=x_test, y=y_test)
    else:
        with load_data(Path(data).stem, source=os.path.abspath(data), dataset_dir=os.path.abspath(data)) as step:
            arrays = _read_npz(data)
            step.output(**arrays)
        x_train, y_train, x_test, y_test = (arrays[k] for k in ("x_train", "y_train", "x_test", "y_test"))
        ratio = len(x_test) / (len(x_train) + len(x_test))
        with split_data(ratio, inputs=arrays, method=f"given by {Path(data).name}") as step:
            step.train(x=x_train, y=y_train)
            step.test(x=x_test, y=y_test)

    model = _model(x_train.shape[1:], _classes(y_train, y_test))
    history = model.fit(
        x_train, y_train, epochs=epochs, batch_size=BATCH_SIZE, validation_split=VALIDATION_SPLIT, verbose=2
    )
    model.save(out / "trained_model.keras")
    test = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    return {"history": history.history, "test": test}


def _run_dfanalyzer(epochs: int, data: str | None, out: Path, exec_tag: str) -> dict[str, Any]:
    """The seed's code: the DfAnalyzer API by hand, one ``t3.save()`` per epoch."""
    import keras
    import numpy as np

    from dlprov_otel import Dataflow, DataSet, Element, Task

    df = Dataflow(DATAFLOW, predefined=True)
    df.save()
    data_dir = out / "data"
    data_dir.mkdir(parents=True, exist_ok=True)

    t1 = Task(1, DATAFLOW, exec_tag, "LoadData")
    if data is None:
        t1.add_dataset(DataSet("iInputDataset", [Element(["digits", "sklearn.datasets.load_digits"])]))
        t1.begin()
        x, y = _read_digits()
        dataset_dir = data_dir / "digits.npz"
        np.savez(dataset_dir, x=x, y=y)
    else:
        t1.add_dataset(DataSet("iInputDataset", [Element([Path(data).stem, os.path.abspath(data)])]))
        t1.begin()
        arrays = _read_npz(data)
        dataset_dir = Path(os.path.abspath(data))
    t1.add_dataset(DataSet("oLoadData", [Element([str(dataset_dir)])]))
    t1.end()

    t2 = Task(2, DATAFLOW, exec_tag, "SplitData", dependency=t1)
    if data is None:
        ratio = SPLIT_RATIO
        x_train, y_train, x_test, y_test = _split(x, y, ratio)
    else:
        x_train, y_train, x_test, y_test = (arrays[k] for k in ("x_train", "y_train", "x_test", "y_test"))
        ratio = len(x_test) / (len(x_train) + len(x_test))
    t2.add_dataset(DataSet("iSplitConfig", [Element([ratio])]))
    t2.begin()
    np.savez(data_dir / "train.npz", x=x_train, y=y_train)
    np.savez(data_dir / "test.npz", x=x_test, y=y_test)
    t2.add_dataset(DataSet("oTrainSet", [Element([str(data_dir / "train.npz")])]))
    t2.add_dataset(DataSet("oTestSet", [Element([str(data_dir / "test.npz")])]))
    t2.end()

    model = _model(x_train.shape[1:], _classes(y_train, y_test))
    opt = model.optimizer
    t3 = Task(3, DATAFLOW, exec_tag, "TrainModel", dependency=t2)
    t3.add_dataset(
        DataSet(
            "iTrainModel",
            [Element([opt.get_config()["name"], opt.get_config()["learning_rate"], epochs, len(model.layers)])],
        )
    )
    t3.begin()
    model_path = out / "trained_model.keras"

    class Provenance(keras.callbacks.Callback):
        """The seed's callback: a row per epoch, the trained model after the last."""

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.start = time.time()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            logs = logs or {}
            elapsed_time = time.time() - self.start
            row = [
                dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
                elapsed_time,
                logs.get("loss"),
                logs.get("accuracy"),
                logs.get("val_loss"),
                logs.get("val_accuracy"),
                epoch,
            ]
            t3.add_dataset(DataSet("oTrainModel", [Element(row)]))
            if epoch == epochs - 1:
                self.model.save(model_path)
                t3.add_dataset(DataSet("oTrainedModel", [Element(["trained_model", str(model_path)])]))
                t3.end()
            else:
                t3.save()

    history = model.fit(
        x_train,
        y_train,
        epochs=epochs,
        batch_size=BATCH_SIZE,
        validation_split=VALIDATION_SPLIT,
        verbose=2,
        callbacks=[Provenance()],
    )

    t4 = Task(4, DATAFLOW, exec_tag, "TestModel", dependency=t3)
    t4.begin()
    test = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    t4.add_dataset(DataSet("oTestModel", [Element([test["loss"], test["accuracy"]])]))
    t4.end()
    return {"history": history.history, "test": test}


# --- output --------------------------------------------------------------------------------
def _show(statements: tuple[str, ...], store: Any, out: Any = None) -> None:
    """Print a query and its result: a table, or one record per block when it is wide."""
    out = out or sys.stdout
    out.write("\nsql> " + "; ".join(statements) + ";\n")
    result = store.run_script(list(statements))
    if len(result.columns) <= 8:
        from dlprov_otel.cli import print_result

        print_result(result.columns, result.rows, out=out)
        return
    width = max(len(c) for c in result.columns)
    for n, row in enumerate(result.rows, 1):
        out.write(f"-[ RECORD {n} ]" + "-" * max(0, width - 8) + "\n")
        for column, value in zip(result.columns, row, strict=False):
            text = "NULL" if value is None else str(value)
            if len(text) > 80:
                text = text[:77] + "..."
            out.write(f"{column.ljust(width)} | {text}\n")
    out.write(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})\n")


def run_demo(
    epochs: int = 2,
    store: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] = "dlprov-out",
    data: str | None = None,
    api: str = "auto",
) -> int:
    """Run the demo; returns the exit status. See the module docstring."""
    if epochs < 1:
        raise DLProvError(f"--epochs must be at least 1, got {epochs}")
    if api not in ("auto", "dfanalyzer"):
        raise DLProvError(f"--api must be auto or dfanalyzer, got {api!r}")
    if data is not None:
        _read_npz(data)  # a bad file fails before TensorFlow loads
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter

    from dlprov_otel.store import default_store_url, readmodel  # imports the store's modules

    started = time.monotonic()
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    telemetry = dlprov_otel.configure(store=os.fspath(store) if store is not None else default_store_url())
    exec_tag = default_execution_tag(DATAFLOW)
    instrumentor = KerasInstrumentor()
    was_on = instrumentor.is_instrumented_by_opentelemetry
    previous = instrumentor.settings.as_kwargs() if was_on and instrumentor.settings else {}
    print(f"DLProv demo: execution {exec_tag!r}, store {telemetry.target}, api {api}")
    try:
        if api == "auto" and not was_on:
            instrumentor.instrument(dataflow=DATAFLOW)
        elif api == "dfanalyzer" and was_on:
            instrumentor.uninstrument()  # the DfAnalyzer calls are the only record
        with dlprov_otel.execution(exec_tag, dataflow=DATAFLOW):
            if api == "auto":
                reported = _run_auto(epochs, data, out_dir)
            else:
                reported = _run_dfanalyzer(epochs, data, out_dir, exec_tag)
    finally:
        if api == "auto" and not was_on:
            instrumentor.uninstrument()
        elif api == "dfanalyzer" and was_on:
            instrumentor.instrument(skip_dep_check=True, **previous)
    # what Keras itself reported, to hold against the store
    (out_dir / "keras_history.json").write_text(json.dumps({"execution": exec_tag, **reported}, indent=2))
    if not dlprov_otel.flush(60):
        print("DLProv: some provenance is not stored yet (see `dlprov replay`)", file=sys.stderr)
    st = telemetry.store
    for statements in SEED_QUERIES:
        _show(statements, st)
    counts = readmodel.element_counts(st, exec_tag)
    print("\nelements of this execution: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items()) if v))
    try:
        from dlprov_otel.prov import export
    except ImportError as exc:
        print(f"\nPROV export skipped: dlprov_otel.prov is not available ({exc})")
    else:
        paths = export(st, execution=exec_tag, dataflow=DATAFLOW, formats=("json", "provn", "png"), out_dir=out_dir)
        print("\nW3C PROV: " + ", ".join(str(p) for p in paths))
    dlprov_otel.shutdown()
    print(f"done in {time.monotonic() - started:.1f} s")
    on = f" --store {shlex.quote(os.fspath(store))}" if store is not None else ""
    print(
        "\nnext steps:\n"
        f"  dlprov ui{on}    # the dashboard: runs, epochs, lineage, SQL\n"
        f"  dlprov lineage {shlex.quote(str(out_dir / 'trained_model.keras'))}{on}    # where this model came from\n"
        f"  dlprov executions{on}    # this run is 'latest': dlprov prov export --execution latest{on}"
    )
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``dlprov demo``."""
    p = subparsers.add_parser(
        "demo",
        help="train a small Keras model with provenance, print the seed's SQL session, write PROV files",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("--epochs", type=_positive_int, default=2, help="epochs to train (default 2)")
    p.add_argument("--store", help="store path or URL (default: $DLPROV_STORE or ./dlprov-data)")
    p.add_argument("--out", default="dlprov-out", help="folder for the model and PROV files (default dlprov-out)")
    p.add_argument(
        "--data", metavar="FILE.npz", help="x_train, y_train, x_test, y_test (e.g. real MNIST); default: sklearn digits"
    )
    p.add_argument(
        "--api",
        choices=("auto", "dfanalyzer"),
        default="auto",
        help="auto: KerasInstrumentor, no provenance code (default); dfanalyzer: the seed's Task/DataSet calls",
    )
    p.set_defaults(func=lambda a: run_demo(a.epochs, a.store, a.out, a.data, a.api))


__all__ = ["add_commands", "run_demo"]
