"""Test helper: record the seed's DL life cycle (DLProv's MNIST example) into a store.

``record_seed_flow(store, epochs=2)`` replays, through the DfAnalyzer API, the flow whose
PROV document is ``reference/dlprov-mnist-example``: loaddata -> splitdata -> trainmodel
(one ``otrainmodel`` element per epoch, then ``otrainedmodel``) -> testmodel, each task
depending on the previous ones. The values are deterministic functions of the epoch, so
tests can recompute what the store must hold (see :func:`epoch_loss`).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dlprov_otel
from dlprov_otel import Dataflow, DataSet, Element, Task, tracing
from dlprov_otel.store import describe, normalize_url

DATAFLOW = "mnist"
TEST_LOSS = 0.102749
TEST_ACCURACY = 0.9689


def epoch_loss(epoch: int) -> float:
    """Training loss recorded for ``epoch`` (0-based)."""
    return round(0.302921 / (epoch + 1), 6)


def epoch_accuracy(epoch: int) -> float:
    return round(1.0 - 0.0878 / (epoch + 1), 6)


def _ensure_pipeline(store_path: str | os.PathLike[str]) -> None:
    # Re-configuring onto the store already in use would open it a second time (and leave
    # that reference open at shutdown), so only configure when the target differs.
    state = tracing._state
    wanted = describe(normalize_url(store_path))
    if state is None or state.store is None or state.store.url != wanted:
        dlprov_otel.configure(store=store_path)


def record_seed_flow(
    store_path: str | os.PathLike[str],
    epochs: int = 2,
    exec_tag: str | None = None,
    *,
    scientist: str = "Débora Pina",
    dataflow: str = DATAFLOW,
) -> str:
    """Record one execution of the seed's flow into ``store_path`` and flush; return its tag.

    The pipeline stays configured (call ``dlprov_otel.shutdown()`` when done); calling this
    again with the same store adds another execution.
    """
    _ensure_pipeline(store_path)
    saved = os.environ.get("DLPROV_SCIENTIST")
    os.environ["DLPROV_SCIENTIST"] = scientist  # read when the execution starts
    try:
        tag = _record(dataflow, epochs, exec_tag)
    finally:
        if saved is None:
            os.environ.pop("DLPROV_SCIENTIST", None)
        else:
            os.environ["DLPROV_SCIENTIST"] = saved
    if not dlprov_otel.flush():
        raise RuntimeError("provenance was not flushed to the store")
    return tag


def _record(dataflow: str, epochs: int, exec_tag: str | None) -> str:
    tag = exec_tag or f"{dataflow}-{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S.%f}"
    df = Dataflow(dataflow, predefined=True)
    df.save()
    workdir = Path("/tmp/dlprov-seed") / dataflow
    with dlprov_otel.execution(tag, dataflow=df):
        t1 = Task(1, df, tag, "loaddata")
        t1.add_dataset(DataSet("iinputdataset", [Element(["mnist", "tf.keras.datasets.mnist"])]))
        t1.begin()
        t1.add_dataset(DataSet("oloaddata", [Element([str(workdir)])]))
        t1.end()

        t2 = Task(2, df, tag, "splitdata", dependency=t1)
        t2.add_dataset(DataSet("isplitconfig", [Element([60])]))
        t2.begin()
        t2.add_dataset(DataSet("otrainset", [Element([str(workdir / "train.npz")])]))
        t2.add_dataset(DataSet("otestset", [Element([str(workdir / "test.npz")])]))
        t2.end()

        t3 = Task(3, df, tag, "trainmodel", dependency=t2)
        t3.add_dataset(DataSet("itrainmodel", [Element(["adam", 0.001, epochs, 4])]))
        t3.begin()
        for epoch in range(epochs):
            when = dt.datetime(2024, 10, 21, 16, 33, 46) + dt.timedelta(seconds=10 * epoch)
            row = [
                when.strftime("%Y-%m-%d %H:%M:%S"),
                10.0 + epoch / 10,
                epoch_loss(epoch),
                epoch_accuracy(epoch),
                float("nan"),  # no validation split: NaN must be omitted, not a sentinel
                float("nan"),
                epoch,
            ]
            t3.add_dataset(DataSet("otrainmodel", [Element(row)]))
            t3.save()
        t3.add_dataset(
            DataSet("otrainedmodel", [Element(["trained_model", str(workdir / "trainedmodel.keras")])])
        )
        t3.end()

        t4 = Task(4, df, tag, "testmodel", dependency=[t2, t3])
        t4.begin()
        t4.add_dataset(DataSet("otestmodel", [Element([TEST_LOSS, TEST_ACCURACY])]))
        t4.end()
    return tag
