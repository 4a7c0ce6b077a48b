"""Opening provenance stores by URL.

- a filesystem path, or ``monetdbe:PATH`` / ``monetdbe:///abs/path``: embedded MonetDB;
  ``monetdbe::memory:`` keeps it in memory;
- ``monetdb://user:password@host:port/database``: a MonetDB server through pymonetdb.

Within one process a URL opens one store, shared by the exporter and queries (embedded
MonetDB admits one process, and one connection serves all threads of it).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..errors import StoreError, StoreURLError
from . import drainlock
from .store import Result, Store

DEFAULT_STORE = "./dlprov-data"
_lock = threading.Lock()
_open: dict[str, Store] = {}


def default_store_url() -> str:
    """``DLPROV_STORE``, else ``./dlprov-data``."""
    return os.environ.get("DLPROV_STORE") or DEFAULT_STORE


def normalize_url(url: str | os.PathLike[str] | None) -> str:
    """Canonical form of a store URL; raises ``StoreURLError`` for unknown schemes."""
    raw = os.fspath(url) if url is not None else default_store_url()
    if not isinstance(raw, str) or not raw.strip():
        raise StoreURLError("empty store URL")
    raw = raw.strip()
    if raw in (":memory:", "monetdbe::memory:", "monetdbe:memory"):
        return "monetdbe::memory:"
    if "://" in raw or (
        ":" in raw
        and not raw.startswith(("/", ".", "~"))
        and raw.split(":", 1)[0].isalpha()
        and len(raw.split(":", 1)[0]) > 1
    ):
        scheme = raw.split(":", 1)[0].lower()
        if scheme == "monetdbe":
            rest = raw.split(":", 1)[1]
            rest = rest[2:] if rest.startswith("//") else rest
            return "monetdbe:" + str(Path(unquote(rest)).expanduser().resolve())
        if scheme in ("monetdb", "mapi"):
            parts = urlsplit(raw)
            if not parts.hostname or not parts.path.strip("/"):
                raise StoreURLError(
                    f"malformed MonetDB URL {raw!r}: expected monetdb://user:password@host:port/database"
                )
            try:
                parts.port  # noqa: B018 - raises for a non-numeric port
            except ValueError:
                raise StoreURLError(f"malformed MonetDB URL {raw!r}: the port is not a number") from None
            return raw
        raise StoreURLError(
            f"unknown store URL scheme {scheme!r} in {raw!r}: use a directory path, "
            "monetdbe:PATH or monetdb://user:password@host:port/database"
        )
    return "monetdbe:" + str(Path(raw).expanduser().resolve())


def describe(url: str) -> str:
    """The URL without its password, for messages."""
    if url.startswith("monetdb://"):
        p = urlsplit(url)
        return f"monetdb://{p.username or ''}@{p.hostname}:{p.port or 50000}{p.path}"
    return url


def require_existing(url: str | os.PathLike[str] | None) -> str:
    """The normalized URL of a store that exists; a command that only reads calls this first,
    so that a mistyped path is one line of error instead of a new, empty store."""
    key = normalize_url(url)
    if key.startswith("monetdbe:") and key != "monetdbe::memory:":
        path = Path(key[len("monetdbe:") :])
        if not (path / "bat").is_dir() and drainlock.held_by_drainer(path):
            drainlock.wait_released(path)  # a run that just exited: its drainer makes the store
        if not (path / "bat").is_dir():
            given = "" if url is not None else f" (the default: $DLPROV_STORE or {DEFAULT_STORE})"
            what = "is not a DLProv store" if path.exists() else "does not exist"
            raise StoreError(f"no store at {path}{given}: it {what}; give --store with the path a run recorded into")
    return key


def open_store(url: str | os.PathLike[str] | None = None) -> Store:
    """Open (or share the already open) store named by ``url``."""
    key = normalize_url(url)
    with _lock:
        store = _open.get(key)
        if store is None:
            store = Store(_backend(key), describe(key), on_close=release)
            _open[key] = store
        store._refs += 1
        return store


class PendingStore:
    """A store being opened on a thread of its own.

    Opening embedded MonetDB (and creating the catalog) takes 0.1-0.4 s; started from
    ``configure()`` it overlaps the user's imports and model building instead of delaying
    them. The URL is checked at once (a malformed one still raises in the caller). A ``lazy``
    one opens when first asked for: a short run never opens it and hands its journal to a
    drainer at exit (:mod:`dlprov_otel.drain`).
    """

    def __init__(self, url: str | os.PathLike[str] | None, *, lazy: bool = False) -> None:
        self.url = normalize_url(url)
        self._done = threading.Event()
        self._store: Store | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self.started = False  # ``lazy``: opened only when first asked for (``result``/``start``)
        if not lazy:
            self.start()

    def start(self) -> None:
        """Begin opening now (once)."""
        with self._lock:
            if not self.started:
                self._start()

    def _start(self) -> None:
        self.started = True
        self._done.clear()
        threading.Thread(target=self._open, name="dlprov-store-open", daemon=True).start()

    def _open(self) -> None:
        try:
            self._store = open_store(self.url)
            self._error = None
        except BaseException as exc:  # handed to whoever asks for the store
            self._error = exc
        finally:
            self._done.set()

    def result(self, timeout: float | None = None) -> Store:
        """The open store; raises what opening raised (and tries again on the next call)."""
        self.start()
        if not self._done.wait(timeout):
            raise TimeoutError(f"opening the store {describe(self.url)} takes longer than {timeout} s")
        with self._lock:
            if self._store is not None:
                return self._store
            error = self._error
            if error is None:  # opened, then closed (the pipeline was shut down)
                raise StoreError(f"the store {describe(self.url)} was closed")
            self._start()  # the cause may go away (another process releases the store)
        raise error

    def opened(self) -> Store | None:
        """The store if it is open now, without waiting."""
        if self.started and self._done.wait(0) and self._store is not None:
            return self._store
        return None

    def close(self) -> None:
        """Release the store once its opening has finished (a lazy one never asked for: nothing)."""
        if not self.started:
            return
        self._done.wait()
        if self._store is not None:
            self._store.close()
            self._store = None


def open_reader(url: str | os.PathLike[str] | None) -> Store:
    """A connection of its own to a store, for queries that must not wait for ingest.

    On a server it is another session; embedded, a second connection of this process to the
    database its writer has open (open that first). Close it with ``Store.close()``. An
    in-memory store has one connection only: :class:`StoreError`.
    """
    key = normalize_url(url)
    if key == "monetdbe::memory:":
        raise StoreError("an in-memory store has a single connection")
    if key.startswith("monetdbe:"):
        from .backends import EmbeddedBackend

        return Store(EmbeddedBackend(key[len("monetdbe:") :], shared=True), describe(key), create=False)
    return Store(_backend(key), describe(key), create=False)


def release(store: Store) -> None:
    """Drop one reference; the last one closes the connection."""
    with _lock:
        store._refs -= 1
        if store._refs > 0:
            return
        for k, v in list(_open.items()):
            if v is store:
                del _open[k]
        store.backend.close()


def _backend(key: str):
    from .backends import EmbeddedBackend
    from .server_backend import ServerBackend

    if key.startswith("monetdbe:"):
        path = key[len("monetdbe:") :]
        return EmbeddedBackend(None if path == ":memory:" else path)
    p = urlsplit(key)
    return ServerBackend(
        host=p.hostname or "localhost",
        port=p.port or 50000,
        user=unquote(p.username or "monetdb"),
        password=unquote(p.password or "monetdb"),
        database=p.path.strip("/"),
    )


__all__ = [
    "DEFAULT_STORE",
    "PendingStore",
    "Result",
    "Store",
    "default_store_url",
    "normalize_url",
    "open_reader",
    "open_store",
    "require_existing",
]
