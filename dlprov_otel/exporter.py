"""The span exporter that writes provenance into a MonetDB store in this process.

Registered as the ``dlprov`` entry point of ``opentelemetry_traces_exporter``, so
``OTEL_TRACES_EXPORTER=dlprov`` selects it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .errors import DLProvError, ElementError, SpecError, StoreLockedError
from .records import from_readable_spans
from .store import PendingStore, Store, open_store
from .store.readmodel import stored_span_keys
from .store.transient import TransientStoreError, is_transient

logger = logging.getLogger(__name__)
# a store short of a resource (disk, memory) recovers when it is freed: never bad data
_RESOURCE_MARKERS = ("disk full", "no space", "enospc", "could not allocate", "out of memory", "write error")
# Embedded MonetDB does not say ENOSPC: a write on a full disk fails as "COMMIT: transaction
# is aborted because of concurrency conflicts", an open as "Catalogue not available". With
# less free space than this on the store's filesystem (and under 2% of it), a failure is
# reported as a full disk.
DISK_FULL_BYTES = 64 << 20


class MonetDBSpanExporter(SpanExporter):
    """Export DLProv spans to a store (``store`` object or URL; default ``DLPROV_STORE``).

    Spans of other instrumentations are ignored. A failed write returns ``FAILURE`` (the
    :class:`~dlprov_otel.processor.LosslessSpanProcessor` keeps and retries them) and is
    logged once, never raised into the training.
    """

    def __init__(self, store: Any = None) -> None:
        self._owns = not isinstance(store, Store | PendingStore)
        self._pending = store if isinstance(store, PendingStore) else None
        self._store: Store | None = None
        if self._pending is None:
            self._store = store if isinstance(store, Store) else open_store(store)
        self._failing = False
        self.last_error: str | None = None
        self.permanent_failure = False  # the last failure was bad data, not an unreachable store

    @property
    def store(self) -> Any:
        """The store, waiting for it if it is still being opened."""
        if self._store is None:
            assert self._pending is not None
            self._store = self._pending.result()
        return self._store

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.permanent_failure = False
        try:
            self.store.ingest(from_readable_spans(spans))
        except DLProvError as exc:
            # a spec or element the store can never take is bad data; the rest may pass later
            full = self._full_disk()
            self.permanent_failure = full is None and self._about_the_data(exc)
            return self._fail(str(exc), full)
        except Exception as exc:  # anything else must not reach the SDK thread either
            return self._fail(f"{type(exc).__name__}: {exc}", self._full_disk())
        if self._failing:
            logger.warning("DLProv: provenance store %s is writable again", self.store.url)
            self._failing = False
        return SpanExportResult.SUCCESS

    def _about_the_data(self, exc: DLProvError) -> bool:
        """A failure that retrying cannot fix: bad data, while the store itself answers. A
        locked or unreachable store, a conflict, a lost connection or a full disk pass."""
        if isinstance(exc, SpecError | ElementError) or getattr(exc, "permanent", False):
            return True
        text = str(exc).lower()
        if isinstance(exc, StoreLockedError | TransientStoreError) or is_transient(exc) or any(
            m in text for m in _RESOURCE_MARKERS
        ):
            return False
        store = self._store if self._store is not None else (self._pending.opened() if self._pending else None)
        if store is None:
            return False
        try:
            store.query("SELECT 1")
        except Exception:
            return False
        return True

    def _fail(self, message: str, full_disk: str | None) -> SpanExportResult:
        if full_disk is not None:  # embedded MonetDB words a full disk otherwise
            message = f"{full_disk}: {message}"
        self.last_error = message
        if not self._failing:
            logger.error("DLProv: cannot store provenance (will retry): %s", message)
            self._failing = True
        return SpanExportResult.FAILURE

    def _full_disk(self) -> str | None:
        """"disk full: ..." when the embedded store's filesystem is full, else None."""
        url = self._store.url if self._store is not None else getattr(self._pending, "url", "")
        if not url.startswith("monetdbe:") or url == "monetdbe::memory:":
            return None
        try:
            st = os.statvfs(url[len("monetdbe:") :])
        except OSError:
            return None
        free = st.f_bavail * st.f_frsize
        if free >= min(DISK_FULL_BYTES, st.f_blocks * st.f_frsize // 50):
            return None
        return (
            f"disk full: {free} bytes left on the filesystem of the provenance store {url[len('monetdbe:'):]} "
            "(No space left on device)"
        )

    def stored_keys(self, keys: Sequence[tuple[int, int]]) -> set[tuple[int, int]]:
        """Which (trace id, span id) pairs the store holds: read back, not assumed."""
        return stored_span_keys(self.store, keys)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        if self._owns:
            self.store.close()
