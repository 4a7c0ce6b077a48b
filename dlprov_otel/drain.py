"""The hand-off of an embedded store at exit: a detached drainer stores what a run journalled.

Opening embedded MonetDB costs a process 0.3-0.5 s (importing it, starting the database,
creating or checking the catalog, closing it at exit). A run configured for an embedded store
therefore opens it lazily (:class:`~dlprov_otel.store.PendingStore`): when the store is asked
for (``get_store()``, ``flush()``), when a batch fills, or ``DLPROV_STORE_DELAY`` seconds
into the run. A run that ends before any of these never opens it: at exit its journal (which
holds every span already) is closed and handed to a drainer, a detached ``python -m
dlprov_otel.drain`` at low priority, which stores it (the same replay as ``dlprov replay``:
read back, then removed) while the run's process is already gone.

The exiting process takes the store's drain lock (:mod:`dlprov_otel.store.drainlock`) before
it starts the drainer, which inherits it; whoever opens the store waits for that lock first,
so a query right after the run sees every row. If the drainer cannot start, the journal stays
and the next DLProv process that opens the store (or ``dlprov replay``) stores it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

from .journal import journal_root
from .store import drainlock

logger = logging.getLogger(__name__)
PATIENCE_S = 600.0  # how long a drainer waits for a store another process holds
LOG_MAX_BYTES = 1 << 20
# The drainer's first lines: wait (without importing anything) until the exiting process is
# gone, lower its priority, then run this module.
_BOOT = (
    "import os,sys\n"
    "a=sys.argv\n"
    "'--wait-fd' in a and os.read(int(a[a.index('--wait-fd')+1]),1)\n"
    "os.nice(10)\n"
    "from dlprov_otel.drain import main\n"
    "sys.exit(main(a[1:]))\n"
)
_exit_pipes: list[int] = []  # write ends, closed by the kernel when this process ends


def enabled() -> bool:
    """``DLPROV_HANDOFF`` (default on) and an interpreter to start."""
    return bool(sys.executable) and os.environ.get("DLPROV_HANDOFF", "1").lower() not in ("0", "false", "no", "off")


def _child_env() -> dict[str, str]:
    """This environment, without OpenTelemetry's auto-instrumentation (its sitecustomize would
    instrument the drainer itself)."""
    env = dict(os.environ)
    path = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and "auto_instrumentation" not in p]
    if path:
        env["PYTHONPATH"] = os.pathsep.join(path)
    else:
        env.pop("PYTHONPATH", None)
    return env


def log_path(spool_dir: str | os.PathLike[str]) -> Path:
    """Where drainers write what they did."""
    return journal_root(spool_dir) / "drain.log"


def hand_off(store_dir: str, spool_dir: str | os.PathLike[str]) -> bool:
    """Start a drainer for the embedded store in ``store_dir``; True when it started."""
    fd = queue = wait_r = None
    log = None
    try:
        # None: another drainer runs; ours waits for it, in the queue readers also wait for
        fd, queue = drainlock.acquire_queued(store_dir)
        # the drainer starts working only when this process is gone (the pipe's write end
        # closes with it): it never competes with this process's own exit
        wait_r, wait_w = os.pipe()
        _exit_pipes.append(wait_w)
        cmd = [sys.executable, "-c", _BOOT, "--wait-fd", str(wait_r)]
        cmd += ["--store", store_dir, "--spool", os.fspath(spool_dir)]
        passed = [wait_r]
        if fd is not None:
            cmd += ["--lock-fd", str(fd)]
            passed.append(fd)
        if queue is not None:
            cmd += ["--queue-fd", str(queue)]
            passed.append(queue)
        path = log_path(spool_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            if path.stat().st_size > LOG_MAX_BYTES:
                path.replace(path.with_suffix(".log.1"))  # one older log is kept
        log = open(path, "ab")  # noqa: SIM115 - handed to the child
        subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=passed,
            start_new_session=True,  # outlives the run's process group
            env=_child_env(),
            close_fds=True,
        )
        return True
    except OSError as exc:
        logger.warning("DLProv: could not start the drainer (%s); the journal is kept for the next process", exc)
        return False
    finally:
        if wait_r is not None:
            os.close(wait_r)
        if fd is not None:
            os.close(fd)  # the drainer holds the lock now
        if queue is not None:
            os.close(queue)  # (or its place in the queue)
        if log is not None:
            log.close()


RETRY = 75  # exit status of an attempt that met a failing store (EX_TEMPFAIL)


def drain(store_dir: str, spool_dir: str) -> int:
    """One attempt at storing every journal of a stopped process for this store: 0 when all
    are stored, ``RETRY`` when the store failed (held by another process, a full disk)."""
    from .exporter import MonetDBSpanExporter
    from .journal import orphans
    from .replay import replay_orphans
    from .store import describe, normalize_url, open_store

    url = normalize_url(store_dir)
    if not orphans(spool_dir, describe(url)):  # the drainer before this one stored them all
        logger.info("DLProv drainer: nothing left to store into %s", store_dir)
        return 0
    try:
        store = open_store(url)
    except Exception as exc:  # held by a dashboard, a disk still full, ...
        logger.warning("DLProv drainer: cannot open %s yet (%s)", store_dir, exc)
        return RETRY
    give_up = threading.Event()
    give_up.set()  # stop at the first failure: embedded MonetDB recovers in a new process only
    exporter = MonetDBSpanExporter(store=store)
    try:
        result = replay_orphans(spool_dir, describe(store.url), exporter, give_up=give_up)
    finally:
        with contextlib.suppress(Exception):
            store.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)  # this attempt and those before it (exec keeps it)
    logger.info(
        "DLProv drainer: stored %d span(s) from %d journal(s) into %s%s (CPU %.2f s)",
        result.spans, result.journals, store_dir,
        f"; {result.kept} kept ({exporter.last_error})" if result.kept else "",
        usage.ru_utime + usage.ru_stime,
    )
    return RETRY if result.kept else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dlprov_otel.drain", description=__doc__.splitlines()[0])
    p.add_argument("--store", required=True, help="the embedded store's directory")
    p.add_argument("--spool", required=True, help="the spool directory holding the journals")
    p.add_argument("--lock-fd", type=int, help="the drain lock, inherited from the exiting process")
    p.add_argument("--queue-fd", type=int, help="a place among the drainers waiting for the lock (inherited)")
    p.add_argument("--wait-fd", type=int, help="a pipe that closes when the exiting process is gone")
    p.add_argument("--until", type=float, help="(a retry) give up at this time (seconds since the epoch)")
    p.add_argument("--backoff", type=float, default=0.5, help="(a retry) seconds before the next attempt")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=f"%(asctime)s drainer[{os.getpid()}] %(message)s")
    logging.getLogger("dlprov_otel").setLevel(logging.INFO)
    if args.wait_fd is not None:
        with contextlib.suppress(OSError):
            os.close(args.wait_fd)
    until = args.until if args.until is not None else time.time() + PATIENCE_S
    fd = args.lock_fd
    if fd is None:
        fd = drainlock.acquire(args.store, wait=PATIENCE_S)
        if args.queue_fd is not None:
            os.close(args.queue_fd)  # out of the queue: holding the lock (or giving up)
        if fd is None:
            logger.error("DLProv drainer: another drainer holds %s; leaving the journals to it", args.store)
            return 1
    drainlock.mark_held(args.store)
    drainlock.set_blocked(fd, False)
    rc = drain(str(Path(args.store)), args.spool)
    if rc != RETRY:
        return rc
    drainlock.set_blocked(fd, True)  # readers need not wait for this drainer if the holder stays
    if time.time() + args.backoff > until:
        logger.error("DLProv drainer: gave up on %s; the journals are kept for the next process "
                     "(or `dlprov replay`)", args.store)
        return rc
    time.sleep(args.backoff)
    # the next attempt in a fresh process (the same pid, the lock kept across exec)
    os.set_inheritable(fd, True)
    cmd = [sys.executable, "-c", _BOOT, "--store", args.store, "--spool", args.spool, "--lock-fd", str(fd),
           "--until", repr(until), "--backoff", repr(min(args.backoff * 2, 10.0))]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, cmd)
    return rc  # not reached


if __name__ == "__main__":
    sys.exit(main())
