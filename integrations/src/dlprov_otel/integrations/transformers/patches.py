"""The patches of ``transformers.Trainer`` and the callback they add to every Trainer.

``__init__`` adds :class:`DLProvTrainerCallback` (epochs, validation, learning rate);
``train`` owns the run (a failing train ends its task FAILED, the exception unchanged);
``training_step`` keeps each step's loss tensor (read once per epoch); ``save_model``
records the saved model (a checkpoint during training); ``evaluate`` and ``predict`` after
the training are tests. The PyTorch integration's loop capture stands aside meanwhile.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from dlprov_otel.api import DataSet, Task

from .. import lineage
from .._shared.guard import guarded
from .._shared.patching import Patcher
from .recorder import TrainerRun, context, record_test, state

running: weakref.WeakKeyDictionary[Any, TrainerRun] = weakref.WeakKeyDictionary()  # trainer -> train in progress
last_train: weakref.WeakKeyDictionary[Any, tuple[Task, int | None]] = weakref.WeakKeyDictionary()
_classes: dict[str, type] = {}


def callback_class() -> type:
    """``DLProvTrainerCallback`` (a ``transformers.TrainerCallback``), built on first use."""
    if "cb" in _classes:
        return _classes["cb"]
    from transformers import TrainerCallback

    class DLProvTrainerCallback(TrainerCallback):
        """Records a Trainer's training: add it to ``callbacks`` (the instrumentor adds it to
        every Trainer). Alone, it records the epochs, validation and learning rate; with the
        instrumentor, also saved models and tests."""

        def __init__(self, trainer: Any = None) -> None:
            self._trainer = weakref.ref(trainer) if trainer is not None else (lambda: None)
            self._own: TrainerRun | None = None

        def _run(self) -> TrainerRun | None:
            trainer = self._trainer()
            run = running.get(trainer) if trainer is not None else None
            if run is None and trainer is None:
                if self._own is None or self._own.ended:
                    self._own = guarded("transformers train", TrainerRun, None)
                run = self._own
            return run

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            run = self._run()
            if run is not None:
                guarded("itrainmodel", run.begin, args, kw.get("model"), kw.get("optimizer"), kw.get("lr_scheduler"))

        def on_epoch_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            run = self._run()
            if run is not None:
                guarded("otrainmodel", run.epoch_begin, state.global_step, kw.get("optimizer"), kw.get("lr_scheduler"))

        def on_epoch_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            run = self._run()
            if run is not None:
                opt, sched = kw.get("optimizer"), kw.get("lr_scheduler")
                guarded("otrainmodel", run.epoch_end, state.epoch, state.global_step, opt, sched)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            run = self._run()
            if run is not None and logs:
                guarded("otrainmodel", run.logged, logs)

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **kw: Any) -> None:
            run = self._run()
            if run is not None and metrics and run.begun and not run.ended:
                guarded("validation", run.evaluated, metrics)

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self._own is not None:
                guarded("transformers train end", self._own.finish)

    DLProvTrainerCallback.__module__ = __name__.rpartition(".")[0]
    _classes["cb"] = DLProvTrainerCallback
    return DLProvTrainerCallback


@contextmanager
def torch_aside() -> Iterator[None]:
    """The PyTorch integration records no loop meanwhile (the Trainer's are recorded here)."""
    try:
        from ..torch.state import active

        rec = active.recorder
    except Exception:
        rec = None
    if rec is not None:
        rec.suspended += 1
    try:
        yield
    finally:
        if rec is not None:
            rec.suspended -= 1


def _init(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    result = wrapped(*args, **kwargs)
    if state.settings is not None:
        guarded("transformers callback", _add_callback, instance)
    return result


def _add_callback(trainer: Any) -> None:
    cls = callback_class()
    if not any(isinstance(c, cls) for c in trainer.callback_handler.callbacks):
        trainer.add_callback(cls(trainer))


def _train(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    run = guarded("transformers train", TrainerRun, instance) if state.settings is not None else None
    if run is None:
        with torch_aside():
            return wrapped(*args, **kwargs)
    running[instance] = run
    try:
        with torch_aside():
            result = wrapped(*args, **kwargs)
    except BaseException as exc:
        guarded("transformers train end", run.finish, exc)
        raise
    finally:
        running.pop(instance, None)
        epoch = getattr(getattr(instance, "state", None), "epoch", None)
        last_train[instance] = (run.task, max(0, _ceil(epoch) - 1) if epoch else None)
    guarded("transformers train end", run.finish, None)
    return result


def _ceil(value: float) -> int:
    import math

    return math.ceil(value)


def _training_step(orig: Callable[..., Any]) -> Callable[..., Any]:
    def training_step(self: Any, *args: Any, **kwargs: Any) -> Any:
        loss = orig(self, *args, **kwargs)
        run = running.get(self)
        if run is not None:
            losses = run.losses
            losses.append(loss)  # a tensor: read once per epoch
            if len(losses) >= 1024:
                run.fold()
        return loss

    return training_step


def _test(prefix_default: str, position: int) -> Callable[..., Any]:
    def wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        with torch_aside():
            result = wrapped(*args, **kwargs)
        if state.settings is not None and instance not in running:
            prefix = kwargs.get("metric_key_prefix") or (args[position] if len(args) > position else prefix_default)
            metrics = result if isinstance(result, dict) else getattr(result, "metrics", None)
            train = last_train.get(instance)
            if metrics:
                guarded("otestmodel", record_test, train[0] if train else None, metrics, prefix)
        return result

    return wrapper


def _save_model(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    result = wrapped(*args, **kwargs)
    if state.settings is not None:
        output_dir = (args[0] if args else kwargs.get("output_dir")) or instance.args.output_dir
        guarded("transformers save", _record_save, instance, output_dir)
    return result


def _record_save(trainer: Any, output_dir: str) -> None:
    if not trainer.is_world_process_zero():
        return
    full = os.path.abspath(output_dir)
    size, digest = lineage.file_digest(full)
    files = sorted(os.listdir(full)) if os.path.isdir(full) else []
    weights = next((f for f in files if f.endswith(".safetensors")), None)
    row: dict[str, Any] = {
        "model_name": type(trainer.model).__name__,
        "model_dir": full,
        "format": "safetensors" if weights else "directory",
        "size_bytes": size,
        "sha256": digest,
    }
    if weights:  # the weights file alone, as a lookup by a file's digest finds it
        row["weights_sha256"] = lineage.file_digest(os.path.join(full, weights))[1]
    run = running.get(trainer)
    if run is not None and not run.ended:
        run.checkpoint(row, getattr(trainer.state, "epoch", None))
        return
    found = last_train.get(trainer)
    df, exec_tag = context()
    if found is not None and found[0].exec_tag == exec_tag:
        task, epoch = found
        if epoch is not None:
            row["epoch"] = epoch
        task.add_late_dataset(DataSet("otrainedmodel", [row]))
        return
    task = lineage.new_task(df, exec_tag, "trainmodel")
    task.begin()
    task.add_dataset(DataSet("otrainedmodel", [row]))
    task.end()


def patch(patcher: Patcher) -> None:
    """Patch ``transformers.Trainer`` (once)."""
    from transformers import Trainer

    wrapped = [
        ("__init__", _init),
        ("train", _train),
        ("evaluate", _test("eval", 2)),
        ("predict", _test("test", 2)),
        ("save_model", _save_model),
    ]
    for name, wrapper in wrapped:
        if not patcher.is_patched(Trainer, name):
            patcher.wrap(Trainer, name, wrapper)
    if not patcher.is_patched(Trainer, "training_step"):
        patcher.replace(Trainer, "training_step", _training_step)


__all__ = ["callback_class", "patch", "running", "torch_aside"]
