"""Whether a RUNNING execution still runs: one whose spans stopped coming and whose processes
(all on this host) are gone is shown as killed."""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Sequence
from typing import Any

from .. import semconv
from .objects import Execution, Process

KILLED = "KILLED"
# A RUNNING execution is shown as killed when no span arrived for this long and none of its
# processes is alive on this host.
DEFAULT_KILLED_AFTER_S = 60.0


def killed_after_s() -> float:
    """Seconds without spans before a RUNNING run whose process is gone counts as killed."""
    raw = os.environ.get("DLPROV_UI_KILLED_AFTER")
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_KILLED_AFTER_S
    except ValueError:
        return DEFAULT_KILLED_AFTER_S


def now() -> dt.datetime:
    # the store keeps naive UTC timestamps
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def seconds(a: Any, b: Any) -> float | None:
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return max(0.0, (b - a).total_seconds())
    return None


def _process_alive(pid: int, started_at: dt.datetime | None) -> bool:
    """Whether ``pid`` still runs here and is the process that started the execution."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    except OSError:
        return True  # cannot tell: do not call it dead
    if started_at is None:
        return True
    try:  # a reused pid belongs to a process that started after the run did
        with open(f"/proc/{pid}/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            boot = next(float(line.split()[1]) for line in f if line.startswith("btime"))
        began = boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return True
    return began <= started_at.replace(tzinfo=dt.UTC).timestamp() + 60


def effective_status(status: str | None, idle_s: float | None, processes: Sequence[dict[str, Any] | Process]) -> str:
    """The recorded status, or ``KILLED`` for a RUNNING run that went quiet and whose processes
    (all on this host) are gone. Runs on other hosts stay RUNNING: we cannot look there."""
    status = status or semconv.RUNNING
    if status != semconv.RUNNING or idle_s is None or idle_s < killed_after_s() or not processes:
        return status
    procs = [
        p if isinstance(p, dict) else {"host_name": p.host_name, "pid": p.pid, "started_at": p.started_at}
        for p in processes
    ]
    here = socket.gethostname()
    if any(p.get("host_name") != here or not p.get("pid") for p in procs):
        return status
    if any(_process_alive(int(p["pid"]), p.get("started_at")) for p in procs):
        return status
    return KILLED


def run_state(e: Execution, processes: Sequence[Process], last: dt.datetime | None, at: dt.datetime) -> dict[str, Any]:
    """Status (killed detected), times and idleness of an execution; ``_end`` is when it ended
    (or, killed, went quiet)."""
    idle = seconds(last, at)
    status = effective_status(e.status, idle, processes)
    running = (e.status or semconv.RUNNING) == semconv.RUNNING
    # a killed run ended with its last span; a running one lasts until now
    end = e.end_time if not running else (last if status == KILLED else None)
    return {
        "status": status,
        "recorded_status": e.status,
        "start_time": e.start_time,
        "end_time": e.end_time,
        "last_activity": last,
        "duration_s": seconds(e.start_time, end or at),
        "idle_s": idle,
        "_end": end,
    }


__all__ = ["DEFAULT_KILLED_AFTER_S", "KILLED", "effective_status", "killed_after_s", "run_state"]
