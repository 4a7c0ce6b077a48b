"""The store behind an HTTP server: opened on demand, shared by request threads, reopened when lost."""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from dlprov_otel.errors import StoreError, StoreLockedError, StoreURLError
from dlprov_otel.store import Store, describe, normalize_url, open_store

from .guard import RETRY_AFTER_STORE

logger = logging.getLogger("dlprov.http")


class SharedStore:
    """One store for all requests; a MonetDB server that went away is reopened (at most every 2 s)."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self._store: Store | None = None
        self._lock = threading.Lock()
        self._open_error = ""
        self._next_open = 0.0
        self._closed = False

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
        with self._lock:
            self._closed = True
            store, self._store = self._store, None
        if store is not None:
            with store.lock:  # waits for an ingest in progress to commit
                pass
            store.close()
