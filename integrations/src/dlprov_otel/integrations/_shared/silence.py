"""Never silent: a process that imported an instrumented framework but trained nothing that
the instrumentation recognised says so once, at exit, with the explicit API line to add.

An integration calls :func:`expect_training` when it is instrumented, :func:`training_seen`
when it recognises a training (an epoch, a fit, a step), and :func:`stop_expecting` when it is
uninstrumented. At exit, for each framework still expected, imported (one of its modules is in
``sys.modules``) and never seen training, one line goes to stderr. ``DLPROV_QUIET=1`` turns the
line off. Worker processes (DataLoader workers, forked or spawned) never print it.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import sys
import threading
from dataclasses import dataclass

QUIET_ENV = "DLPROV_QUIET"
_TRUE = ("1", "true", "yes", "on")


@dataclass
class _Expected:
    modules: tuple[str, ...]
    hint: str
    pid: int
    seen: bool = False
    said: bool = False


_lock = threading.Lock()
_expected: dict[str, _Expected] = {}
_registered = False


def expect_training(framework: str, modules: tuple[str, ...], hint: str) -> None:
    """Warn at exit unless :func:`training_seen` (``framework``) is called by then."""
    global _registered
    with _lock:
        old = _expected.get(framework)
        _expected[framework] = _Expected(tuple(modules), hint, os.getpid(), seen=bool(old and old.seen))
        if not _registered:
            atexit.register(warn_unrecognised)
            _registered = True


def training_seen(framework: str) -> None:
    """The integration recognised a training of ``framework`` (cheap; call as often as needed)."""
    entry = _expected.get(framework)
    if entry is not None and not entry.seen:
        entry.seen = True


def stop_expecting(framework: str) -> None:
    """The integration was uninstrumented: no warning for it."""
    with _lock:
        _expected.pop(framework, None)


def unrecognised() -> list[str]:
    """The lines :func:`warn_unrecognised` would print now (imported, expected, never seen)."""
    if multiprocessing.parent_process() is not None:
        return []  # a worker (DataLoader workers started by spawn): its parent trains, or says so
    lines = []
    with _lock:
        entries = list(_expected.items())
    for framework, e in entries:
        if e.seen or e.said or e.pid != os.getpid():
            continue
        if not any(m in sys.modules for m in e.modules):
            continue
        lines.append(
            f"DLProv: {framework} was imported and instrumented, but no training was recognised, "
            f"so nothing was recorded for it; add the explicit API: {e.hint}"
        )
    return lines


def warn_unrecognised() -> None:
    """Print each framework's line once (at exit)."""
    if os.environ.get(QUIET_ENV, "").strip().lower() in _TRUE:
        return
    try:
        for line in unrecognised():
            sys.stderr.write(line + "\n")
        with _lock:
            for e in _expected.values():
                if e.pid == os.getpid():
                    e.said = True
        sys.stderr.flush()
    except Exception:  # stderr closed at exit: nothing more to say
        pass


__all__ = ["QUIET_ENV", "expect_training", "stop_expecting", "training_seen", "unrecognised", "warn_unrecognised"]
