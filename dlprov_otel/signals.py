"""Signals that stop a job (SIGTERM from SLURM/Kubernetes, SIGHUP, SIGINT): chained, never swallowed.

:func:`install` puts a handler in front of the script's own for each signal, in the main
thread. When a signal arrives, what was recorded is flushed (the journal already holds it)
and then:

- the script's own handler runs, if it has one (it may stop gracefully: nothing is ended);
- with the default action (SIGTERM, SIGHUP), open executions are ended as TERMINATED with the
  signal's name, the pipeline is shut down, and the signal is delivered again with its default
  action, so the process ends exactly as it would have (same exit status);
- SIGINT's default handler raises ``KeyboardInterrupt`` as usual; the executions it unwinds
  are then ended as TERMINATED too.

An ignored signal stays ignored.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)
STOP_SIGNALS = tuple(s for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None), signal.SIGINT) if s is not None)

_installed: dict[int, Any] = {}  # signal -> the handler that was there before ours
received: int | None = None  # the stop signal (default action) that is ending this process


def install(on_stop: Callable[[int], None]) -> None:
    """Chain our handler in front of the current ones. ``on_stop(signum)`` runs (bounded by
    ``DLPROV_SIGNAL_TIMEOUT`` seconds, default 10) when the process is about to end by the
    signal's default action: it ends open executions and flushes."""
    if threading.current_thread() is not threading.main_thread() or os.environ.get(
        "DLPROV_SIGNALS", "1"
    ).lower() in ("0", "false", "no", "off"):
        return
    for signum in STOP_SIGNALS:
        try:
            previous = signal.getsignal(signum)
        except (ValueError, OSError):
            continue
        if signum in _installed or previous is signal.SIG_IGN or getattr(previous, "_dlprov", False):
            continue

        def handler(num: int, frame: Any, _previous: Any = previous) -> Any:
            global received
            default = _previous in (signal.SIG_DFL, None, signal.default_int_handler)
            if default:  # the script's own handler decides how (and whether) its run ends
                received = num
            if default and num != signal.SIGINT:
                # On a thread of its own: this handler interrupted the main thread somewhere,
                # maybe inside a lock that the flush needs. The journal already holds every
                # emission that returned, so a flush that cannot finish in time loses nothing.
                worker = threading.Thread(target=_run, args=(on_stop, num), name="dlprov-signal", daemon=True)
                worker.start()
                worker.join(_timeout())
            if callable(_previous):
                return _previous(num, frame)  # SIGINT's default raises KeyboardInterrupt
            if default:
                signal.signal(num, signal.SIG_DFL)
                if num == signal.SIGINT:
                    raise KeyboardInterrupt
                os.kill(os.getpid(), num)  # the default action: the process ends as it would have
            return None

        handler._dlprov = True  # type: ignore[attr-defined]
        try:
            signal.signal(signum, handler)
        except (ValueError, OSError):
            continue
        _installed[signum] = previous


def exit_as_interrupted() -> None:
    """At exit after an unhandled ``KeyboardInterrupt`` that our SIGINT handler raised, end the
    process by SIGINT, as Python means to (a C extension that runs code during finalization can
    reset the interpreter's own flag for this and leave exit status 1 instead)."""
    if received == signal.SIGINT and isinstance(getattr(sys, "last_value", None), KeyboardInterrupt):
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)


def _run(on_stop: Callable[[int], None], num: int) -> None:
    try:
        on_stop(num)
    except Exception:  # a provenance failure never changes how the process stops
        logger.exception("DLProv: handling %s failed", name(num))


def _timeout() -> float:
    try:
        return float(os.environ.get("DLPROV_SIGNAL_TIMEOUT", "10"))
    except ValueError:
        return 10.0


def uninstall() -> None:
    """Put the handlers back that were there before :func:`install` (where ours is still set)."""
    for signum, previous in list(_installed.items()):
        try:
            if getattr(signal.getsignal(signum), "_dlprov", False):
                signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        except (ValueError, OSError):
            pass
        _installed.pop(signum, None)


def name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


_stop_hooks: list[Callable[[], Any]] = []


def register_at_stop(fn: Callable[[], Any]) -> None:
    """Call ``fn`` when a stop signal ends the process (SIGTERM/SIGHUP with the default action
    skip ``atexit``): integrations record what they hold (an epoch waiting for its end)."""
    if fn not in _stop_hooks:
        _stop_hooks.append(fn)


def unregister_at_stop(fn: Callable[[], Any]) -> None:
    if fn in _stop_hooks:
        _stop_hooks.remove(fn)


def run_stop_hooks() -> None:
    for fn in list(_stop_hooks):
        try:
            fn()
        except Exception as exc:  # a hook never keeps the process from ending
            logger.warning("DLProv: %s at a stop signal failed: %s", getattr(fn, "__name__", fn), exc)
