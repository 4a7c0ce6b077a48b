"""Epochs of loops without a DataLoader, and what the idle watcher asks.

Outside any DataLoader pass, the recorder delimits epochs by the conventions scripts follow:
a model switched between ``train()`` and ``eval()`` (or another model, one just loaded, put
in either phase) ends the phase; training steps that resume after an evaluation (losses
under ``eval()`` or ``no_grad()``) end the epoch. The watcher of :mod:`.idle` closes what
waits once no batch has come for a while.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .facts import reference
from .passes import Pass


class Phases:
    """The phase part of :class:`~.recorder.Recorder` (a mixin: it uses the recorder's
    ``lock``, ``_orphan``, ``_cur``, ``_stack``, ``pending_*``, ``validated`` and the pass
    endings)."""

    lock: threading.RLock
    _orphan: Pass
    _orphan_t0: float
    _cur: Pass
    _stack: list[Pass]
    _beats: int
    _phase: tuple[Any, bool] | None
    _idle_flushed: bool
    pending_epoch: dict[str, Any] | None
    pending_test: dict[str, Any] | None
    validated: bool
    logs_epochs: bool
    pending_logged: bool

    def _end_train_pass(self, p: Pass, batches: int | None, idle: float = 0.0) -> None:
        raise NotImplementedError

    def _end_eval_pass(self, p: Pass, batches: int | None) -> None:
        raise NotImplementedError

    def flush_pending(self) -> None:
        raise NotImplementedError

    # -- epochs without a DataLoader: train()/eval() switches, evaluations between steps ----------
    def _close_orphan(self, idle: float = 0.0) -> None:
        """End the steps and evaluations outside any DataLoader pass: an epoch (its row waits
        for the evaluation that follows) and/or an evaluation (a validation or a test)."""
        cur = self._orphan
        self._orphan = Pass()
        self._orphan_t0 = time.perf_counter()
        if not self._stack:
            self._cur = self._orphan
        self._beats += 1
        if cur.steps:
            self._end_train_pass(cur, None, idle)
        if cur.eval_calls:
            self._end_eval_pass(cur, None)

    def _resume_after_eval(self) -> None:
        cur = self._orphan
        if cur.steps - cur.mark >= 2 or not cur.steps:
            self._close_orphan()  # steps, then an evaluation: the epoch ended
        else:  # one step, then a loss under no_grad: a per-step metric, not an evaluation
            cur.eval_cpu_sum, cur.eval_losses, cur.eval_partial = 0.0, [], None
            cur.eval_n, cur.eval_calls, cur.correct, cur.total = 0, 0, None, 0
            cur.mark = cur.steps

    def on_phase(self, module: Any, training: bool) -> None:
        """``module.train()`` / ``module.eval()``: a switch of a model between the two phases
        (or to another model, one just loaded) ends the phase outside any DataLoader."""
        if self._stack or next(module.parameters(), None) is None:
            return  # DataLoader passes delimit epochs first; a loss or dropout module alone
        with self.lock:
            last = self._phase
            self._phase = (reference(module), training)
            if last is not None and last[0]() is module and last[1] == training:
                return  # the same phase again (train() called for every batch)
            cur = self._orphan
            if cur.steps or cur.eval_calls:
                self._close_orphan()
            else:
                self._beats += 1
                cur.t0 = time.perf_counter()

    # -- the idle watcher (see .idle) ------------------------------------------------------------
    def activity(self) -> tuple:
        cur = self._cur
        return (id(cur), cur.steps, cur.eval_calls, self._beats)

    def waiting(self) -> bool:
        return bool(self.pending_epoch is not None or self.pending_test is not None or self._orphan.eval_calls)

    def evaluation_expected(self) -> bool:
        if any(not q.steps for q in self._stack):
            return True  # an evaluation DataLoader pass has begun
        pe = self.pending_epoch
        if pe is not None and self.logs_epochs and not self.pending_logged:
            return True  # the script's log_epoch(...) for this epoch is still to come
        return pe is not None and self.validated and "val_samples" not in pe and not self._orphan.eval_calls

    def close_idle(self, seen: tuple, idle: float = 0.0) -> None:
        """Close what waits, unless a batch came since the watcher looked (``seen``)."""
        with self.lock:
            if self.activity() != seen:
                return
            if self._stack and any(q.steps for q in self._stack):
                return  # a training pass still under way
            cur = self._orphan
            if not self._stack and cur.eval_calls:
                if cur.steps and cur.steps - cur.mark < 2:
                    return  # a step, then a loss under no_grad: a per-step metric
                self._close_orphan(idle)
            flushed = self.pending_epoch is not None
            self.flush_pending()
            self._idle_flushed = self._idle_flushed or flushed


__all__ = ["Phases"]
