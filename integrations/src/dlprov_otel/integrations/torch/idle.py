"""Epoch rows within a second of the epoch's last batch, not when the next epoch starts.

An epoch's row waits after its training pass for the evaluation that may follow (its
``val_loss``) and for :func:`log_epoch`. A watcher thread, off the training thread, ends
that wait: when no training step, evaluation loss, DataLoader pass or train/eval switch has
happened for :data:`IDLE` seconds (and as many looks, :data:`TICK` apart), it closes the
evaluation in progress outside a DataLoader and emits the row (and the saves to files closed
since). The training thread pays nothing
for it: the watcher compares counters the patches keep anyway.

It waits longer (up to :data:`PATIENCE` seconds without a batch) when an evaluation is
expected: an evaluation DataLoader pass has begun, or earlier epochs of the training had a
validation and this one has none yet.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from typing import Any, Protocol

from .._shared.guard import report

IDLE = 0.5  # seconds without a batch that end an epoch's wait
PATIENCE = 30.0  # ... when an evaluation is under way or expected
TICK = 0.1  # how often the watcher looks while something waits
REST = 0.25  # ... while nothing does


class Watched(Protocol):
    lock: threading.RLock

    def activity(self) -> tuple: ...

    def waiting(self) -> bool: ...

    def evaluation_expected(self) -> bool: ...

    def close_idle(self, seen: tuple, idle: float = 0.0) -> None: ...

    def check_saves(self, final: bool = False) -> None: ...


class IdleWatcher:
    """One daemon thread per recorder and process (started at the first training)."""

    def __init__(self, rec: Watched) -> None:
        self._rec = rec
        self._pid: int | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._stop.clear()
        threading.Thread(target=self._run, name="dlprov-torch-epochs", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._pid = None

    def _run(self) -> None:
        rec = self._rec
        last: Any = None
        since = looked = time.monotonic()
        ticks = 0
        while not self._stop.is_set():
            try:
                rec.check_saves()
                if not rec.waiting():
                    last = None
                    self._stop.wait(REST)
                    continue
                now = time.monotonic()
                punctual, looked = now - looked < 2 * TICK, now
                sig = rec.activity()
                if sig != last:
                    last, since, ticks = sig, now, 0
                elif punctual:
                    # quiet for IDLE seconds *and* for as many looks that came on time: a
                    # process starved of CPU or of the GIL (a long C call elsewhere) gave the
                    # training thread no turn, so a late look proves nothing
                    ticks += 1
                    quiet = now - since
                    settled = quiet >= IDLE and ticks >= IDLE / TICK
                    if settled and (quiet >= PATIENCE or not rec.evaluation_expected()):
                        rec.close_idle(sig, quiet)
                        last = None
            except Exception as exc:  # the watcher never dies of provenance
                try:
                    report("torch epoch watcher", exc)
                except Exception:  # strict mode: no caller on this thread, so say it here
                    traceback.print_exc()
            self._stop.wait(TICK)


__all__ = ["IDLE", "PATIENCE", "IdleWatcher"]
