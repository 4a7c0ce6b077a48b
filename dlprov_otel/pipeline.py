"""The configured recording pipeline of a process: provider, journal, span builder, processor,
exporter, and what it reports (``flush``, ``stats``); built by :func:`dlprov_otel.configure`."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from . import drain, recipe
from .journal import Journal
from .processor import LosslessSpanProcessor
from .recorder import Recorder
from .replay import read_back, replay_orphans

logger = logging.getLogger("dlprov_otel.tracing")
TRACER_NAME = "dlprov_otel"


@dataclass
class Telemetry:
    """The configured pipeline: provider, processor and where spans go."""

    provider: TracerProvider
    processor: LosslessSpanProcessor
    target: str  # store URL or OTLP endpoint
    recorder: Recorder
    pending_store: Any = None  # a PendingStore when exporting in-process
    exporter: Any = None
    replay: tuple[threading.Thread, threading.Event] | None = None  # of dead processes' journals
    spool_dir: Any = None

    @property
    def store(self) -> Any:
        """The Store when exporting in-process (waits for it to open), else ``None``."""
        return self.pending_store.result() if self.pending_store is not None else None

    @property
    def tracer(self) -> trace.Tracer:
        return self.provider.get_tracer(TRACER_NAME)

    def stats(self) -> dict[str, Any]:
        """What happened to what was recorded: journalled, stored, pending, quarantined, ..."""
        s = self.processor.stats.as_dict()
        journal = self.recorder.journal
        s["emitted"] = self.recorder.emitted
        s["journalled"] = journal.records - 1 if journal is not None else 0  # less the header
        s["journal_write_failures"] = journal.failed_writes if journal is not None else 0
        s["journal"] = str(journal.path) if journal is not None else None
        s["stored"] = s["exported"]
        s["pending"] = (journal.pending if journal is not None else 0) or s["pending"]
        return s

    def flush(self, timeout: float = 30.0) -> bool:
        """Export everything recorded so far; True only when all of it is stored (queryable)."""
        deadline = time.monotonic() + timeout
        recipe.wait_background(min(timeout, recipe.END_WAIT))  # a run's recipe, being read, is recorded so far
        journal = self.recorder.journal
        end = journal.offset if journal is not None else 0  # what other threads emit meanwhile is not waited for
        if not self.recorder.drain(timeout):
            return False
        ok = self.processor.force_flush(int(max(0.0, deadline - time.monotonic()) * 1000))
        return ok and (journal is None or journal.committed_below(end))

    def shutdown(self, *, at_exit: bool = False) -> None:
        """Export everything and close. ``at_exit``: the process ends next, so a lazy embedded
        store it never opened is left to a drainer (:mod:`dlprov_otel.drain`)."""
        if at_exit and self._hand_off():
            return
        self._end_replay()
        self.recorder.stop(self.processor.shutdown_timeout)
        self.provider.shutdown()
        journal = self.recorder.journal
        if journal is not None:
            journal.close(delete=journal.pending == 0 and self._read_back(journal))

    def _end_replay(self) -> None:
        """What dead processes left is stored before this process ends (a short script that only
        configured DLProv would otherwise end its replay half-way), unless the target is
        failing: then the replay stops at its next failure."""
        if self.replay is not None:
            thread, give_up = self.replay
            give_up.set()
            thread.join(self.processor.shutdown_timeout)

    def _hand_off(self) -> bool:
        """Leave the journal to a drainer (:mod:`dlprov_otel.drain`) when the embedded store was
        never opened (exiting then costs no MonetDB start, write or close), or when it is failing
        now (held by another process, a full disk: embedded MonetDB does not recover in the
        process that met it, a new process does). False: shut down as usual."""
        pending, journal = self.pending_store, self.recorder.journal
        if (
            pending is None
            or not pending.url.startswith("monetdbe:/")
            or journal is None
            or journal.failed_writes
            or self.spool_dir is None
            or not drain.enabled()
        ):
            return False
        failing = pending.started
        if failing and not self.processor.failing():
            return False
        if self.replay is not None and not failing:
            return False
        self._end_replay()
        self.recorder.stop(self.processor.shutdown_timeout)
        if journal.failed_writes or not self.processor.hand_off(failing=failing):
            return False  # the usual shutdown goes on (the recorder is stopped already)
        self.provider.shutdown()
        if failing:
            try:
                pending.close()  # a broken embedded connection: the drainer opens a new one
            except Exception as exc:
                logger.debug("DLProv: closing the failing store: %s", exc)
        if journal.pending == 0 and not failing:
            journal.close(delete=True)  # nothing was recorded: no drainer
            return True
        journal.close(delete=False)
        if failing:
            logger.warning(
                "DLProv: the provenance store %s still fails (%s); a drainer stores the %d journalled span(s) "
                "once it can (log: %s)",
                pending.url, getattr(self.exporter, "last_error", None), journal.pending,
                drain.log_path(self.spool_dir),
            )
        drain.hand_off(pending.url[len("monetdbe:") :], self.spool_dir)
        return True

    def _read_back(self, journal: Journal) -> bool:
        """Every span of the journal is in the store (or acknowledged by the collector)."""
        try:
            return read_back(self.exporter, journal.path, self.processor.quarantined_keys)
        except Exception as exc:
            logger.warning("DLProv: could not read the journal's spans back (%s); kept %s", exc, journal.path)
            return False



def open_journal(spool_dir: Any, target: str, resource: Resource) -> Journal | None:
    """This process's journal, or None (logged) when it cannot be created: recording goes on."""
    if os.environ.get("DLPROV_JOURNAL", "1").lower() in ("0", "false", "no", "off"):
        return None
    try:
        return Journal(spool_dir, target, resource)
    except OSError as exc:
        logger.error("DLProv: no provenance journal (%s): spans are exported but not crash-proof", exc)
        return None


def checkpoint(journal: Journal):
    def commit(spans: Sequence[Any]) -> None:
        journal.commit([(s.context.trace_id, s.context.span_id) for s in spans])

    return commit


def replay_orphans_in_background(
    spool_dir: Any, target: str, exporter: SpanExporter
) -> tuple[threading.Thread, threading.Event]:
    """Store what dead processes journalled for this target and did not see stored; the event
    makes it stop at its next failure (set when this process shuts down)."""
    give_up = threading.Event()
    thread = threading.Thread(
        target=replay_orphans,
        args=(spool_dir, target, exporter),
        kwargs={"give_up": give_up},
        name="dlprov-journal-replay",
        daemon=True,
    )
    thread.start()
    return thread, give_up


