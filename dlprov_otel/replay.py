"""Replay of journals that dead processes left behind (see :mod:`dlprov_otel.journal`).

Runs by itself in the background of every DLProv process that opens a store or talks to an
endpoint (for that target's journals), and from ``dlprov replay``. A journal is removed only
after its spans were read back from the store (or acknowledged by the collector, which
acknowledges after its commit). Spans the store refuses as bad data are quarantined alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from . import journal
from .spool import quarantine_writer

logger = logging.getLogger(__name__)
BATCH = 5_000


@dataclass
class ReplayResult:
    journals: int = 0  # journals fully stored and removed
    spans: int = 0  # spans sent
    quarantined: int = 0
    kept: int = 0  # journals kept (store unreachable, or read-back incomplete)
    quarantined_keys: set = field(default_factory=set)


@contextlib.contextmanager
def _claim(path: Path) -> Iterator[bool]:
    """Hold the journal exclusively while replaying it, so two processes do not both replay."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _export(
    exporter: SpanExporter, spans: list[ReadableSpan], deadline: float, quarantine, result, give_up=None
) -> bool:
    """Export with back-off until ``deadline`` (or, once ``give_up`` is set, until the next
    failure); bad data is split down and quarantined."""
    backoff = 0.2
    pending = [spans]
    while pending:
        batch = pending.pop(0)
        while True:
            try:
                ok = exporter.export(batch) is SpanExportResult.SUCCESS
            except Exception as exc:
                logger.debug("replay export raised %s", exc)
                ok = False
            if ok:
                backoff = 0.2
                break
            if getattr(exporter, "permanent_failure", False):
                if len(batch) > 1:
                    half = len(batch) // 2
                    pending[:0] = [batch[:half], batch[half:]]
                else:
                    quarantine(batch, getattr(exporter, "last_error", None) or "refused by the store")
                    result.quarantined += 1
                    result.quarantined_keys.update((s.context.trace_id, s.context.span_id) for s in batch)
                break
            if time.monotonic() + backoff > deadline or (give_up is not None and give_up.is_set()):
                return False
            if give_up is not None:
                if give_up.wait(backoff):
                    return False
            else:
                time.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
    return True


def replay_journal(
    path: Path,
    exporter: SpanExporter,
    spool_dir: str | os.PathLike[str],
    *,
    deadline: float,
    result: ReplayResult,
    give_up: threading.Event | None = None,
) -> bool:
    """Replay one dead process's journal; True when it was stored, read back and removed."""
    with _claim(path) as mine:
        if not mine:
            return False
        _, spans = journal.load(path)
        quarantine = quarantine_writer(spool_dir)
        for i in range(0, len(spans), BATCH):
            if not _export(exporter, spans[i : i + BATCH], deadline, quarantine, result, give_up):
                result.kept += 1
                return False
            result.spans += min(BATCH, len(spans) - i)
        if not read_back(exporter, path, result.quarantined_keys):
            result.kept += 1
            return False
        journal.remove(path)
        result.journals += 1
        return True


def read_back(exporter: SpanExporter, path: Path, quarantined: set | frozenset = frozenset()) -> bool:
    """Every span of the journal is in the store (quarantined ones aside: they are kept in
    the quarantine file); an exporter that cannot read back (OTLP) was acknowledged after
    the collector's commit."""
    verify = getattr(exporter, "stored_keys", None)
    if verify is None:
        return True
    keys = journal.span_keys(path)
    missing = set(keys) - verify(keys) - set(quarantined)
    if missing:
        logger.error("DLProv: %d journalled span(s) are not in the store after replay; kept %s", len(missing), path)
        return False
    return True


def replay_orphans(
    spool_dir: str | os.PathLike[str],
    target: str | None,
    exporter: SpanExporter,
    *,
    patience: float = 600.0,
    paths: Sequence[Path] | None = None,
    give_up: threading.Event | None = None,
) -> ReplayResult:
    """Replay every journal of a dead process for ``target`` (all targets when None); keeps
    trying an unreachable store for ``patience`` seconds."""
    result = ReplayResult()
    deadline = time.monotonic() + patience
    for path in paths if paths is not None else journal.orphans(spool_dir, target):
        try:
            if give_up is not None and give_up.is_set() and result.kept:
                break  # the target is failing and the process is ending: the next one goes on
            if replay_journal(path, exporter, spool_dir, deadline=deadline, result=result, give_up=give_up):
                logger.info("DLProv: stored the spans a previous process journalled in %s", path)
        except Exception as exc:  # a replay never breaks the process that runs it
            result.kept += 1
            logger.warning("DLProv: replaying %s failed (%s); it is kept", path, exc)
    return result
