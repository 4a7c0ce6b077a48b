"""The patches that feed :class:`.loops.LoopRecorder` (TensorFlow custom training loops).

Called once per training step (eager): ``GradientTape.gradient`` and
``Optimizer.apply_gradients`` / ``Optimizer.apply`` (Keras 3's ``apply(grads, variables)``, which
the current Keras guide's loops call), replaced by plain functions (``Patcher.replace``: a wrapt
proxy costs more than what they do); ``Loss.__call__`` and the ``tf.data`` iterator's
``__next__`` are the same. ``Dataset.__iter__`` (once per pass) and ``Model.__init__`` (once
per model) are wrapped.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from .._shared.guard import guarded, report
from .._shared.patching import Patcher
from .loops import active


def _gradient(orig: Callable[..., Any]) -> Callable[..., Any]:
    def gradient(self: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
        rec = active.recorder
        if rec is not None:
            try:
                rec.on_gradient(target)
            except Exception as exc:
                report("tensorflow gradient", exc)
        return orig(self, target, *args, **kwargs)

    return gradient


def _apply_gradients(orig: Callable[..., Any]) -> Callable[..., Any]:
    def apply_gradients(self: Any, grads_and_vars: Any, *args: Any, **kwargs: Any) -> Any:
        rec = active.recorder
        if rec is not None and not rec.paused and not rec.knows(self):
            grads_and_vars = list(grads_and_vars)  # a zip is read once: keep it for Keras
            guarded("tensorflow optimizer", rec.on_optimizer, self, grads_and_vars)
        return orig(self, grads_and_vars, *args, **kwargs)

    return apply_gradients


def _apply(orig: Callable[..., Any]) -> Callable[..., Any]:
    """Keras 3's ``Optimizer.apply(grads, trainable_variables=None)`` (``apply_gradients`` calls
    it: an optimizer already known costs one check)."""

    def apply(self: Any, grads: Any, trainable_variables: Any = None, *args: Any, **kwargs: Any) -> Any:
        rec = active.recorder
        if rec is not None and not rec.paused and not rec.knows(self):
            grads = list(grads)  # a generator is read once: keep it for Keras
            if trainable_variables is not None:
                trainable_variables = list(trainable_variables)
            variables = (
                trainable_variables if trainable_variables is not None else getattr(self, "_trainable_variables", [])
            )
            guarded("tensorflow optimizer", rec.on_optimizer, self, list(zip(grads, variables, strict=False)))
        return orig(self, grads, trainable_variables, *args, **kwargs)

    return apply


def _loss_call(orig: Callable[..., Any]) -> Callable[..., Any]:
    from tensorflow.python.eager import record

    def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
        value = orig(self, *args, **kwargs)
        rec = active.recorder
        if rec is not None and not rec.paused:
            try:
                if record.could_possibly_record():  # inside a GradientTape: a training loss
                    if rec.loss_name is None:
                        rec.loss_name = type(self).__name__
                else:
                    rec.on_eval_loss(value)
            except Exception as exc:
                report("tensorflow evaluation loss", exc)
        return value

    return __call__


def _next(orig: Callable[..., Any]) -> Callable[..., Any]:
    def __next__(self: Any) -> Any:
        try:
            return orig(self)
        except StopIteration:
            rec = active.recorder
            if rec is not None:
                guarded("tensorflow epoch", rec.on_exhausted, self)
            raise

    return __next__


def _iter(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    iterator = wrapped(*args, **kwargs)
    rec = active.recorder
    if rec is not None and not rec.paused:
        from tensorflow.python.eager import context as tf_context

        if tf_context.executing_eagerly():
            guarded("tensorflow pass", rec.on_pass_start, instance, iterator)
    return iterator


def _model_init(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    result = wrapped(*args, **kwargs)
    rec = active.recorder
    if rec is not None:
        guarded("tensorflow model", rec.on_model, instance)
    return result


def _metric_init(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    result = wrapped(*args, **kwargs)
    rec = active.recorder
    if rec is not None and not rec.paused:  # not those of Keras's own fit
        guarded("tensorflow metric", rec.on_metric, instance)
    return result


def _excepthook(previous: Callable[..., Any]) -> Callable[..., Any]:
    def hook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        rec = active.recorder
        if rec is not None and rec.task is not None:
            guarded("tensorflow failure", rec.finish, exc)  # the training ends FAILED
        previous(exc_type, exc, tb)

    return hook


def _owner(cls: type, name: str) -> type:
    return next(k for k in cls.__mro__ if name in k.__dict__)


def patch_loops(patcher: Patcher) -> None:
    """Patch TensorFlow and Keras for custom loops (Keras 3 on the TensorFlow backend)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf
    from tensorflow.python.data.ops import dataset_ops, iterator_ops

    replaced = [
        (tf.GradientTape, "gradient", _gradient),
        (_owner(keras.optimizers.Optimizer, "apply_gradients"), "apply_gradients", _apply_gradients),
        (_owner(keras.optimizers.Optimizer, "apply"), "apply", _apply),
        (_owner(keras.losses.Loss, "__call__"), "__call__", _loss_call),
        (iterator_ops.OwnedIterator, "__next__", _next),
    ]
    if not patcher.is_patched(sys, "excepthook"):
        patcher.replace(sys, "excepthook", _excepthook)
    for owner, name, factory in replaced:
        if not patcher.is_patched(owner, name):
            patcher.replace(owner, name, factory)
    wrapped = [
        (dataset_ops.DatasetV2, "__iter__", _iter),
        (_owner(keras.Model, "__init__"), "__init__", _model_init),
        (_owner(keras.metrics.Metric, "__init__"), "__init__", _metric_init),
    ]
    for owner, name, wrapper in wrapped:
        if not patcher.is_patched(owner, name):
            patcher.wrap(owner, name, wrapper)


__all__ = ["patch_loops"]
