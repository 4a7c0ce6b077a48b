"""The drain lock of an embedded store: held while a detached drainer (:mod:`dlprov_otel.drain`)
stores what a process that has just exited journalled.

A training process that never needed its embedded store opened (a short run) hands its journal
to a drainer at exit instead of opening MonetDB itself. The exiting process takes this lock
before it starts the drainer and the drainer inherits it, so there is no moment at which the
journal waits and the lock is free. Whoever opens the store (the CLI, a test, the dashboard,
the next run) first waits for the lock to be released, and then finds every row stored.

The lock is an ``flock`` on ``.dlprov-drain.lock`` inside the store's directory (MonetDB
leaves files it does not know alone).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

LOCK_NAME = ".dlprov-drain.lock"
WAIT_S = 120.0  # default patience of a reader for a drainer (DLPROV_DRAIN_WAIT)
_POLL_S = 0.02
_held_here: set[str] = set()  # store directories whose drain lock this process holds


def lock_file(store_dir: str | os.PathLike[str]) -> Path:
    return Path(store_dir) / LOCK_NAME


def acquire(store_dir: str | os.PathLike[str], *, wait: float = 0.0) -> int | None:
    """Take the drain lock (making the store's directory); its file descriptor, or ``None``
    when another drainer still holds it after ``wait`` seconds."""
    path = lock_file(store_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(_POLL_S)


def mark_held(store_dir: str | os.PathLike[str]) -> None:
    """This process holds the lock (inherited): its own opening of the store must not wait."""
    _held_here.add(os.path.realpath(store_dir))


def held_by_drainer(store_dir: str | os.PathLike[str]) -> bool:
    """A drainer (another process) is storing into this store now."""
    path = lock_file(store_dir)
    if os.path.realpath(store_dir) in _held_here or not path.exists():
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)  # also releases a shared lock taken just now


def wait_released(store_dir: str | os.PathLike[str], timeout: float | None = None) -> bool:
    """Wait until no drainer holds the store (at most ``timeout`` s, default
    ``DLPROV_DRAIN_WAIT`` or 120 s); True when it is free (or never was held)."""
    if timeout is None:
        with contextlib.suppress(ValueError):
            timeout = float(os.environ.get("DLPROV_DRAIN_WAIT", WAIT_S))
    deadline = time.monotonic() + (WAIT_S if timeout is None else timeout)
    while held_by_drainer(store_dir):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_S)
    return True
