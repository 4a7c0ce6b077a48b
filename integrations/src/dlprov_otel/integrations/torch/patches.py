"""The patches of PyTorch (and of Lightning's ``Trainer``) that feed the recorder.

Called once per training step: ``Tensor.backward``, a loss module's ``__call__`` and a
DataLoader iterator's ``__next__`` (plain functions, see :meth:`Patcher.replace`). Called
rarely: DataLoader creation and iteration, ``random_split``, optimizer creation, scheduler
steps and ``torch.save`` (wrapt wrappers).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .._shared.guard import guarded, report
from .._shared.patching import Patcher
from .facts import learning_rates
from .forks import process
from .state import active, capturing

_tls = threading.local()


# -- once per step: plain functions (see Patcher.replace) ---------------------------------------
def _backward_for(original: Callable[..., Any]) -> Callable[..., Any]:
    def backward(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        rec = active.recorder
        if rec is not None and not rec.suspended and not process.in_child:
            try:
                if self.numel() == 1:  # a scalar loss (not a vector-Jacobian product)
                    rec.on_backward(self)
            except Exception as exc:
                report("torch backward", exc)
        return result

    return backward


class _InLoss:
    depth = 0  # > 0 inside a loss module's call: the functional loss it calls is not counted
    phase = 0  # > 0 inside a module's train()/eval(): its children's calls are part of it


_in_loss = _InLoss()


def _note_loss(rec: Any, name: str, reduction: Any, out: Any, args: tuple, kwargs: dict, grad: bool) -> None:
    model = rec.model
    if grad and (model is None or model.training):
        if rec.loss_name is None:
            rec.loss_name = name
        return
    inp = args[0] if args else kwargs.get("input")
    tgt = args[1] if len(args) > 1 else kwargs.get("target")
    rec.on_eval_loss(name, reduction, out, inp, tgt)


def _loss_call_for(original: Callable[..., Any]) -> Callable[..., Any]:
    is_grad_enabled = sys.modules["torch"].is_grad_enabled

    def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
        _in_loss.depth += 1
        try:
            out = original(self, *args, **kwargs)
        finally:
            _in_loss.depth -= 1
        rec = active.recorder
        if rec is not None and not rec.suspended and not process.in_child:
            try:
                _note_loss(rec, type(self).__name__, getattr(self, "reduction", None), out, args, kwargs,
                           is_grad_enabled())
            except Exception as exc:
                report("torch loss", exc)
        return out

    return __call__


# torch.nn.functional losses scripts call directly (pytorch/examples mnist: F.nll_loss)
FUNCTIONAL_LOSSES = (
    "nll_loss", "cross_entropy", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
)  # fmt: skip


def _functional_loss_for(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def factory(original: Callable[..., Any]) -> Callable[..., Any]:
        is_grad_enabled = sys.modules["torch"].is_grad_enabled

        def loss(*args: Any, **kwargs: Any) -> Any:
            out = original(*args, **kwargs)
            rec = active.recorder
            if rec is not None and not _in_loss.depth and not rec.suspended and not process.in_child:
                try:
                    reduction = kwargs.get("reduction", "mean")
                    if kwargs.get("size_average") is not None or kwargs.get("reduce") is not None:
                        reduction = None  # the legacy arguments: not counted as a mean
                    _note_loss(rec, name, reduction, out, args, kwargs, is_grad_enabled())
                except Exception as exc:
                    report("torch loss", exc)
            return out

        return loss

    return factory


def _module_train_for(original: Callable[..., Any]) -> Callable[..., Any]:
    def train(self: Any, mode: bool = True) -> Any:
        rec = active.recorder
        if _in_loss.phase or rec is None or rec.suspended or process.in_child:
            return original(self, mode)
        _in_loss.phase += 1
        try:
            return original(self, mode)
        finally:
            _in_loss.phase -= 1
            guarded("torch phase", rec.on_phase, self, bool(mode))

    return train


def _next_for(original: Callable[..., Any]) -> Callable[..., Any]:
    def __next__(self: Any) -> Any:
        try:
            return original(self)
        except StopIteration:  # the pass is complete
            rec = active.recorder
            if rec is not None and not process.in_child:
                guarded("torch epoch", rec.on_pass_end, self)
            raise

    return __next__


def _w_loader_init(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    result = wrapped(*args, **kwargs)
    rec = capturing()
    if rec is not None:
        with rec.lock:
            guarded("torch DataLoader", rec.loader_info, instance)
    return result


def _w_loader_iter(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    rec = capturing()
    if rec is None:
        return wrapped(*args, **kwargs)
    import torch

    t0 = time.perf_counter()
    grad = torch.is_grad_enabled()
    iterator = wrapped(*args, **kwargs)
    guarded("torch DataLoader pass", rec.on_pass_start, instance, iterator, t0, grad)
    return iterator


def _w_random_split(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    parts = wrapped(*args, **kwargs)
    rec = capturing()
    if rec is not None:
        import torch

        dataset = args[0] if args else kwargs.get("dataset")
        generator = args[2] if len(args) > 2 else kwargs.get("generator", torch.default_generator)
        guarded("torch random_split", rec.on_random_split, dataset, parts, generator)
    return parts


def _w_optimizer_init(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    result = wrapped(*args, **kwargs)
    rec = capturing()
    if rec is not None:
        guarded("torch optimizer", rec.on_optimizer, instance)
    return result


def _w_scheduler_step(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    rec = capturing()
    depth = getattr(_tls, "depth", 0)
    if rec is None or depth:  # a scheduler stepping its children records once, outermost
        return wrapped(*args, **kwargs)
    opt = getattr(instance, "optimizer", None)
    before = guarded("torch lr_scheduler", learning_rates, opt) if opt is not None else None
    _tls.depth = depth + 1
    try:
        result = wrapped(*args, **kwargs)
    finally:
        _tls.depth = depth
    if before is not None:
        if getattr(instance, "_step_count", None) == 1:
            # the step LRScheduler.__init__ makes: the starting rate, not an adaptation
            guarded("torch lr_scheduler", rec.note_lrs, opt)
            return result
        after = guarded("torch lr_scheduler", learning_rates, opt)
        if after is not None and after != before:
            step = getattr(instance, "last_epoch", None)
            guarded("torch lr_scheduler", rec.on_lr_change, opt, before, after, type(instance).__name__, step)
    return result


def _w_save(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    result = wrapped(*args, **kwargs)
    rec = capturing()
    if rec is not None:
        obj = args[0] if args else kwargs.get("obj")
        f = args[1] if len(args) > 1 else kwargs.get("f")
        import torch

        if isinstance(obj, torch.nn.Module | Mapping):
            guarded("torch.save", rec.on_save, obj, f)
    return result


def _w_load(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    result = wrapped(*args, **kwargs)
    rec = capturing()
    if rec is not None:
        f = args[0] if args else kwargs.get("f")
        guarded("torch.load", rec.on_load, f, result)
    return result


def _excepthook_for(previous: Callable[..., Any]) -> Callable[..., Any]:
    def hook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        rec = active.recorder
        if rec is not None and not process.in_child:
            guarded("torch failure", rec.finish, exc)
        previous(exc_type, exc, tb)

    return hook


def patch_torch(patcher: Patcher) -> None:
    """Patch PyTorch (once)."""
    import torch
    import torch.nn.functional as nn_functional
    import torch.utils.data as tud
    import torch.utils.data.dataloader as tdl
    import torch.utils.data.dataset as tds
    from torch.nn.modules import loss as nn_loss
    from torch.optim import lr_scheduler

    if patcher.is_patched(torch.Tensor, "backward"):
        return
    patcher.replace(torch.Tensor, "backward", _backward_for)
    patcher.replace(nn_loss._Loss, "__call__", _loss_call_for)
    patcher.replace(tdl._BaseDataLoaderIter, "__next__", _next_for)
    patcher.wrap(tdl.DataLoader, "__init__", _w_loader_init)
    patcher.wrap(tdl.DataLoader, "__iter__", _w_loader_iter)
    # the same functions under two names each: whichever name a script uses
    patcher.wrap(tds, "random_split", _w_random_split)
    patcher.wrap(tud, "random_split", _w_random_split)
    patcher.wrap(torch, "save", _w_save)
    patcher.wrap(torch.serialization, "save", _w_save)
    patcher.wrap(torch, "load", _w_load)
    patcher.wrap(torch.serialization, "load", _w_load)
    patcher.replace(torch.nn.Module, "train", _module_train_for)
    for name in FUNCTIONAL_LOSSES:
        if hasattr(nn_functional, name):
            patcher.replace(nn_functional, name, _functional_loss_for(name))
    patcher.wrap(torch.optim.Optimizer, "__init__", _w_optimizer_init)
    # every scheduler class with a step of its own (ReduceLROnPlateau, SequentialLR, ...)
    for cls in vars(lr_scheduler).values():
        if isinstance(cls, type) and issubclass(cls, lr_scheduler.LRScheduler) and "step" in vars(cls):
            patcher.wrap(cls, "step", _w_scheduler_step)
    rec = active.recorder
    if rec is not None:
        rec.arm_model_hooks()


def patch_failures(patcher: Patcher) -> None:
    """End the training (and execution) FAILED on an uncaught exception."""
    patcher.replace(sys, "excepthook", _excepthook_for)


def finish_at_exit() -> None:
    """Record what is pending when the interpreter exits."""
    rec = active.recorder
    if rec is not None and not process.in_child:
        guarded("torch finish", rec.finish)


__all__ = ["finish_at_exit", "patch_failures", "patch_torch"]
