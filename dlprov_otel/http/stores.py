"""The store behind an HTTP server: opened on demand, shared by request threads, reopened when lost.

Ingest writes through the shared store; SQL queries run on a connection of their own (see
:meth:`SharedStore.read`), so a long query never holds the writer's lock, with a statement
timeout and a row cap (:class:`QueryLimits`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from dlprov_otel.errors import QueryError, StoreError, StoreLockedError, StoreURLError
from dlprov_otel.store import Result, Store, describe, normalize_url, open_reader, open_store

from .guard import RETRY_AFTER_STORE

logger = logging.getLogger("dlprov.http")

DEFAULT_QUERY_TIMEOUT = 30.0  # seconds
DEFAULT_QUERY_MAX_ROWS = 10_000
QUERY_WORKERS = 1  # MonetDB threads a query may use


@dataclass(frozen=True)
class QueryLimits:
    """How long one SQL statement may run (seconds, 0: no limit) and how many rows come back."""

    timeout: float = DEFAULT_QUERY_TIMEOUT
    max_rows: int = DEFAULT_QUERY_MAX_ROWS


class QueryTimeout(QueryError):
    """A statement ran past the query timeout and was stopped."""


class SharedStore:
    """One store for all requests; a MonetDB server that went away is reopened (at most every 2 s)."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self._store: Store | None = None
        self._lock = threading.Lock()
        self._open_error = ""
        self._next_open = 0.0
        self._closed = False
        self._reader: Store | None = None
        self._reader_lock = threading.Lock()

    @property
    def embedded(self) -> bool:
        return self.url.startswith("monetdbe:")

    def describe(self) -> str:
        """The URL without its password."""
        return describe(self.url)

    def open(self) -> None:
        """Open now: errors that retrying will not cure (a locked, malformed or embedded store) raise."""
        try:
            self.get()
        except (StoreLockedError, StoreURLError):
            raise
        except StoreError as exc:
            if self.embedded:
                raise
            logger.warning("store %s unavailable, answering 503 until it is: %s", self.describe(), exc)

    def get(self) -> Store:
        """The open store; :class:`StoreError` while it cannot be opened (answer 503)."""
        with self._lock:
            if self._closed:
                raise StoreError("the server is shutting down")
            if self._store is None:
                now = time.monotonic()
                if now < self._next_open:
                    raise StoreError(self._open_error)
                try:
                    self._store = open_store(self.url)
                except StoreError as exc:
                    self._open_error = str(exc)
                    self._next_open = now + RETRY_AFTER_STORE
                    raise
                if self._open_error:
                    logger.warning("store %s is available again", self._store.url)
                    self._open_error = ""
            return self._store

    def reader(self) -> Store:
        """The connection for queries: its own, beside the writer's (the shared store itself for
        an in-memory store, which has one connection)."""
        store = self.get()  # embedded: the writer opens the database first
        with self._reader_lock:
            if self._closed:
                raise StoreError("the server is shutting down")
            if self._reader is None:
                try:
                    self._reader = open_reader(self.url)
                except StoreError as exc:
                    if self.url == "monetdbe::memory:":
                        return store
                    raise StoreError(f"cannot open a query connection to {self.describe()}: {exc}") from exc
            return self._reader

    def read(self, statements: Sequence[str], limits: QueryLimits) -> Result:
        """Run read-only statements on the query connection, within ``limits``."""
        store = self.reader()
        with store.lock:
            store.backend.rollback()  # a fresh snapshot: what ingest committed until now
            try:
                store.backend.set_query_timeout(limits.timeout)
                if store is not self._store:
                    # one MonetDB worker thread for queries: the other cores stay with ingest
                    store.backend.execute(f"CALL sys.setworkerlimit({QUERY_WORKERS})")
                return store.run_script(statements, read_only=True, max_rows=limits.max_rows)
            except QueryError as exc:
                if "aborted due to timeout" in str(exc).lower() or "HYT00" in str(exc):
                    raise QueryTimeout(
                        f"the query ran past the limit of {limits.timeout:g} s and was stopped "
                        "(the collector's --query-timeout); narrow it with WHERE or LIMIT"
                    ) from exc
                if store is not self._store and not self._alive_reader(store):
                    raise StoreError(f"the query connection to {self.describe()} was lost: {exc}") from exc
                raise
            finally:
                store.backend.rollback()  # hold no snapshot (run_script's SET SCHEMA opened one)
                if store is self._store:  # the writer's own connection (in memory): no limit for ingest
                    with contextlib.suppress(Exception):
                        store.backend.set_query_timeout(0)

    def _alive_reader(self, store: Store) -> bool:
        try:
            store.query("SELECT 1")
            return True
        except Exception:
            with self._reader_lock:
                if self._reader is store:
                    self._reader = None
            with contextlib.suppress(Exception):
                store.close()
            return False

    def alive(self, store: Store) -> bool:
        """Whether ``store`` still answers; a dead server connection is dropped, to be reopened."""
        try:
            store.query("SELECT 1")
            return True
        except Exception as exc:
            if not self.embedded:
                with self._lock:
                    if self._store is store:
                        self._store = None
                        self._open_error = f"lost the connection to {store.url}: {exc}"
                        self._next_open = time.monotonic() + RETRY_AFTER_STORE
                with contextlib.suppress(Exception):
                    store.close()
            return False

    def close(self) -> None:
        """Close the store once a write in progress has committed; :meth:`get` refuses afterwards."""
        with self._reader_lock:
            reader, self._reader = self._reader, None
        if reader is not None:
            with contextlib.suppress(Exception):
                reader.close()
        with self._lock:
            self._closed = True
            store, self._store = self._store, None
        if store is not None:
            with store.lock:  # waits for an ingest in progress to commit
                pass
            store.close()
