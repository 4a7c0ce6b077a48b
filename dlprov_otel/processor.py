"""A span processor that never drops a span.

OpenTelemetry's ``BatchSpanProcessor`` holds 2,048 spans and silently throws new ones away
when the queue is full, and gives up on a batch its exporter could not take. This one keeps
every span: the queue is large and, when full, makes the caller wait instead of dropping; a
batch that fails is retried with back-off (also while flushing and shutting down); a batch
the exporter refuses as bad data is split until the bad spans stand alone, and those are
quarantined with their error while the others go through. Committed spans are reported to
``on_exported`` (the journal's checkpoint). Without a journal, what still could not be
exported at shutdown is written to a spool file (``dlprov replay``). Counters are public.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

logger = logging.getLogger(__name__)


@dataclass
class ProcessorStats:
    """What happened to the spans that ended in this process."""

    queued: int = 0  # spans handed to the processor
    exported: int = 0  # spans the exporter accepted
    export_failures: int = 0  # failed export attempts (each is retried)
    retried_spans: int = 0  # spans that went through at least one retry
    blocked_waits: int = 0  # times a caller waited because the queue was full
    spooled: int = 0  # spans written to the spool at shutdown
    quarantined: int = 0  # spans the store refused as bad data, kept aside with their error
    kept_in_journal: int = 0  # spans left unexported at shutdown: the journal replays them
    dropped: int = 0  # spans lost: stays 0 unless even the spool failed
    dropped_in_forked_child: int = 0  # spans ended in a fork (DataLoader worker): not ours
    pending: int = 0  # spans waiting now

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class LosslessSpanProcessor(SpanProcessor):
    """Batches spans to an exporter on a background thread without ever dropping one.

    ``schedule_delay`` bounds how long a span waits before export (freshness); ``max_batch``
    bounds one export call; ``max_queue`` is the point where callers are made to wait.
    ``spool`` receives the spans left at shutdown when the exporter still fails, and a batch
    that kept failing for ``max_retry`` seconds.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        schedule_delay: float = 0.2,
        max_batch: int = 20_000,
        max_queue: int = 2_000_000,
        shutdown_timeout: float = 30.0,
        max_retry: float = 300.0,
        spool: Callable[[Sequence[ReadableSpan]], str] | None = None,
        on_exported: Callable[[Sequence[ReadableSpan]], None] | None = None,
        quarantine: Callable[[Sequence[ReadableSpan], str], str] | None = None,
        journaled: bool = False,
        max_backoff: float = 5.0,
        hold: float = 0.0,
    ) -> None:
        self.exporter = exporter
        self.schedule_delay = schedule_delay
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.shutdown_timeout = shutdown_timeout
        self.max_retry = max_retry
        self.spool = spool
        self.on_exported = on_exported
        self.quarantine = quarantine
        self.journaled = journaled  # a journal holds every span: nothing to spool at exit
        self.max_backoff = max_backoff
        # nothing is exported before this (monotonic) time unless a flush asks or the queue
        # fills a batch: a short run then never opens its store (see ``hand_off``)
        self.hold_until = time.monotonic() + hold if hold > 0 else 0.0
        self.handed_off = False
        self.stats = ProcessorStats()
        self.quarantined_keys: set[tuple[int, int]] = set()
        self._queue: collections.deque[ReadableSpan] = collections.deque()
        self._cond = threading.Condition()
        self._inflight = 0
        self._inflight_batch: list[ReadableSpan] = []
        self._failing = False  # the last export failed
        self._retry: list[list[ReadableSpan]] = []  # failed batches, retried in order
        self._flush_requests = 0
        self._stopping = False
        self._shutdown = False
        self._pid = os.getpid()
        self._warned = False
        self._thread = self._start_worker()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork_in_child)

    # -- SpanProcessor --------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if os.getpid() != self._pid:
            self.stats.dropped_in_forked_child += 1
            return
        if not span.context.trace_flags.sampled:
            return
        with self._cond:
            if self.handed_off:  # journalled: the drainer stores it
                self.stats.kept_in_journal += 1
                return
            if self._shutdown:
                # The provider is gone but the span still matters: export it inline.
                self._export_inline([span])
                return
            while len(self._queue) >= self.max_queue and not self._stopping:
                self.stats.blocked_waits += 1
                self._cond.notify_all()
                self._cond.wait(0.05)
            self._queue.append(span)
            self.stats.queued += 1
            if len(self._queue) >= self.max_batch:
                self._cond.notify_all()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Wait until every span is exported; True only when all of them were stored
        (none is still pending, spooled or quarantined)."""
        deadline = time.monotonic() + timeout_millis / 1000
        with self._cond:
            lost_before = self.stats.spooled + self.stats.quarantined + self.stats.dropped
            self._flush_requests += 1
            self._cond.notify_all()
            while self._queue or self._inflight or self._retry:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
            return self.stats.spooled + self.stats.quarantined + self.stats.dropped == lost_before

    def shutdown(self) -> None:
        if self._shutdown:
            return
        start = time.monotonic()
        while True:
            with self._cond:
                if not (self._queue or self._inflight or self._retry):
                    break
                # the store or collector is failing (also found out during this flush, e.g. when
                # OTLP's own retries to a collector that is down give up) and the journal holds
                # every span: do not hold the exit
                failing = self.journaled and bool(self._retry or self._failing)
            remaining = start + (min(self.shutdown_timeout, 5.0) if failing else self.shutdown_timeout)
            remaining -= time.monotonic()
            if remaining <= 0:
                break
            self.force_flush(int(min(remaining, 0.25) * 1000))
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=5)
        with self._cond:
            left = list(self._queue) + [s for b in self._retry for s in b]
            if self._thread.is_alive():  # an export still hangs: its batch is not stored either
                left += self._inflight_batch
            self._queue.clear()
            self._retry = []
            self._shutdown = True
        if left and self.journaled:
            self.stats.kept_in_journal += len(left)
            logger.warning(
                "DLProv: %d provenance spans could not be stored before exit; the journal keeps them and "
                "the next DLProv process that uses this store (or `dlprov replay`) stores them",
                len(left),
            )
        elif left:
            self._spool(left)
        self.exporter.shutdown()

    def exported_anything(self) -> bool:
        """An export was attempted (the exporter's target is in use)."""
        return bool(self.stats.exported or self.stats.export_failures or self._inflight or self.stats.quarantined)

    def failing(self) -> bool:
        """The last export failed, or a failed batch waits for its retry."""
        with self._cond:
            return self._failing or bool(self._retry)

    def hand_off(self, *, failing: bool = False) -> bool:
        """Stop without exporting: every span is in the journal, which a drainer stores after
        this process exits (spans exported already are stored once only). False (nothing
        changed) once an export has begun, unless ``failing`` and the exporter fails now."""
        with self._cond:
            if self._shutdown:
                return False
            if failing:
                if not self.failing():  # (the condition's lock is re-entrant)
                    return False
                left = sum(len(b) for b in self._retry) + self._inflight
                self._retry = []
            elif self.exported_anything() or self._retry:
                return False
            else:
                left = 0
            self.handed_off = True
            self._stopping = True
            left += len(self._queue)
            self._queue.clear()
            self.stats.kept_in_journal += left
            self.stats.pending = 0
            self._shutdown = True
            self._cond.notify_all()
        self._thread.join(timeout=5)
        return True

    # -- worker ---------------------------------------------------------------------------
    def _start_worker(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="dlprov-span-export", daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        backoff = 0.0
        next_try = 0.0  # monotonic time before which a failed batch is not retried
        failing_since: float | None = None
        while True:
            with self._cond:
                while True:
                    now = time.monotonic()
                    if backoff and now < next_try:
                        # back off for real: a flush or a shutdown wakes us, but does not
                        # make a failing store be hammered
                        if self._stopping:
                            break
                        self._cond.wait(next_try - now)
                        continue
                    if self._retry or self._stopping or len(self._queue) >= self.max_batch:
                        break
                    if self._queue and self._flush_requests:
                        break
                    if self.hold_until and now < self.hold_until and not self._stopping:
                        self._cond.wait(self.hold_until - now)
                        continue
                    self.hold_until = 0.0
                    self._cond.wait(self.schedule_delay)
                    if self._queue:
                        break
                if self._stopping and ((not self._queue and not self._retry) or backoff):
                    return
                if self._retry:  # a failed batch is retried alone, so a bad one cannot grow
                    batch = self._retry.pop(0)
                else:
                    batch = [self._queue.popleft() for _ in range(min(len(self._queue), self.max_batch))]
                    if not self._queue:
                        self._flush_requests = 0
                self._inflight = len(batch)
                self._inflight_batch = batch
            if not batch:
                continue
            ok = self._export(batch)
            permanent = not ok and bool(getattr(self.exporter, "permanent_failure", False))
            with self._cond:
                self._inflight = 0
                self._inflight_batch = []
                self._failing = not ok
                if ok:
                    # spans the collector refused for good (OTLP partial success): set aside
                    rejected = list(getattr(self.exporter, "rejected", None) or ())
                    if rejected:
                        self._quarantine(rejected, getattr(self.exporter, "rejected_error", "") or "rejected")
                    self.stats.exported += len(batch) - len(rejected)
                    backoff, failing_since = 0.0, None
                    self._committed(batch)
                elif permanent and len(batch) > 1:
                    # bad data somewhere in the batch: split it until the bad spans stand alone
                    half = len(batch) // 2
                    self._retry[:0] = [batch[:half], batch[half:]]
                elif permanent:
                    self._quarantine(batch, getattr(self.exporter, "last_error", None) or "refused by the store")
                    self._committed(batch)
                elif not self.journaled and failing_since is not None and (
                    time.monotonic() - failing_since > self.max_retry
                ):
                    # Without a journal, a batch refused for this long goes to the spool and
                    # lets the spans behind it pass.
                    self._spool(batch)
                    backoff, failing_since = 0.0, None
                else:
                    failing_since = failing_since or time.monotonic()
                    self._retry.insert(0, batch)
                    self.stats.retried_spans += len(batch)
                    backoff = min(max(backoff * 2, 0.1), self.max_backoff)
                    next_try = time.monotonic() + backoff
                self.stats.pending = len(self._queue) + sum(len(b) for b in self._retry)
                self._cond.notify_all()

    def _committed(self, batch: list[ReadableSpan]) -> None:
        if self.on_exported is not None:
            try:
                self.on_exported(batch)
            except Exception:  # the checkpoint is an optimisation; never stop exporting
                logger.debug("DLProv: journal checkpoint failed", exc_info=True)

    def _quarantine(self, batch: list[ReadableSpan], error: str) -> None:
        self.stats.quarantined += len(batch)
        self.quarantined_keys.update((s.context.trace_id, s.context.span_id) for s in batch)
        where = "nowhere (no quarantine set)"
        if self.quarantine is not None:
            try:
                where = self.quarantine(batch, error)
            except Exception as exc:
                where = f"nowhere ({exc})"
        logger.error("DLProv: %d provenance span(s) refused by the store as bad data (%s); kept in %s",
                     len(batch), error, where)

    def _export(self, batch: list[ReadableSpan]) -> bool:
        try:
            result = self.exporter.export(batch)
        except Exception as exc:  # the exporter must never take the worker down
            result = SpanExportResult.FAILURE
            self._warn_once(f"provenance export raised {type(exc).__name__}: {exc}")
        if result is not SpanExportResult.SUCCESS:
            self.stats.export_failures += 1
            self._warn_once("provenance export failed; keeping the spans and retrying")
            return False
        return True

    def _export_inline(self, spans: list[ReadableSpan]) -> None:
        if self._export(spans):
            self.stats.exported += len(spans)
            self._committed(spans)
        elif self.journaled:
            self.stats.kept_in_journal += len(spans)
        else:
            self._spool(spans)

    def _spool(self, spans: list[ReadableSpan]) -> None:
        if self.spool is None:
            self.stats.dropped += len(spans)
            logger.error("DLProv: %d provenance spans could not be exported and no spool is set", len(spans))
            return
        try:
            path = self.spool(spans)
        except Exception as exc:
            self.stats.dropped += len(spans)
            logger.error("DLProv: %d provenance spans lost, spool failed: %s", len(spans), exc)
            return
        self.stats.spooled += len(spans)
        logger.warning(
            "DLProv: %d provenance spans could not be exported; saved to %s (replay with `dlprov replay`)",
            len(spans),
            path,
        )

    def _warn_once(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            logger.warning("DLProv: %s", message)

    def _after_fork_in_child(self) -> None:
        # Spans queued before the fork belong to the parent, which exports them.
        self._queue = collections.deque()
        self._cond = threading.Condition()
        self._inflight = 0
        self._inflight_batch = []
        self._retry = []
