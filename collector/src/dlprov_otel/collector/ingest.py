"""OTLP ingest: decoded export requests into the store, acknowledged once committed.

:class:`Collector` is shared by the HTTP and gRPC front ends. It admits a bounded number of
requests at once (:class:`Overloaded` beyond), stores the spans of a request through the same
``Store.ingest`` as the in-process exporter (idempotent on span ids), and isolates the spans
that decode but cannot be stored (malformed, or claiming another run's execution: see
:mod:`.admission`; or refused by the store): they are saved to the reject directory
(replayable with ``dlprov replay --spool-dir``) and reported as an OTLP partial success whose
message ends with their ids (``[rejected: TRACE/SPAN ...]``, so a client sets exactly those
aside); the rest are stored.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from dlprov_otel import semconv, spool
from dlprov_otel.errors import DLProvError, SpecError, StoreError
from dlprov_otel.http import SharedStore, TokenCheck
from dlprov_otel.records import SpanRecord, from_otlp
from dlprov_otel.store import Store, default_store_url
from dlprov_otel.store.transient import TransientStoreError

from . import decode
from .admission import Admission
from .lean import LeanRequest
from .settings import Settings

logger = logging.getLogger("dlprov.collector")

# A batch that keeps failing span by span points at the store, not at the spans: stop
# bisecting after this many rejects and answer 503 so the sender retries it whole.
MAX_REJECTS = 64
_KIND_ORDER = {semconv.KIND_DATAFLOW: 0, semconv.KIND_EXECUTION_START: 1, semconv.KIND_EXECUTION: 2}


class Overloaded(DLProvError):
    """Too many requests in flight; the sender should retry shortly."""


@dataclass
class IngestResult:
    """What one export request did: spans received, newly stored, rejected."""

    received: int = 0
    stored: int = 0
    rejected: int = 0
    message: str = ""


class Collector:
    """The store owner shared by the HTTP and gRPC front ends."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stores = SharedStore(settings.store or default_store_url())
        self.auth = TokenCheck(settings.token)
        default_rejects = spool.default_spool_dir().parent / "rejected"
        self.reject_dir = Path(settings.reject_dir) if settings.reject_dir else default_rejects
        self._slots = threading.BoundedSemaphore(max(1, settings.max_inflight))
        self._counts_lock = threading.Lock()
        self.counts = {"requests": 0, "spans_received": 0, "spans_stored": 0, "spans_rejected": 0, "store_errors": 0}
        self.admission = Admission()

    def open(self) -> None:
        """Open the store now: errors that retrying will not cure (a locked or malformed store) raise."""
        self.stores.open()

    def close(self) -> None:
        """Close the store once an ingest in progress has committed."""
        self.stores.close()

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Admit one request, or raise :class:`Overloaded` when ``max_inflight`` are running."""
        if not self._slots.acquire(timeout=0.5):
            raise Overloaded(f"{self.settings.max_inflight} requests in flight; retry shortly")
        try:
            yield
        finally:
            self._slots.release()

    def stats(self) -> dict[str, Any]:
        """Requests and spans so far (for ``/health``)."""
        with self._counts_lock:
            return dict(self.counts)

    def ingest(self, request: ExportTraceServiceRequest | LeanRequest) -> IngestResult:
        """Store a decoded request (parsed fully, or lean from OTLP/HTTP protobuf); returns once
        everything stored is committed.

        Raises :class:`StoreError` when the store cannot take it (the sender should retry).
        """
        if isinstance(request, LeanRequest):
            records = request.records()  # ids validated as decode.validate does
            received = request.span_count()
        else:
            decode.validate(request)
            records = from_otlp(request)
            received = decode.span_count(request)
        if self.settings.ingest_delay:
            time.sleep(self.settings.ingest_delay)
        result = IngestResult(received=received)
        with self._counts_lock:
            self.counts["requests"] += 1
            self.counts["spans_received"] += result.received
        if not records:
            return result
        records.sort(key=lambda r: _KIND_ORDER.get(r.kind or "", 3))
        store = self.stores.get()
        try:
            records, refused = self.admission.check(store, records)
            stored, rejected = self._store_records(store, records) if records else (0, [])
        except StoreError:
            with self._counts_lock:
                self.counts["store_errors"] += 1
            raise
        failed = {id(r) for r, _ in rejected}
        self.admission.stored([r for r in records if id(r) not in failed])
        rejected = refused + rejected
        result.stored = stored
        if rejected:
            path = self._save_rejects(request.full() if isinstance(request, LeanRequest) else request, rejected)
            result.rejected = len(rejected)
            first = rejected[0]
            result.message = (
                f"{len(rejected)} DLProv span(s) could not be stored and were saved to {path}; "
                f"first: span {first[0].span_id} ({first[0].name!r}): {first[1]}"
            )
            logger.error("%s", result.message)
            result.message += " [rejected: " + " ".join(f"{r.trace_id}/{r.span_id}" for r, _ in rejected) + "]"
        with self._counts_lock:
            self.counts["spans_stored"] += stored
            self.counts["spans_rejected"] += len(rejected)
        return result

    def _store_records(self, store: Store, records: list[SpanRecord]) -> tuple[int, list[tuple[SpanRecord, str]]]:
        """Store records, bisecting a failing batch to find the spans that cannot be stored."""
        try:
            return store.ingest(records), []
        except SpecError as exc:
            error = str(exc)
        except TransientStoreError:
            raise  # a conflict or a lost connection: the sender retries (503), never a reject
        except StoreError as exc:
            # a failure of the store itself is retried by the sender; one of the data is isolated
            if not self.stores.alive(store):
                raise
            error = str(exc)
        if len(records) == 1:
            return 0, [(records[0], error)]
        mid = len(records) // 2
        stored, rejected = self._store_records(store, records[:mid])
        if len(rejected) > MAX_REJECTS:
            raise StoreError(f"more than {MAX_REJECTS} spans of one batch failed; last error: {error}")
        more, rejected2 = self._store_records(store, records[mid:])
        rejected += rejected2
        if len(rejected) > MAX_REJECTS:
            raise StoreError(f"more than {MAX_REJECTS} spans of one batch failed; last error: {error}")
        return stored + more, rejected

    def _save_rejects(self, request: ExportTraceServiceRequest, rejected: list[tuple[SpanRecord, str]]) -> Path:
        """Keep the rejected spans as an OTLP file (replayable); a failure here is a store error."""
        keys = {(r.trace_id, r.span_id) for r, _ in rejected}
        kept = ExportTraceServiceRequest()
        for rs in request.resource_spans:
            out_rs = None
            for ss in rs.scope_spans:
                spans = [s for s in ss.spans if (s.trace_id.hex(), s.span_id.hex()) in keys]
                if not spans:
                    continue
                if out_rs is None:
                    out_rs = kept.resource_spans.add()
                    out_rs.resource.CopyFrom(rs.resource)
                    out_rs.schema_url = rs.schema_url
                out_ss = out_rs.scope_spans.add()
                out_ss.scope.CopyFrom(ss.scope)
                out_ss.schema_url = ss.schema_url
                out_ss.spans.extend(spans)
        try:
            return spool.write(kept.SerializeToString(), self.reject_dir)
        except OSError as exc:
            raise StoreError(f"cannot save rejected spans to {self.reject_dir}: {exc}") from exc
