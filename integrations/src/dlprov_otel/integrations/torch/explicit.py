"""What a script says itself: ``log_epoch``, ``log_test`` and ``log_params`` (see :mod:`.api`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from dlprov_otel.api import DataSet, Task

from .._shared.rows import timestamp
from .passes import Pass


class ExplicitCalls:
    """The explicit-API part of :class:`~.recorder.Recorder` (a mixin: it uses the
    recorder's state and emitters)."""

    lock: threading.RLock
    epoch: int
    primary: bool
    train_task: Task | None
    pending_epoch: dict[str, Any] | None
    pending_test: dict[str, Any] | None
    pending_logged: bool
    logs_epochs: bool
    params: dict[str, Any]
    num_epochs: int | None
    _cur: Pass
    _orphan: Pass
    _orphan_t0: float
    _stack: list[Pass]
    _idle_flushed: bool

    def flush_pending(self) -> None:
        raise NotImplementedError

    def emit_epoch(self, row: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def emit_test(self, row: Mapping[str, Any]) -> None:
        raise NotImplementedError

    # -- the explicit API (log_epoch, log_test, log_params) ---------------------------------------
    def log_epoch(self, epoch: int | None, values: Mapping[str, Any]) -> None:
        """Metrics for the epoch row in progress, or an ``otrainmodel`` row of their own."""
        with self.lock:
            self.logs_epochs = True  # the watcher now waits for this call before an epoch's row goes
            if self.pending_epoch is not None:
                self.pending_epoch.update(values)
                self.pending_logged = True
                return
            if self._cur is not self._orphan:
                self._cur.extra.update(values)
                return
            cur = self._orphan
            if self._idle_flushed and not cur.steps:  # the row went out before this late call
                late = {"timestamp": timestamp(), "elapsed_time": None, "loss": None, "accuracy": None,
                        "val_loss": None, "val_accuracy": None,
                        "epoch": max(self.epoch - 1, 0) if epoch is None else epoch}
                self.emit_epoch({**late, **values})
                return
            row: dict[str, Any] = {
                "timestamp": timestamp(),
                "elapsed_time": time.perf_counter() - self._orphan_t0,
                "loss": cur.mean_loss(),
                "accuracy": None,
                "val_loss": None,
                "val_accuracy": None,
                "epoch": self.epoch if epoch is None else epoch,
                "steps": cur.steps,
            }
            row.update(values)
            self.flush_pending()
            self.emit_epoch(row)
            self.epoch = (self.epoch if epoch is None else epoch) + 1
            self._orphan = Pass()
            self._orphan_t0 = time.perf_counter()
            if not self._stack:
                self._cur = self._orphan

    def log_test(self, values: Mapping[str, Any]) -> None:
        """Metrics for the test just detected, or a ``testmodel`` task of their own."""
        with self.lock:
            if self.pending_test is not None:
                self.pending_test.update(values)
                return
            self.flush_pending()
            row = {"loss": None, "accuracy": None}
            orphan = self._orphan
            if orphan.eval_calls:
                row.update(orphan.eval_metrics())
                orphan.eval_losses, orphan.eval_partial = [], None
                orphan.eval_calls, orphan.correct, orphan.total = 0, None, 0
            row.update(values)
            self.emit_test(row)

    def log_params(self, values: Mapping[str, Any]) -> None:
        """Hyperparameters for the next training's ``itrainmodel`` row, or one more row."""
        with self.lock:
            if "num_epochs" in values:
                self.num_epochs = int(values["num_epochs"])
            if self.train_task is None:
                self.params.update(values)
            elif self.primary:
                row = {"optimizer_name": None, "learning_rate": None, "num_epochs": None, "num_layers": None}
                self.train_task.add_dataset(DataSet("itrainmodel", [{**row, **values}]))
                self.train_task.save()


__all__ = ["ExplicitCalls"]
