"""The patches of ``keras.Model``: ``fit``, ``evaluate``, ``save``, ``save_weights`` and ``export``.

Each wrapper prepares the run (tasks, callbacks put between yours), calls Keras, and ends
the run; the exception of a failing call reaches the caller unchanged.
"""

from __future__ import annotations

import inspect
import math
import sys
import weakref
from collections.abc import Callable
from typing import Any

from dlprov_otel.api import DataSet, Task

from .. import lineage
from .._shared.guard import guarded, report
from .._shared.patching import Patcher
from . import loading, loops
from .callbacks import callback_classes
from .facts import optional
from .runs import EvalRun, TrainRun, context, last_train, running, state, weights_epoch


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


def _prepare_fit(wrapped: Any, model: Any, args: tuple, kwargs: dict) -> tuple[TrainRun, tuple, dict] | None:
    try:
        bound = inspect.signature(wrapped).bind(*args, **kwargs)
    except TypeError:
        return None  # a wrong call: Keras itself reports it
    a = bound.arguments
    df, exec_tag = context()
    x, y = a.get("x"), a.get("y")
    ratio = float(a.get("validation_split") or 0.0)
    validation = a.get("validation_data")
    split = _split_task(exec_tag, df, x, y, ratio) if ratio and validation is None else None
    if split is not None:
        deps: list[Task] = [split]
        inputs: list[dict[str, Any]] = []
    else:
        rows = [dict(r, subset="train") for r in lineage.describe(x, "x") + lineage.describe(y, "y")]
        if isinstance(validation, tuple) and 2 <= len(validation) <= 3:
            val_rows = lineage.describe(validation[0], "x") + lineage.describe(validation[1], "y")
        else:
            val_rows = lineage.describe(validation, "validation_data")
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

    classes = callback_classes()
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
        run = TrainRun(model, task, epochs=a.get("epochs", 1), batch_size=batch_size, fit_info=fit_info, callbacks=user)
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
        running.pop(model, None)
        task.end()
        raise


def _paused(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Keras's own training and evaluation are not custom loops (:mod:`.loops`)."""

    def wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        rec = loops.active.recorder
        if rec is None:
            return fn(wrapped, instance, args, kwargs)
        rec.paused += 1
        try:
            return fn(wrapped, instance, args, kwargs)
        finally:
            rec.paused -= 1

    return wrapper


@_paused
def _wrap_fit(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    if not state.enabled:
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


def _prepare_evaluate(wrapped: Any, model: Any, args: tuple, kwargs: dict) -> tuple[EvalRun, tuple, dict] | None:
    try:
        bound = inspect.signature(wrapped).bind(*args, **kwargs)
    except TypeError:
        return None
    a = bound.arguments
    run = EvalRun(model, a.get("x"), a.get("y"), model_input=loading.loaded_input(model))
    try:
        probe = callback_classes()["EvalProbe"](run)
        value = a.get("callbacks")
        from keras.callbacks import CallbackList

        if isinstance(value, CallbackList):
            return run, args, kwargs  # the metrics come from the return value
        args, kwargs = _replace_argument(wrapped, args, kwargs, "callbacks", [*_user_callbacks(value), probe])
        return run, args, kwargs
    except BaseException:
        run.task.end()
        raise


@_paused
def _wrap_evaluate(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    # fit validates by calling evaluate(..., _use_cached_eval_dataset=True): not a test
    if not state.enabled or kwargs.get("_use_cached_eval_dataset"):
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


_predicted: weakref.WeakSet[Any] = weakref.WeakSet()  # loaded models whose predict was recorded


def _prepare_predict(model: Any, args: tuple, kwargs: dict) -> EvalRun | None:
    """The first ``predict`` of a model read back by ``load_model``/``load_weights`` (the
    keras-io examples' ``load_model(best)`` then ``predict(x_test)``): a test of that file on
    ``x``, without metrics (the script computes them itself). Other predictions are not tests."""
    given = loading.loaded_input(model)
    if given is None or model in _predicted:
        return None
    _predicted.add(model)
    return EvalRun(model, args[0] if args else kwargs.get("x"), None, model_input=given)


@_paused
def _wrap_predict(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    run = guarded("predict", _prepare_predict, instance, args, kwargs) if state.enabled else None
    if run is None:
        return wrapped(*args, **kwargs)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        guarded("predict end", run.finish, exc)
        raise
    run.logs = {"samples": optional(lambda: len(result))}
    guarded("predict end", run.finish, None)
    return result


def _record_save(model: Any, saved: str, args: tuple, kwargs: dict) -> None:
    path = args[0] if args else kwargs.get("filepath")
    row: dict[str, Any] = {"model_name": optional(lambda: model.name), "saved": saved}
    row.update(loading.describe_file(path))
    run = running.get(model)
    if run is not None and not run.ended:  # during fit: a checkpoint
        epoch = run.checkpoint_epoch()
        if epoch is not None:
            row["epoch"] = epoch  # the epoch whose weights it holds
        run.task.add_dataset(DataSet("otrainedmodel", [row]))
        run.task.save()
        loading.remember_save(run.task, row)
        return
    df, exec_tag = context()
    task = last_train.get(model)
    if task is not None and task.exec_tag == exec_tag:
        # after fit returned (or during a custom loop): an output of the training of the model
        rec = loops.active.recorder
        epoch = rec.checkpoint_epoch(model) if rec is not None else None
        if epoch is None:
            epoch = weights_epoch.get(model)
        if epoch is not None:
            row["epoch"] = epoch
        task.add_late_dataset(DataSet("otrainedmodel", [row]))
        loading.remember_save(task, row)
        return
    # a model saved without a fit in this run (loaded, or trained elsewhere)
    task = lineage.new_task(df, exec_tag, "trainmodel")
    task.begin()
    task.add_dataset(DataSet("otrainedmodel", [row]))
    task.end()
    last_train[model] = task
    loading.remember_save(task, row)


def _load_wrapper(how: str) -> Callable[..., Any]:
    """``load_model`` (returns the model) or ``Model.load_weights`` (loads into the instance)."""

    def wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        result = wrapped(*args, **kwargs)
        if state.enabled:
            path = args[0] if args else kwargs.get("filepath")
            guarded("load", loading.record_load, result if how == "model" else instance, path, how)
        return result

    return wrapper


def _save_wrapper(saved: str) -> Callable[..., Any]:
    def wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        result = wrapped(*args, **kwargs)
        if state.enabled:
            guarded("save", _record_save, instance, saved, args, kwargs)
        return result

    return wrapper


def _owner(cls: type, name: str) -> type:
    """The class in ``cls``'s MRO that defines ``name`` (patched there, restored exactly)."""
    return next(k for k in cls.__mro__ if name in k.__dict__)


def patch(patcher: Patcher) -> None:
    """Wrap ``keras.Model``'s methods (once; Keras 3 only)."""
    import keras

    major = int(str(keras.__version__).split(".")[0])
    if major < 3:
        report("keras version", RuntimeError(f"keras {keras.__version__} is not supported (Keras 3 is)"))
        return
    targets = [
        ("fit", _wrap_fit),
        ("evaluate", _wrap_evaluate),
        ("predict", _wrap_predict),
        ("save", _save_wrapper("model")),
        ("save_weights", _save_wrapper("weights")),
        ("export", _save_wrapper("export")),  # a SavedModel folder (digest over its files)
        ("load_weights", _load_wrapper("weights")),
    ]
    for name, wrapper in targets:
        owner = _owner(keras.Model, name)
        if not patcher.is_patched(owner, name):
            patcher.wrap(owner, name, wrapper)
    # load_model as each module that exports it names it (tf.keras's when it is first used)
    for name in ("keras.models", "keras.saving", "keras._tf_keras.keras.models", "keras._tf_keras.keras.saving"):
        patcher.when_imported(name, lambda name=name: _patch_load_model(patcher, sys.modules[name]))


def _patch_load_model(patcher: Patcher, module: Any) -> None:
    if "load_model" in vars(module) and not patcher.is_patched(module, "load_model"):
        patcher.wrap(module, "load_model", _load_wrapper("model"))


__all__ = ["patch"]
