"""The recording path on the training thread: journal first, spans built off the thread.

A dataset emission (one epoch row, one learning-rate change, ...) costs the caller a
``marshal`` and one ``os.write`` to the journal (:mod:`dlprov_otel.journal`) plus a queue
put; a background thread then builds the real OpenTelemetry span, with the same ids and
times, so every span processor of the provider still sees every span. Spans created the
ordinary way (executions, tasks, dataflow specifications) are journalled when they end, by
:class:`JournalProcessor`, the provider's first processor.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import secrets
import threading
import time
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from .journal import Journal

logger = logging.getLogger(__name__)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


class SystemRandomIdGenerator(IdGenerator):
    """Trace and span ids from the OS's entropy.

    The SDK's default draws from the ``random`` module, which training scripts seed for
    reproducibility (``random.seed(42)``): two runs would then share ids, and the store, which
    is idempotent on (trace id, span id), would take the second run for a duplicate.

    The span builder thread may impose the next span id (the one already journalled).
    """

    def __init__(self) -> None:
        self._forced = threading.local()

    def force_next_span_id(self, span_id: int) -> None:
        self._forced.span_id = span_id

    def generate_span_id(self) -> int:
        forced = getattr(self._forced, "span_id", 0)
        if forced:
            self._forced.span_id = 0
            return forced
        return new_span_id()

    def generate_trace_id(self) -> int:
        while True:
            value = _ids.getrandbits(128)
            if value != trace.INVALID_TRACE_ID:
                return value


# A generator of our own, seeded from the OS's entropy (and again in a forked child): scripts
# that seed ``random`` do not touch it, and no id costs a system call (``secrets`` reads
# ``os.urandom`` each time, up to a millisecond on a loaded machine).
_ids = random.Random(secrets.token_bytes(32))
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _ids.seed(secrets.token_bytes(32)))


def new_span_id() -> int:
    while True:
        value = _ids.getrandbits(64)
        if value != trace.INVALID_SPAN_ID:
            return value


class JournalProcessor(SpanProcessor):
    """Journals every span that ends, except those the builder made from journal records."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.built_here = threading.local()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if getattr(self.built_here, "flag", False) or not span.context.trace_flags.sampled:
            return
        self.journal.append_readable(span)

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class Recorder:
    """Journal + span builder of one pipeline."""

    def __init__(self, tracer: trace.Tracer, ids: SystemRandomIdGenerator, journal: Journal | None) -> None:
        self.tracer = tracer
        self.ids = ids
        self.journal = journal
        self.journal_processor = JournalProcessor(journal) if journal is not None else None
        self.emitted = 0
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="dlprov-span-builder", daemon=True)
        self._thread.start()

    # -- the caller's thread ----------------------------------------------------------------
    def emit(self, parent: SpanContext, name: str, attributes: dict[str, Any]) -> None:
        """A dataset emission: journal it, then let the builder make its span."""
        now = time.time_ns()
        span_id = new_span_id()
        if self.journal is not None:
            self.journal.append_span(parent.trace_id, span_id, parent.span_id, name, now, now, attributes)
        self.emitted += 1
        if self._stopped:  # after shutdown: build it here, the processors export inline
            self._build((parent, span_id, name, now, attributes))
        else:
            self._queue.put((parent, span_id, name, now, attributes))

    # -- the builder thread ------------------------------------------------------------------
    def _run(self) -> None:
        if self.journal_processor is not None:
            self.journal_processor.built_here.flag = True
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            try:
                self._build(item)
            except Exception:  # never let one span stop the builder
                logger.exception("DLProv: building a provenance span failed")

    def _build(self, item: tuple) -> None:
        parent, span_id, name, ts, attributes = item
        ctx = trace.set_span_in_context(NonRecordingSpan(parent))
        self.ids.force_next_span_id(span_id)
        self.tracer.start_span(name, context=ctx, attributes=attributes, start_time=ts).end(end_time=ts)

    def drain(self, timeout: float) -> bool:
        """Wait until every emission so far has become a span."""
        if self._stopped or not self._thread.is_alive():
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        if self._stopped:
            return
        self.drain(timeout)
        self._stopped = True
        self._queue.put(None)
        self._thread.join(timeout=5)
        # whatever arrived between the drain and the stop is built here
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, tuple):
                self._build(item)
            elif isinstance(item, threading.Event):
                item.set()
