"""The drain lock of an embedded store: held while a detached drainer (:mod:`dlprov_otel.drain`)
stores what a process that has just exited journalled.

A training process that never needed its embedded store opened (a short run) hands its journal
to a drainer at exit instead of opening MonetDB itself. The exiting process takes this lock
before it starts the drainer and the drainer inherits it, so there is no moment at which the
journal waits and the lock is free. Whoever opens the store (the CLI, a test, the dashboard,
the next run) first waits for the lock to be released, and then finds every row stored.

The lock is an ``flock`` on ``.dlprov-drain.lock`` inside the store's directory (MonetDB
leaves files it does not know alone). A process that ends while another drainer holds it
starts a drainer that waits its turn: from before its own attempt at the lock until it has it,
that one holds a shared ``flock`` on ``.dlprov-drain.queue``, and a reader waits for both, so
the store never looks free between two drainers (two runs that end close together).

A drainer that cannot open the store (a dashboard holds it) writes ``blocked`` into the lock
file while it waits to try again; a reader that finds it so, and the store held by another
process now, does not wait for it: it would meet the same holder, and says so at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

LOCK_NAME = ".dlprov-drain.lock"
QUEUE_NAME = ".dlprov-drain.queue"  # shared by drainers waiting for the lock
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
            os.ftruncate(fd, 0)  # no state of a drainer before this one
            return fd
        except OSError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(_POLL_S)


def enqueue(store_dir: str | os.PathLike[str], wait: float = 2.0) -> int | None:
    """Join the drainers waiting for the lock (making the store's directory); its file
    descriptor (close it once the lock is held), or None if that took over ``wait`` seconds.
    Readers wait while any waiter holds it."""
    path = Path(store_dir) / QUEUE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # only readers' probes (microseconds) exclude it
            return fd
        except OSError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.001)


def acquire_queued(store_dir: str | os.PathLike[str]) -> tuple[int | None, int | None]:
    """The lock if it is free, else a place in the queue: ``(lock_fd, None)`` or
    ``(None, queue_fd)`` (``(None, None)``: neither, the drainer waits unseen). The queue is
    joined before the lock is tried, so there is no moment at which a reader sees neither."""
    queue = enqueue(store_dir)
    try:
        fd = acquire(store_dir)
    except OSError:
        if queue is not None:
            os.close(queue)
        raise
    if fd is None:
        return None, queue
    if queue is not None:
        os.close(queue)
    return fd, None


BLOCKED = b"blocked"


def set_blocked(fd: int, blocked: bool) -> None:
    """(The drainer holding the lock ``fd``) waiting to try a store that another process
    holds, or not (cleared before each attempt)."""
    with contextlib.suppress(OSError):
        if blocked:
            os.pwrite(fd, BLOCKED, 0)
        else:
            os.ftruncate(fd, 0)


def _blocked_by_holder(store_dir: str | os.PathLike[str]) -> bool:
    """The drainer waits for a store that another process holds now: a reader would too."""
    try:
        with open(lock_file(store_dir), "rb") as f:
            if f.read(len(BLOCKED)) != BLOCKED:
                return False
    except OSError:
        return False
    return store_held(store_dir)


def store_held(store_dir: str | os.PathLike[str]) -> bool:
    """MonetDB's own lock of the store (``.gdk_lock``, POSIX ``lockf``) is held by another
    process. (Probing it from the process that has the store open would release the lock.)"""
    try:
        fd = os.open(Path(store_dir) / ".gdk_lock", os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def mark_held(store_dir: str | os.PathLike[str]) -> None:
    """This process holds the lock (inherited): its own opening of the store must not wait."""
    _held_here.add(os.path.realpath(store_dir))


def held_by_drainer(store_dir: str | os.PathLike[str]) -> bool:
    """A drainer (another process) is storing into this store now, or waits to."""
    if os.path.realpath(store_dir) in _held_here:
        return False
    return _locked(lock_file(store_dir), fcntl.LOCK_SH) or _locked(Path(store_dir) / QUEUE_NAME, fcntl.LOCK_EX)


def _locked(path: Path, probe: int) -> bool:
    """Another open file holds a lock on ``path`` that conflicts with ``probe``."""
    if not path.exists():
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, probe | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)  # also releases the lock taken just now


def wait_released(store_dir: str | os.PathLike[str], timeout: float | None = None) -> bool:
    """Wait until no drainer holds the store (at most ``timeout`` s, default
    ``DLPROV_DRAIN_WAIT`` or 120 s); True when it is free (or never was held). False at once
    when the drainer itself waits for another process that holds the store now."""
    if timeout is None:
        with contextlib.suppress(ValueError):
            timeout = float(os.environ.get("DLPROV_DRAIN_WAIT", WAIT_S))
    deadline = time.monotonic() + (WAIT_S if timeout is None else timeout)
    while held_by_drainer(store_dir):
        if time.monotonic() >= deadline or _blocked_by_holder(store_dir):
            return False
        time.sleep(_POLL_S)
    return True
