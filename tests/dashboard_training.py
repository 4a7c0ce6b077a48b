"""A real, small training recorded with the DfAnalyzer API, one epoch at a time.

Softmax regression on scikit-learn's 8x8 digits, trained with mini-batch SGD in numpy: real
loss, accuracy, validation and test values, fast enough to drive the dashboard tests without
paying TensorFlow's start-up. The calls are the seed's: ``Task``, ``DataSet``, ``Element``,
``t.save()`` per epoch; a learning-rate step is recorded as an ``Adaptation`` task.

As a script (for a child process)::

    python -m tests.dashboard_training (--endpoint URL | --store PATH) [--epochs N] [--kill]

``--kill`` sends the first epoch, waits until it is delivered, then SIGKILLs itself: a run
left RUNNING whose process is gone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import signal
import time
from collections.abc import Collection
from pathlib import Path

import numpy as np

import dlprov_otel
from dlprov_otel import Dataflow, DataSet, Element, Task
from dlprov_otel.pythonic import default_execution_tag
from dlprov_otel.tracing import execution_for

DATAFLOW = "mnist"


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class DigitsRun:
    """One execution of the ``mnist`` dataflow, advanced by :meth:`start`, :meth:`epoch`, :meth:`finish`."""

    def __init__(self, out_dir: Path, learning_rate: float = 0.5, epochs: int = 4, batch_size: int = 64,
                 adapt_at: int | Collection[int] | None = None, seed: int = 0) -> None:
        self.out_dir = Path(out_dir)
        self.lr = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.adapt_at = {adapt_at} if isinstance(adapt_at, int) else set(adapt_at or ())
        self.rng = np.random.default_rng(seed)
        self.tag = default_execution_tag(DATAFLOW)
        self.done = 0
        self.history: list[dict[str, float]] = []
        self.test: dict[str, float] = {}

    # -- the model -----------------------------------------------------------------------------
    def _loss_acc(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        p = _softmax(x @ self.w + self.b)
        loss = float(-np.log(p[np.arange(len(y)), y] + 1e-12).mean())
        return loss, float((p.argmax(axis=1) == y).mean())

    # -- the life cycle --------------------------------------------------------------------------
    def start(self) -> DigitsRun:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        df = Dataflow(DATAFLOW, predefined=True)
        df.save()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        t1 = Task(1, DATAFLOW, self.tag, "LoadData")
        t1.add_dataset(DataSet("iInputDataset", [Element(["digits", "sklearn.datasets.load_digits"])]))
        t1.begin()
        digits = load_digits()
        x, y = (digits.data / 16.0).astype("float64"), digits.target.astype("int64")
        np.savez(self.out_dir / "digits.npz", x=x, y=y)
        t1.add_dataset(DataSet("oLoadData", [Element([str(self.out_dir / "digits.npz")])]))
        t1.end()

        t2 = Task(2, DATAFLOW, self.tag, "SplitData", dependency=t1)
        t2.add_dataset(DataSet("iSplitConfig", [Element([0.25])]))
        t2.begin()
        x_rest, self.x_test, y_rest, self.y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
        self.x_train, self.x_val, self.y_train, self.y_val = train_test_split(
            x_rest, y_rest, test_size=0.1, random_state=0, stratify=y_rest)
        t2.add_dataset(DataSet("oTrainSet", [Element([str(self.out_dir / "train.npz")])]))
        t2.add_dataset(DataSet("oTestSet", [Element([str(self.out_dir / "test.npz")])]))
        t2.end()

        self.w = self.rng.normal(0, 0.01, (x.shape[1], 10))
        self.b = np.zeros(10)
        self.t3 = Task(3, DATAFLOW, self.tag, "TrainModel", dependency=t2)
        self.t3.add_dataset(DataSet("iTrainModel", [Element(["sgd", self.lr, self.epochs, 1])]))
        self.t3.begin()
        self.next_task = 4
        return self

    def epoch(self) -> dict[str, float]:
        """Train one epoch and record its ``otrainmodel`` row (and an adaptation before it)."""
        if self.done in self.adapt_at:
            self.adapt(self.lr / 2)
        started = time.perf_counter()
        order = self.rng.permutation(len(self.y_train))
        for i in range(0, len(order), self.batch_size):
            idx = order[i : i + self.batch_size]
            xb, yb = self.x_train[idx], self.y_train[idx]
            p = _softmax(xb @ self.w + self.b)
            p[np.arange(len(yb)), yb] -= 1.0
            self.w -= self.lr * xb.T @ p / len(yb)
            self.b -= self.lr * p.mean(axis=0)
        loss, acc = self._loss_acc(self.x_train, self.y_train)
        val_loss, val_acc = self._loss_acc(self.x_val, self.y_val)
        row = {"loss": loss, "accuracy": acc, "val_loss": val_loss, "val_accuracy": val_acc,
               "elapsed_time": time.perf_counter() - started, "epoch": self.done}
        self.t3.add_dataset(DataSet("oTrainModel", [Element([
            dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S"), row["elapsed_time"], loss, acc, val_loss, val_acc,
            self.done])]))
        self.t3.save()
        self.history.append(row)
        self.done += 1
        return row

    def adapt(self, new_lr: float, trigger: str = "StepDecay") -> None:
        """Record an ``Adaptation`` task that sets the learning rate to ``new_lr`` before the next epoch."""
        old, self.lr = self.lr, new_lr
        ta = Task(self.next_task, DATAFLOW, self.tag, "Adaptation", dependency=self.t3)
        ident = f"lr-{self.done}-{self.next_task}"
        self.next_task += 1
        ta.add_dataset(DataSet("iAdaptation", [{"adaptation_id": ident, "trigger": trigger, "epoch": self.done}]))
        ta.begin()
        ta.add_dataset(DataSet("oAdaptation", [{
            "adaptation_id": ident, "new_learning_rate": self.lr, "old_learning_rate": old,
            "epoch": self.done, "trigger": trigger, "timestamp": dt.datetime.now().isoformat(" ", "seconds")}]))
        ta.end()

    def finish(self) -> dict[str, float]:
        """Save the model, test it, end the tasks and the execution; returns the test metrics."""
        path = self.out_dir / f"model-{self.tag[-6:]}.npz"
        np.savez(path, w=self.w, b=self.b)
        self.model_path = path
        self.model_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        model = {"model_name": "softmax_regression", "model_dir": str(path), "size_bytes": path.stat().st_size,
                 "sha256": self.model_sha256}
        self.t3.add_dataset(DataSet("oTrainedModel", [model]))
        self.t3.end()
        t4 = Task(self.next_task, DATAFLOW, self.tag, "TestModel", dependency=self.t3)
        t4.begin()
        loss, acc = self._loss_acc(self.x_test, self.y_test)
        t4.add_dataset(DataSet("oTestModel", [Element([loss, acc])]))
        t4.end()
        execution_for(self.tag, DATAFLOW).end()
        self.test = {"loss": loss, "accuracy": acc}
        return self.test

    def fail(self, error: BaseException) -> None:
        """End the training and the execution as FAILED with ``error``."""
        self.t3.end(error=error)
        execution_for(self.tag, DATAFLOW).end(error=error)

    def run(self) -> DigitsRun:
        """The whole training at once."""
        self.start()
        for _ in range(self.epochs):
            self.epoch()
        self.finish()
        return self


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--endpoint")
    target.add_argument("--store")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--out", default=None)
    p.add_argument("--kill", action="store_true")
    args = p.parse_args(argv)
    out = Path(args.out or os.environ.get("TMPDIR", "/tmp")) / f"digits-{os.getpid()}"
    dlprov_otel.configure(store=args.store, endpoint=args.endpoint, schedule_delay=0.05)
    run = DigitsRun(out, epochs=args.epochs).start()
    if args.kill:
        run.epoch()
        assert dlprov_otel.flush(30), "provenance not delivered"
        print(run.tag, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    for _ in range(args.epochs):
        run.epoch()
    run.finish()
    print(run.tag, flush=True)
    dlprov_otel.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
