"""Zero-code provenance of Keras training (Keras 3, also as ``tf.keras``).

``KerasInstrumentor().instrument()``, or running a plain script with
``opentelemetry-instrument python train.py``, wraps ``Model.fit``, ``Model.evaluate``,
``Model.save`` and ``Model.save_weights``. What they do becomes tasks of the predefined
deep-learning dataflow (tag from ``instrument(dataflow=...)``, the open
``dlprov_otel.execution(...)``, ``DLPROV_DATAFLOW``, else ``keras``):

=========================  ===================================================================
``fit``                    a ``trainmodel`` task. ``itrainmodel``: optimizer_name,
                           learning_rate, num_epochs, num_layers, batch_size, plus
                           optimizer_config (JSON), loss_function, metrics (JSON),
                           param_count, trainable_params, model_architecture (JSON),
                           model_name, keras_version, backend and the fit arguments.
                           ``otrainmodel``: one row per epoch with timestamp, elapsed_time
                           (seconds), loss, accuracy, val_loss, val_accuracy, epoch (Keras's,
                           from 0), learning_rate and every other metric Keras logged (names
                           sanitized). ``otrainset``: the data it was given (shape, dtype,
                           samples, sha256), unless a split task of this run produced them
``validation_split``       a ``splitdata`` task before the training: ``isplitconfig`` (ratio =
                           validation_split, train/validation sample counts), ``otrainset``
                           rows for both parts (``subset`` train / validation)
learning-rate change       an ``adaptation`` task depending on the training task:
                           ``iadaptation`` (adaptation_id, trigger, epoch) and ``oadaptation``
                           (adaptation_id, old_learning_rate, new_learning_rate, epoch,
                           trigger, timestamp). ``epoch`` is the first epoch trained with the
                           new rate; ``trigger`` the callback class that changed it
                           (``LearningRateScheduler``, ``ReduceLROnPlateau``, yours), the
                           ``LearningRateSchedule`` class, or ``user``. Rates are compared at
                           epoch boundaries
``EarlyStopping``          stopped_epoch, best_epoch, restore_best_weights and
                           early_stopping_monitor on the ``otrainmodel`` row of the epoch
                           where training stopped
``save``/``save_weights``  an ``otrainedmodel`` row of the model's training task: model_name,
                           model_dir (the path), format, size_bytes, sha256, saved
                           (model/weights), epoch when saved during training
``evaluate``               a ``testmodel`` task depending on the training task: ``otestset``
                           rows for its data, ``otestmodel`` with every returned metric
=========================  ===================================================================

A fit that raises ends its task FAILED with the error, and the exception reaches the caller
unchanged. Failures of the provenance itself are logged once and never stop the training.
Per epoch the cost is a learning-rate read per callback and one span handed to the background
exporter.
``uninstrument()`` puts the original Keras functions back.

``DLProvCallback`` records a training without the instrumentor: add it last to
``callbacks``. ``load_data``, ``split_data`` and ``transform`` mark your own data steps.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import logging
import os
import sys
import time
import weakref
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from dlprov_otel import semconv, tracing
from dlprov_otel.api import DataSet, Element, Task, dataset_attributes
from dlprov_otel.model import SetType

from . import lineage
from .lineage import describe, guarded, load_data, log_once, split_data, transform

logger = logging.getLogger(__name__)

_instruments = ("keras >= 3.0",)
_state: dict[str, Any] = {"enabled": False, "patched": []}
_last_train: weakref.WeakKeyDictionary[Any, Task] = weakref.WeakKeyDictionary()  # model -> task
_running: weakref.WeakKeyDictionary[Any, _TrainRun] = weakref.WeakKeyDictionary()  # fit in progress
_DECLARED_EPOCH = ("timestamp", "elapsed_time", "loss", "accuracy", "val_loss", "val_accuracy", "epoch")


# --- reading the model ---------------------------------------------------------------------
def _try(fn: Callable[[], Any], default: Any = None) -> Any:
    try:
        return fn()
    except Exception:
        return default


def _to_float(value: Any) -> float:
    import keras

    return float(keras.ops.convert_to_numpy(value))


def _learning_rates(model: Any) -> dict[str, float]:
    """Current learning rate of each optimizer ("" for a single one)."""
    opt = getattr(model, "optimizer", None)
    if opt is None:
        return {}
    subs = getattr(opt, "optimizers", None)  # keras' multi-optimizer wrappers
    pairs = [(str(o.name), o) for o in subs] if subs else [("", opt)]
    rates: dict[str, float] = {}
    for key, o in pairs:
        value = _try(lambda o=o: _to_float(o.learning_rate))
        if value is not None:
            rates[key] = value
    return rates


def _schedule_name(model: Any) -> str | None:
    """Class of the ``LearningRateSchedule`` driving the optimizer, if one does."""
    try:
        from keras.optimizers.schedules import LearningRateSchedule

        lr = getattr(model.optimizer, "_learning_rate", None)
        return type(lr).__name__ if isinstance(lr, LearningRateSchedule) else None
    except Exception:
        return None


def _json(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, sort_keys=True)


def _hyperparameters(model: Any, learning_rate: float | None, epochs: Any, batch_size: Any) -> dict[str, Any]:
    """The ``itrainmodel`` element: the seed's attributes plus what Keras knows of the run."""
    import keras

    opt = getattr(model, "optimizer", None)
    opt_config = _try(opt.get_config) if opt is not None else None
    compile_config = _try(model.get_compile_config, {}) or {}
    row: dict[str, Any] = {
        # the class, lower-cased ("adam"): the config's name is per instance ("adam_3")
        "optimizer_name": type(opt).__name__.lower() if opt is not None else None,
        "learning_rate": learning_rate,
        "num_epochs": epochs,
        "num_layers": _try(lambda: len(model.layers)),
        "batch_size": batch_size,
        "optimizer_config": _try(lambda: _json(opt_config)),
        "loss_function": _try(lambda: _json(compile_config.get("loss"))),
        "metrics": _try(lambda: _json(compile_config.get("metrics"))),
        "param_count": _try(model.count_params),
        "trainable_params": _try(lambda: sum(int(_prod(w.shape)) for w in model.trainable_weights)),
        "model_architecture": _try(model.to_json),
        "model_name": _try(lambda: model.name),
        "keras_version": keras.__version__,
        "backend": _try(keras.backend.backend),
    }
    schedule = _schedule_name(model)
    if schedule:
        row["learning_rate_schedule"] = _try(
            lambda: _json(keras.optimizers.schedules.serialize(model.optimizer._learning_rate))
        )
    return row


def _prod(shape: Any) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _pick_accuracy(logs: Mapping[str, Any], prefix: str) -> Any:
    """``accuracy`` as Keras named it: accuracy, acc, or the first ``*accuracy`` metric."""
    for name in (prefix + "accuracy", prefix + "acc"):
        if name in logs:
            return logs[name]
    for key, value in logs.items():
        if key.startswith(prefix) and key.endswith("accuracy") and (prefix or not key.startswith("val_")):
            return value
    return None


def _metric_row(logs: Mapping[str, Any] | None, taken: Collection[str], mapped: Collection[str]) -> dict[str, Any]:
    """Every metric Keras logged but those in ``mapped`` (the caller stores them under their
    own names), sanitized and kept clear of the attribute names in ``taken``."""
    row: dict[str, Any] = {}
    for key, value in (logs or {}).items():
        if key in mapped:
            continue
        name = semconv.sanitize_name(key)
        if name in taken:
            name = "metric_" + name
        row[name] = value
    return row


# --- training runs -------------------------------------------------------------------------
class _TrainRun:
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
        self.rates = _learning_rates(model)
        self.initial_rates = dict(self.rates)
        self.schedule = _schedule_name(model)
        self.adaptations = 0
        self.inputs_recorded = False
        self.epoch_start = time.perf_counter()
        self.epoch_rate: float | None = None
        self.last_epoch: int | None = None
        self.ended = False
        self.cleanup: Callable[[], Any] | None = None  # undoes what fit's wrapper changed
        _running[model] = self

    @classmethod
    def standalone(
        cls, model: Any, params: Mapping[str, Any], dataflow: str | None, execution: str | None
    ) -> _TrainRun:
        """A run started by a hand-added :class:`DLProvCallback` (no instrumentor)."""
        df, exec_tag = lineage.context(dataflow, execution)
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
        row = _hyperparameters(self.model, next(iter(self.initial_rates.values()), None), self.epochs, self.batch_size)
        for key, value in self.fit_info.items():
            row.setdefault(key, value)
        self.task.add_dataset(DataSet("itrainmodel", [row]))
        self.task.save()

    # learning rate ------------------------------------------------------------------------
    def check_rate(self, epoch: int, trigger: str) -> None:
        """Record an adaptation for each optimizer whose rate changed since the last check."""
        now = _learning_rates(self.model)
        for key, new in now.items():
            old = self.rates.get(key)
            if old is not None and new != old:
                self._adaptation(key, old, new, epoch, trigger)
        self.rates = now

    def _adaptation(self, optimizer: str, old: float, new: float, epoch: int, trigger: str) -> None:
        self.adaptations += 1
        adaptation_id = f"{self.task.id}-lr{self.adaptations}"
        t = lineage.new_task(self.task.dataflow, self.task.exec_tag, "adaptation", [self.task])
        t.add_dataset(DataSet("iadaptation", [{"adaptation_id": adaptation_id, "trigger": trigger, "epoch": epoch}]))
        t.begin()
        row: dict[str, Any] = {
            "adaptation_id": adaptation_id,
            "new_learning_rate": new,
            "old_learning_rate": old,
            "epoch": epoch,
            "trigger": trigger,
            "timestamp": dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
        }
        if optimizer:
            row["optimizer"] = optimizer
        t.add_dataset(DataSet("oadaptation", [row]))
        t.end()

    # epochs -------------------------------------------------------------------------------
    def epoch_started(self, epoch: int) -> None:
        self.epoch_start = time.perf_counter()

    def snapshot_rate(self) -> None:
        """The rate this epoch trains with (read after every callback's epoch begin)."""
        rates = _learning_rates(self.model)
        self.epoch_rate = next(iter(rates.values()), None)

    def epoch_ended(self, epoch: int, logs: Mapping[str, Any] | None) -> None:
        elapsed = time.perf_counter() - self.epoch_start
        logs = dict(logs or {})
        row: dict[str, Any] = {
            "timestamp": dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
            "elapsed_time": elapsed,
            "loss": logs.get("loss"),
            "accuracy": _pick_accuracy(logs, ""),
            "val_loss": logs.get("val_loss"),
            "val_accuracy": _pick_accuracy(logs, "val_"),
            "epoch": epoch,
        }
        row.update(_metric_row(logs, _DECLARED_EPOCH, ("loss", "accuracy", "val_loss", "val_accuracy")))
        row.setdefault("learning_rate", self.epoch_rate)
        if getattr(self.model, "stop_training", False):
            row.update(self._early_stopping(epoch))
        self.last_epoch = epoch
        self.task.add_dataset(DataSet("otrainmodel", [row]))
        self.task.save()

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

    def finish(self, error: BaseException | None) -> None:
        if self.ended:
            return
        self.ended = True
        _running.pop(self.model, None)
        _last_train[self.model] = self.task
        try:
            self.record_inputs()
        finally:
            self.task.end(error=error)


class _EvalRun:
    """One ``evaluate``: a ``testmodel`` task and its ``otestmodel`` element."""

    def __init__(self, model: Any, x: Any, y: Any, dataflow: str | None = None, execution: str | None = None) -> None:
        df, exec_tag = lineage.context(dataflow, execution)
        rows = describe(x, "x") + describe(y, "y")
        deps: list[Task] = []
        train = _last_train.get(model)
        if train is not None and train.exec_tag == exec_tag:
            deps.append(train)
        deps += [t for t in lineage.producers(exec_tag, rows) if t not in deps]
        if not deps:
            last = lineage.last_data_task(exec_tag)
            deps = [last] if last else []
        self.task = lineage.new_task(df, exec_tag, "testmodel", deps)
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
                metrics = self.logs if self.logs is not None else _result_metrics(result)
                row = {"loss": metrics.get("loss"), "accuracy": _pick_accuracy(metrics, "")}
                row.update(_metric_row(metrics, ("loss", "accuracy"), ("loss", "accuracy")))
                self.task.add_dataset(DataSet("otestmodel", [row]))
        finally:
            self.task.end(error=error)


def _result_metrics(result: Any) -> dict[str, Any]:
    if isinstance(result, Mapping):
        return dict(result)
    if isinstance(result, list | tuple):
        return {"loss": result[0]} if result else {}
    return {"loss": result}


# --- callbacks (keras is imported only when one is needed) ---------------------------------
_classes: dict[str, type] = {}


def _callback_classes() -> dict[str, type]:
    if _classes:
        return _classes
    import keras

    class DLProvCallback(keras.callbacks.Callback):
        """Records the training it is given to as a ``trainmodel`` task (add it last).

        Without the instrumentor it records hyperparameters, one ``otrainmodel`` row per
        epoch and learning-rate adaptations (its ``trigger`` is the schedule class or
        ``callback``); given to ``evaluate``, a ``testmodel`` task. With the instrumentor on,
        ``fit`` records everything already and this callback is left out.
        """

        def __init__(self, dataflow: str | None = None, execution: str | None = None) -> None:
            super().__init__()
            self.dataflow = dataflow
            self.execution = execution
            self._run: _TrainRun | None = None
            self._owned = False  # the callback started the run itself (no instrumentor)
            self._checks_rate = False
            self._eval: _EvalRun | None = None
            self._training = False

        def _attach(self, run: _TrainRun, checks_rate: bool) -> None:
            self._run, self._owned, self._checks_rate = run, False, checks_rate

        def on_train_begin(self, logs: Any = None) -> None:
            self._training = True
            if self._run is None:
                self._run = guarded(
                    "fit begin", _TrainRun.standalone, self.model, self.params, self.dataflow, self.execution
                )
                self._owned = self._checks_rate = self._run is not None
            if self._run is not None:
                guarded("itrainmodel", self._run.record_inputs)

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            run = self._run
            if run is None:
                return
            if self._checks_rate:
                run.epoch_started(epoch)
                guarded("learning rate", run.check_rate, epoch, run.schedule or "callback")
            guarded("learning rate", run.snapshot_rate)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            run = self._run
            if run is None:
                return
            guarded("otrainmodel", run.epoch_ended, epoch, logs)
            if self._checks_rate:
                guarded("learning rate", run.check_rate, epoch + 1, run.schedule or "callback")

        def on_train_end(self, logs: Any = None) -> None:
            self._training = False
            if self._owned and self._run is not None:
                guarded("fit end", self._run.finish, None)
            if self._owned or self._run is None or self._run.ended:
                self._run, self._owned = None, False

        def on_test_begin(self, logs: Any = None) -> None:
            if not self._training and not _state["enabled"]:  # a hand-made evaluate
                self._eval = guarded("evaluate", _EvalRun, self.model, None, None, self.dataflow, self.execution)

        def on_test_end(self, logs: Any = None) -> None:
            if self._eval is not None:
                self._eval.logs = dict(logs or {})
                guarded("evaluate end", self._eval.finish, None)
                self._eval = None

    class RateProbe(keras.callbacks.Callback):
        """Checks the learning rate after the callback before it (which then is the trigger)."""

        def __init__(self, run: _TrainRun, trigger: str, first: bool = False) -> None:
            super().__init__()
            self.run, self.trigger, self.first = run, trigger, first

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            if self.first:
                self.run.epoch_started(epoch)
            guarded("learning rate", self.run.check_rate, epoch, self.trigger)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            guarded("learning rate", self.run.check_rate, epoch + 1, self.trigger)

    class EvalProbe(keras.callbacks.Callback):
        """Keeps the metrics ``evaluate`` returns (its final logs)."""

        def __init__(self, run: _EvalRun) -> None:
            super().__init__()
            self.run = run

        def on_test_end(self, logs: Any = None) -> None:
            self.run.logs = dict(logs or {})

    DLProvCallback.__module__ = __name__
    _classes.update(DLProvCallback=DLProvCallback, RateProbe=RateProbe, EvalProbe=EvalProbe)
    return _classes


def __getattr__(name: str) -> Any:
    # DLProvCallback subclasses keras.callbacks.Callback: build it on first use so that
    # importing this module never imports keras.
    if name == "DLProvCallback":
        cls = _callback_classes()["DLProvCallback"]
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- the wrappers --------------------------------------------------------------------------
def _replace_argument(fn: Any, args: tuple, kwargs: dict, name: str, value: Any) -> tuple[tuple, dict]:
    params = list(inspect.signature(fn).parameters)
    index = params.index(name) if name in params else -1
    if 0 <= index < len(args):
        return (*args[:index], value, *args[index + 1 :]), kwargs
    return args, {**kwargs, name: value}


def _user_callbacks(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _split_task(exec_tag: str, df: Any, x: Any, y: Any, ratio: float) -> Task | None:
    """The ``splitdata`` task of ``validation_split``; None when Keras cannot split the data."""
    leaves = lineage.leaves((x, y))
    if not leaves or not all(lineage.is_array(a) and len(a.shape) > 0 for _, a in leaves):
        return None
    import math

    n = int(leaves[0][1].shape[0])
    split_at = math.floor(n * (1.0 - ratio))  # keras' train_validation_split
    if split_at in (0, n):
        return None
    whole, train, val = [], [], []
    for obj, name in ((x, "x"), (y, "y")):
        if obj is not None:
            w, t, v = lineage.describe_split(obj, name, split_at)
            whole += w
            train += t
            val += v
    task = lineage.new_task(df, exec_tag, "splitdata", lineage.dependencies(exec_tag, whole))
    task.add_dataset(
        DataSet(
            "isplitconfig",
            [
                {
                    "ratio": ratio,
                    "method": "keras validation_split",
                    "train_samples": split_at,
                    "validation_samples": n - split_at,
                }
            ],
        )
    )
    task.begin()
    try:
        lineage.emit(task, "otrainset", [dict(r, subset="train") for r in train], "trainset")
        lineage.emit(task, "otrainset", [dict(r, subset="validation") for r in val], "trainset")
    finally:
        task.end()
    lineage.mark_data_task(task)
    return task


def _prepare_fit(wrapped: Any, model: Any, args: tuple, kwargs: dict) -> tuple[_TrainRun, tuple, dict] | None:
    try:
        bound = inspect.signature(wrapped).bind(*args, **kwargs)
    except TypeError:
        return None  # a wrong call: Keras itself reports it
    a = bound.arguments
    df, exec_tag = lineage.context()
    x, y = a.get("x"), a.get("y")
    ratio = float(a.get("validation_split") or 0.0)
    validation = a.get("validation_data")
    split = _split_task(exec_tag, df, x, y, ratio) if ratio and validation is None else None
    if split is not None:
        deps: list[Task] = [split]
        inputs: list[dict[str, Any]] = []
    else:
        rows = [dict(r, subset="train") for r in describe(x, "x") + describe(y, "y")]
        if isinstance(validation, tuple) and 2 <= len(validation) <= 3:
            val_rows = describe(validation[0], "x") + describe(validation[1], "y")
        else:
            val_rows = describe(validation, "validation_data")
        rows += [dict(r, subset="validation") for r in val_rows]
        deps = lineage.dependencies(exec_tag, rows)
        inputs = [r for r in rows if not lineage.was_output(exec_tag, "otrainset", r)]
    batch_size = a.get("batch_size")
    if batch_size is None and hasattr(x, "shape") and a.get("steps_per_epoch") is None:
        batch_size = 32  # keras' default for arrays
    fit_info = {
        "validation_split": ratio if ratio else None,
        "initial_epoch": a.get("initial_epoch", 0),
        "steps_per_epoch": a.get("steps_per_epoch"),
        "shuffle": str(a.get("shuffle", True)),
    }
    fit_info = {k: v for k, v in fit_info.items() if v is not None}

    classes = _callback_classes()
    from keras.callbacks import CallbackList

    user_value = a.get("callbacks")
    task = lineage.new_task(df, exec_tag, "trainmodel", deps)
    task.begin()
    try:
        lineage.emit(task, "otrainset", inputs, "trainset")
        if isinstance(user_value, CallbackList):
            user = [c for c in user_value.callbacks if not isinstance(c, classes["DLProvCallback"])]
        else:
            user = [c for c in _user_callbacks(user_value) if not isinstance(c, classes["DLProvCallback"])]
        run = _TrainRun(
            model, task, epochs=a.get("epochs", 1), batch_size=batch_size, fit_info=fit_info, callbacks=user
        )
        main = classes["DLProvCallback"]()
        if isinstance(user_value, CallbackList):
            # a ready-made list: record at its end, without probes between the callbacks
            main._attach(run, checks_rate=True)
            main.set_model(model)
            main.set_params(user_value.params)
            user_value.callbacks.append(main)
            run.cleanup = lambda: user_value.callbacks.remove(main)
            return run, args, kwargs
        main._attach(run, checks_rate=False)
        probe = classes["RateProbe"]
        chain: list[Any] = [probe(run, run.schedule or "user", first=True)]
        for cb in user:
            chain += [cb, probe(run, type(cb).__name__)]
        chain.append(main)
        args, kwargs = _replace_argument(wrapped, args, kwargs, "callbacks", chain)
        return run, args, kwargs
    except BaseException:
        _running.pop(model, None)
        task.end()
        raise


def _wrap_fit(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    if not _state["enabled"]:
        return wrapped(*args, **kwargs)
    prepared = guarded("fit", _prepare_fit, wrapped, instance, args, kwargs)
    if prepared is None:
        return wrapped(*args, **kwargs)
    run, call_args, call_kwargs = prepared
    try:
        result = wrapped(*call_args, **call_kwargs)
    except BaseException as exc:
        guarded("fit end", run.finish, exc)
        raise
    finally:
        if run.cleanup is not None:
            guarded("fit end", run.cleanup)
    guarded("fit end", run.finish, None)
    return result


def _prepare_evaluate(wrapped: Any, model: Any, args: tuple, kwargs: dict) -> tuple[_EvalRun, tuple, dict] | None:
    try:
        bound = inspect.signature(wrapped).bind(*args, **kwargs)
    except TypeError:
        return None
    a = bound.arguments
    run = _EvalRun(model, a.get("x"), a.get("y"))
    try:
        probe = _callback_classes()["EvalProbe"](run)
        value = a.get("callbacks")
        from keras.callbacks import CallbackList

        if isinstance(value, CallbackList):
            return run, args, kwargs  # the metrics come from the return value
        args, kwargs = _replace_argument(wrapped, args, kwargs, "callbacks", [*_user_callbacks(value), probe])
        return run, args, kwargs
    except BaseException:
        run.task.end()
        raise


def _wrap_evaluate(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    # fit validates by calling evaluate(..., _use_cached_eval_dataset=True): not a test
    if not _state["enabled"] or kwargs.get("_use_cached_eval_dataset"):
        return wrapped(*args, **kwargs)
    prepared = guarded("evaluate", _prepare_evaluate, wrapped, instance, args, kwargs)
    if prepared is None:
        return wrapped(*args, **kwargs)
    run, call_args, call_kwargs = prepared
    try:
        result = wrapped(*call_args, **call_kwargs)
    except BaseException as exc:
        guarded("evaluate end", run.finish, exc)
        raise
    guarded("evaluate end", run.finish, None, result)
    return result


def _model_format(path: str) -> str:
    name = path.lower()
    for suffix in (".weights.h5", ".keras", ".h5", ".hdf5", ".weights.json", ".tflite"):
        if name.endswith(suffix):
            return suffix[1:]
    return Path(path).suffix.lstrip(".") or "directory"


def _emit_after_end(task: Task, set_tag: str, row: dict[str, Any]) -> None:
    """An output of a task that has ended (the model saved after ``fit`` returned).

    The element is a span under the task like any other emission, so it belongs to the
    training that produced the model.
    """
    set_def = task.dataflow.set(set_tag)
    attrs = dataset_attributes(set_def, SetType.OUTPUT, [Element(row)])
    attrs.update(task._common)
    tracing.emit_dataset_span(task._ctx, set_def.tag, attrs)


def _record_save(model: Any, saved: str, args: tuple, kwargs: dict) -> None:
    path = args[0] if args else kwargs.get("filepath")
    row: dict[str, Any] = {"model_name": _try(lambda: model.name), "saved": saved}
    if isinstance(path, str | os.PathLike):
        full = os.path.abspath(os.fspath(path))
        row.update(model_dir=full, format=_model_format(full))
        if os.path.exists(full):
            row["size_bytes"], row["sha256"] = lineage.file_digest(full)
    else:
        row["model_dir"] = repr(path)
    run = _running.get(model)
    if run is not None and not run.ended:  # during fit: a checkpoint
        if run.last_epoch is not None:
            row["epoch"] = run.last_epoch
        run.task.add_dataset(DataSet("otrainedmodel", [row]))
        run.task.save()
        return
    df, exec_tag = lineage.context()
    task = _last_train.get(model)
    if task is not None and task.exec_tag == exec_tag:
        _emit_after_end(task, "otrainedmodel", row)
        return
    # a model saved without a fit in this run (loaded, or trained elsewhere)
    task = lineage.new_task(df, exec_tag, "trainmodel")
    task.begin()
    task.add_dataset(DataSet("otrainedmodel", [row]))
    task.end()
    _last_train[model] = task


def _save_wrapper(saved: str) -> Callable[..., Any]:
    def wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        result = wrapped(*args, **kwargs)
        if _state["enabled"]:
            guarded("save", _record_save, instance, saved, args, kwargs)
        return result

    return wrapper


# --- patching ------------------------------------------------------------------------------
def _owner(cls: type, name: str) -> type:
    """The class in ``cls``'s MRO that defines ``name`` (patched there, restored exactly)."""
    return next(k for k in cls.__mro__ if name in k.__dict__)


def _patch() -> None:
    import keras
    import wrapt

    if _state["patched"]:
        return
    major = int(str(keras.__version__).split(".")[0])
    if major < 3:
        log_once("keras version", RuntimeError(f"keras {keras.__version__} is not supported (Keras 3 is)"))
        return
    model = keras.Model
    targets = [
        ("fit", _wrap_fit),
        ("evaluate", _wrap_evaluate),
        ("save", _save_wrapper("model")),
        ("save_weights", _save_wrapper("weights")),
    ]
    patched = []
    for name, wrapper in targets:
        owner = _owner(model, name)
        wrapt.wrap_function_wrapper(owner, name, wrapper)
        patched.append((owner, name))
    _state["patched"] = patched


def _unpatch() -> None:
    from opentelemetry.instrumentation.utils import unwrap

    for owner, name in _state["patched"]:
        unwrap(owner, name)
    _state["patched"] = []


def _on_keras_import(module: Any) -> None:
    if _state["enabled"]:
        guarded("instrument keras", _patch)


class KerasInstrumentor(BaseInstrumentor):
    """OpenTelemetry instrumentor recording Keras training as DLProv provenance.

    ``instrument(dataflow=None, execution=None, store=None)``: ``dataflow`` is the dataflow
    tag (default ``DLPROV_DATAFLOW``, else ``keras``; an open ``dlprov_otel.execution``
    wins), ``execution`` the execution tag (default: one per process), ``store`` a store
    path or URL to configure now (default: the environment, on first use). Keras is
    patched when it is imported, never imported by this call.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        store = kwargs.get("store")
        if store is not None:
            import dlprov_otel

            dlprov_otel.configure(store=store)
        lineage.set_defaults(kwargs.get("dataflow"), kwargs.get("execution"))
        _state["enabled"] = True
        if "keras" in sys.modules:
            _patch()
        else:
            import wrapt

            wrapt.register_post_import_hook(_on_keras_import, "keras")

    def _uninstrument(self, **kwargs: Any) -> None:
        _state["enabled"] = False
        _unpatch()
        lineage.set_defaults(None, None)


__all__ = ["DLProvCallback", "KerasInstrumentor", "load_data", "split_data", "transform"]  # noqa: F822
