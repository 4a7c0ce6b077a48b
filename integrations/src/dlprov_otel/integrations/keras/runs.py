"""Run state: one ``fit`` (:class:`TrainRun`) or ``evaluate`` (:class:`EvalRun`) and the
tasks it records; which models are training and which task trained each model.

Both registries hold models weakly: they shrink as models are garbage-collected.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from dlprov_otel.api import Dataflow, DataSet, Task

from .. import lineage
from .._shared.context import Settings, resolve
from .._shared.rows import timestamp
from .._shared.silence import training_seen
from ..lineage.tasks import record_adaptation
from .facts import (
    DECLARED_EPOCH,
    hyperparameters,
    learning_rates,
    metric_row,
    pick_accuracy,
    result_metrics,
    schedule_name,
)

DEFAULT_DATAFLOW = "keras"


class _State:
    """Whether the instrumentor is on, and with which settings."""

    settings: Settings | None = None

    @property
    def enabled(self) -> bool:
        return self.settings is not None


state = _State()
last_train: weakref.WeakKeyDictionary[Any, Task] = weakref.WeakKeyDictionary()  # model -> task
running: weakref.WeakKeyDictionary[Any, TrainRun] = weakref.WeakKeyDictionary()  # fit in progress
weights_epoch: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()  # model -> epoch of its weights


def context(dataflow: str | None = None, execution: str | None = None) -> tuple[Dataflow, str]:
    """Dataflow and execution of a Keras task: the arguments, else the instrumentor's."""
    s = state.settings
    if s is not None:
        dataflow = dataflow or s.dataflow
        execution = execution or s.execution
    return resolve(dataflow, execution, default_dataflow=DEFAULT_DATAFLOW)


class TrainRun:
    """One ``fit``: its ``trainmodel`` task, learning-rate tracking and per-epoch rows."""

    def __init__(
        self,
        model: Any,
        task: Task,
        *,
        epochs: Any,
        batch_size: Any,
        fit_info: Mapping[str, Any] | None = None,
        callbacks: list[Any] | None = None,
    ) -> None:
        self.model = model
        self.task = task
        self.epochs = epochs
        self.batch_size = batch_size
        self.fit_info = dict(fit_info or {})
        self.callbacks = list(callbacks or [])
        self.rates = learning_rates(model)
        self.initial_rates = dict(self.rates)
        self.schedule = schedule_name(model)
        self.adaptations = 0
        self.inputs_recorded = False
        self.epoch_start = time.perf_counter()
        self.epoch_rate: float | None = None
        self.last_epoch: int | None = None  # the last epoch whose row was recorded
        self.current_epoch: int | None = None  # the epoch in progress (or just ended)
        self.deferred: list[tuple[str, float, float, int, str]] = []  # adaptations after the row
        self.ended = False
        self.cleanup: Callable[[], Any] | None = None  # undoes what fit's wrapper changed
        running[model] = self
        training_seen("tensorflow")

    @classmethod
    def standalone(cls, model: Any, params: Mapping[str, Any], dataflow: str | None, execution: str | None) -> TrainRun:
        """A run started by a hand-added :class:`DLProvCallback` (no instrumentor)."""
        df, exec_tag = context(dataflow, execution)
        last = lineage.last_data_task(exec_tag)
        task = lineage.new_task(df, exec_tag, "trainmodel", [last] if last else [])
        task.begin()
        return cls(model, task, epochs=(params or {}).get("epochs"), batch_size=None)

    @property
    def first_rate(self) -> float | None:
        return next(iter(self.rates.values()), None)

    def record_inputs(self) -> None:
        """The ``itrainmodel`` element, once (at train begin, when the model is built)."""
        if self.inputs_recorded:
            return
        self.inputs_recorded = True
        row = hyperparameters(self.model, next(iter(self.initial_rates.values()), None), self.epochs, self.batch_size)
        for key, value in self.fit_info.items():
            row.setdefault(key, value)
        self.task.add_dataset(DataSet("itrainmodel", [row]))
        self.task.save()

    # learning rate ------------------------------------------------------------------------
    def check_rate(self, epoch: int, trigger: str, *, defer: bool = False) -> None:
        """Record an adaptation for each optimizer whose rate changed since the last check.

        ``epoch`` is the epoch whose end triggered the change (the convention of every
        integration); a negative one (a rate set before the first epoch) is no adaptation.
        ``defer``: the epoch's row is not recorded yet; the adaptation follows it.
        """
        now = learning_rates(self.model)
        for key, new in now.items():
            old = self.rates.get(key)
            if old is not None and new != old and epoch >= 0:
                if defer:
                    self.deferred.append((key, old, new, epoch, trigger))
                else:
                    self._adaptation(key, old, new, epoch, trigger)
        self.rates = now

    def flush_adaptations(self) -> None:
        deferred, self.deferred = self.deferred, []
        for args in deferred:
            self._adaptation(*args)

    def _adaptation(self, optimizer: str, old: float, new: float, epoch: int, trigger: str) -> None:
        self.adaptations += 1
        extra = {"optimizer": optimizer} if optimizer else None
        record_adaptation(self.task, self.adaptations, old, new, epoch, trigger, extra)

    # epochs -------------------------------------------------------------------------------
    def epoch_started(self, epoch: int) -> None:
        self.epoch_start = time.perf_counter()
        self.current_epoch = epoch

    def begin_label(self, epoch: int) -> int:
        """The label of a change seen at ``on_epoch_begin(epoch)``: the epoch before (whose
        end triggered it); -1 (no adaptation) before the first epoch of this fit."""
        first = self.fit_info.get("initial_epoch", 0) or 0
        return epoch - 1 if epoch > first else -1

    def snapshot_rate(self) -> None:
        """The rate this epoch trains with (read after every callback's epoch begin)."""
        rates = learning_rates(self.model)
        self.epoch_rate = next(iter(rates.values()), None)

    def epoch_ended(self, epoch: int, logs: Mapping[str, Any] | None) -> None:
        elapsed = time.perf_counter() - self.epoch_start
        logs = dict(logs or {})
        row: dict[str, Any] = {
            "timestamp": timestamp(),
            "elapsed_time": elapsed,
            "loss": logs.get("loss"),
            "accuracy": pick_accuracy(logs, ""),
            "val_loss": logs.get("val_loss"),
            "val_accuracy": pick_accuracy(logs, "val_"),
            "epoch": epoch,
        }
        row.update(metric_row(logs, DECLARED_EPOCH, ("loss", "accuracy", "val_loss", "val_accuracy")))
        row.setdefault("learning_rate", self.epoch_rate)
        if getattr(self.model, "stop_training", False):
            row.update(self._early_stopping(epoch))
        self.last_epoch = epoch
        self.task.add_dataset(DataSet("otrainmodel", [row]))
        self.task.save()
        self.flush_adaptations()

    def _early_stopping(self, epoch: int) -> dict[str, Any]:
        from keras.callbacks import EarlyStopping

        for cb in self.callbacks:
            if isinstance(cb, EarlyStopping) and cb.stopped_epoch == epoch:
                return {
                    "stopped_epoch": cb.stopped_epoch,
                    "best_epoch": getattr(cb, "best_epoch", None),
                    "restore_best_weights": bool(cb.restore_best_weights),
                    "early_stopping_monitor": cb.monitor,
                }
        return {}

    def _weights_epoch(self) -> int | None:
        """The epoch whose weights the model holds after fit (EarlyStopping may restore the best)."""
        from keras.callbacks import EarlyStopping

        for cb in self.callbacks:
            if isinstance(cb, EarlyStopping) and cb.restore_best_weights and cb.stopped_epoch:
                best = getattr(cb, "best_epoch", None)
                if best is not None:
                    return int(best)
        return self.last_epoch

    def checkpoint_epoch(self) -> int | None:
        """The epoch whose weights a save during fit holds: the one in progress or just ended."""
        return self.current_epoch

    def finish(self, error: BaseException | None) -> None:
        if self.ended:
            return
        self.ended = True
        running.pop(self.model, None)
        last_train[self.model] = self.task
        held = self._weights_epoch()
        if held is not None:
            weights_epoch[self.model] = held
        else:
            weights_epoch.pop(self.model, None)
        try:
            self.record_inputs()
            self.flush_adaptations()
        finally:
            self.task.end(error=error)


class EvalRun:
    """One ``evaluate``: a ``testmodel`` task and its ``otestmodel`` element."""

    def __init__(
        self,
        model: Any,
        x: Any,
        y: Any,
        dataflow: str | None = None,
        execution: str | None = None,
        model_input: Mapping[str, Any] | None = None,
    ) -> None:
        df, exec_tag = context(dataflow, execution)
        rows = lineage.describe(x, "x") + lineage.describe(y, "y")
        deps: list[Task] = []
        train = last_train.get(model)
        if train is not None and train.exec_tag == exec_tag:
            deps.append(train)
        deps += [t for t in lineage.producers(exec_tag, rows) if t not in deps]
        if not deps:
            last = lineage.last_data_task(exec_tag)
            deps = [last] if last else []
        self.task = lineage.new_task(df, exec_tag, "testmodel", deps)
        training_seen("tensorflow")  # an evaluation is recorded: not silent
        if model_input is not None:  # the model file it was loaded from
            self.task.add_dataset(DataSet("otrainedmodel", [dict(model_input)]))
        self.logs: dict[str, Any] | None = None
        self.ended = False
        self.task.begin()
        try:
            inputs = [dict(r, subset="test") for r in rows if not lineage.was_output(exec_tag, "otestset", r)]
            lineage.emit(self.task, "otestset", inputs, "testset")
        except BaseException:
            self.task.end()
            raise

    def finish(self, error: BaseException | None, result: Any = None) -> None:
        if self.ended:
            return
        self.ended = True
        try:
            if error is None:
                metrics = self.logs if self.logs is not None else result_metrics(result)
                row = {"loss": metrics.get("loss"), "accuracy": pick_accuracy(metrics, "")}
                row.update(metric_row(metrics, ("loss", "accuracy"), ("loss", "accuracy")))
                self.task.add_dataset(DataSet("otestmodel", [row]))
        finally:
            self.task.end(error=error)


__all__ = ["EvalRun", "TrainRun", "context", "last_train", "running", "state", "weights_epoch"]
