"""The recorder of this process: the instrumentor's while it is on (the patches feed it),
else one for the explicit API and hand-added Lightning callbacks."""

from __future__ import annotations

from .forks import process
from .recorder import Recorder


class _Active:
    recorder: Recorder | None = None  # the instrumented one (read per training step)
    standalone: Recorder | None = None


active = _Active()


def get_recorder() -> Recorder:
    """The recorder of this process (the instrumentor's, else a standalone one)."""
    if active.recorder is not None:
        return active.recorder
    if active.standalone is None:
        active.standalone = Recorder()
    return active.standalone


def capturing() -> Recorder | None:
    """The instrumented recorder when loops are captured now (not suspended, not a fork)."""
    rec = active.recorder
    if rec is None or process.in_child or rec.suspended:
        return None
    return rec


__all__ = ["active", "capturing", "get_recorder"]
