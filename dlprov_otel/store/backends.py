"""Connections to embedded MonetDB (monetdbe) and a MonetDB server (pymonetdb, in :mod:`.server_backend`).

Both take ``?`` placeholders; values are always bound (monetdbe prepares the statement,
pymonetdb escapes them client-side), never spliced into SQL text by us. Bulk rows go through
``append``: monetdbe's column append, or ``COPY INTO ... FROM STDIN`` on a server.

Failures are told apart with :func:`is_transient`: a transaction conflict or a lost connection
(raised as :class:`TransientStoreError`) goes away by retrying, so a writer retries it and
never rejects the data; anything else is about the data or the statement.
"""

from __future__ import annotations

import itertools
import logging
import math
import queue
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import QueryError, StoreError, StoreLockedError
from . import drainlock
from .transient import TransientStoreError, is_transient  # noqa: F401 - re-exported for callers

logger = logging.getLogger(__name__)

# MonetDB types read back from sys.columns
NUMERIC_TYPES = {"double", "real", "float", "decimal", "int", "bigint", "smallint", "tinyint", "hugeint"}
# One append builds a (rows x longest string) byte matrix: cap it so a 10 MB string does not
# turn into gigabytes; longer runs are cut into several appends.
_MAX_STRING_MATRIX = 32 * 1024 * 1024


class Backend:
    """The few operations the store needs from a MonetDB connection."""

    default_schema: str = "sys"
    lock: threading.RLock

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        raise NotImplementedError

    def fetch(self, sql: str, params: Sequence[Any] | None = None) -> tuple[list[str], list[tuple]]:
        raise NotImplementedError

    def append(
        self, schema: str, table: str, columns: list[tuple[str, str]], data: dict[str, list[Any]], n: int
    ) -> None:
        raise NotImplementedError

    def fetch_limited(self, sql: str, max_rows: int) -> tuple[list[str], list[tuple], bool]:
        """:meth:`fetch` of at most ``max_rows`` rows; the flag says whether rows were left out."""
        raise NotImplementedError

    def set_query_timeout(self, seconds: float) -> None:
        """Abort this connection's statements after ``seconds`` (0: never). MonetDB checks the
        time between the steps of a query plan, so one long step can run past it."""
        self.execute(f"CALL sys.setquerytimeout({max(0, math.ceil(seconds))})")

    def commit(self) -> None:
        raise NotImplementedError

    def rollback(self) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        """Bring the connection back to a clean state after a failed transaction."""
        self.rollback()

    def ping(self) -> None:
        """A real round trip to the database; raises when it does not answer (for /health)."""
        with self.lock:
            self.fetch("SELECT 1")
            self.rollback()

    def close(self) -> None:
        raise NotImplementedError


class EmbeddedBackend(Backend):
    """Embedded MonetDB in this process (one process per database directory).

    monetdbe binds its SQL session to the thread that uses it, so every call runs on one
    dedicated thread, whichever thread asks. ``shared``: a second connection of this process
    to a database it already has open (for queries beside ingest); MonetDB's lock file is then
    left alone (probing it from the owning process would release the lock).
    """

    def __init__(self, path: str | None, shared: bool = False) -> None:
        self.lock = threading.RLock()
        self.shared = shared
        # Not a ThreadPoolExecutor: those refuse work once the interpreter starts exiting,
        # exactly when the last spans are flushed.
        self._calls: queue.SimpleQueue[tuple[Any, tuple[Any, ...], list[Any], threading.Event] | None] = (
            queue.SimpleQueue()
        )
        self._worker = threading.Thread(target=self._serve, name="dlprov-monetdbe", daemon=True)
        self._worker.start()
        try:
            self._on_thread(self._open, path)
        except BaseException:
            self._calls.put(None)  # a failed open (a locked store, retried) must not leave its thread
            raise

    def _serve(self) -> None:
        while True:
            item = self._calls.get()
            if item is None:
                return
            fn, args, box, done = item
            try:
                box.append((True, fn(*args)))
            except BaseException as exc:
                box.append((False, exc))
            done.set()

    def _on_thread(self, fn: Any, *args: Any) -> Any:
        if threading.current_thread() is self._worker:
            return fn(*args)
        if not self._worker.is_alive():
            raise StoreError("the embedded store is closed")
        box: list[Any] = []
        done = threading.Event()
        self._calls.put((fn, args, box, done))
        done.wait()
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def _open(self, path: str | None) -> None:
        try:
            import monetdbe
        except ImportError as exc:
            raise StoreError(
                "the embedded store needs monetdbe 0.11; run scripts/bootstrap.sh "
                f"(it retags the cp310 wheel for this Python): {exc}"
            ) from exc
        self.path = path
        if path is not None:
            Path(path).mkdir(parents=True, exist_ok=True)
            if not self.shared:  # a drainer storing what an exited run journalled goes first
                drainlock.wait_released(path)
            # Probe MonetDB's lock file ourselves: a failed monetdbe start leaves the process
            # unable to open any other database directory.
            if not self.shared and drainlock.store_held(path):
                raise StoreLockedError(_locked_message(path))
        try:
            self.con = monetdbe.connect(path or ":memory:", autocommit=False)
        except Exception as exc:
            text = str(exc)
            if "GDKinit" in text or "lock" in text.lower():
                raise StoreLockedError(_locked_message(path)) from exc
            if "Cannot add farm" in text:
                raise StoreError(
                    f"cannot open embedded store {path!r}: this process already has another embedded "
                    "store open (embedded MonetDB opens one database directory per process); close it "
                    "first (dlprov_otel.shutdown() or Store.close())"
                ) from exc
            raise StoreError(f"cannot open embedded store {path!r}: {text}") from exc
        self.cur = self.con.cursor()
        self.default_schema = self._fetch("SELECT CURRENT_SCHEMA", None)[1][0][0]

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self._on_thread(self._execute, sql, params)

    def _execute(self, sql: str, params: Sequence[Any] | None) -> None:
        self.cur.execute(*_bindable(sql, params))

    def fetch(self, sql: str, params: Sequence[Any] | None = None) -> tuple[list[str], list[tuple]]:
        return self._on_thread(self._fetch, sql, params)

    def _fetch(self, sql: str, params: Sequence[Any] | None) -> tuple[list[str], list[tuple]]:
        self.cur.execute(*_bindable(sql, params))
        if self.cur.description is None:
            return [], []
        cols = [d[0] for d in self.cur.description]
        # monetdbe hands a NULL double back as NaN; the store never holds NaN (NaN is stored
        # as NULL), so NaN here always means NULL
        return cols, [tuple(None if type(v) is float and v != v else v for v in r) for r in self.cur.fetchall()]

    def fetch_limited(self, sql: str, max_rows: int) -> tuple[list[str], list[tuple], bool]:
        return self._on_thread(self._fetch_limited, sql, max_rows)

    def _fetch_limited(self, sql: str, max_rows: int) -> tuple[list[str], list[tuple], bool]:
        self.cur.execute(sql)
        if self.cur.description is None:
            return [], [], False
        cols = [d[0] for d in self.cur.description]
        # rows are converted one by one: only max_rows + 1 of them become Python objects
        # (a fresh iterator: monetdbe's fetchmany keeps the previous result's one)
        rows = list(itertools.islice(iter(self.cur), max_rows + 1))
        return cols, [tuple(None if type(v) is float and v != v else v for v in r) for r in rows[:max_rows]], (
            len(rows) > max_rows
        )

    def append(
        self, schema: str, table: str, columns: list[tuple[str, str]], data: dict[str, list[Any]], n: int
    ) -> None:
        self._on_thread(self._append, schema, table, columns, data, n)

    def _append(
        self, schema: str, table: str, columns: list[tuple[str, str]], data: dict[str, list[Any]], n: int
    ) -> None:
        from . import monetdbe_append  # imports monetdbe: only once a store is open (a lazy run never)

        if n == 0 or monetdbe_append.append(self.con, schema, table, columns, data, n):
            return
        string_cols = [c for c, t in columns if t not in NUMERIC_TYPES and t != "timestamp"]
        # cut the rows so that no string matrix grows past the cap
        start = 0
        while start < n:
            end, widest = start, 1
            while end < n:
                row_width = max((len(data[c][end] or "") * 4 for c in string_cols), default=1)
                width = max(widest, row_width, 1)
                if end > start and (end - start + 1) * width > _MAX_STRING_MATRIX:
                    break
                widest, end = width, end + 1
            chunk = {c: self._column(data[c][start:end], t) for c, t in columns}
            self.con.append(table, chunk, schema=schema)
            start = end

    @staticmethod
    def _column(values: list[Any], sql_type: str) -> np.ndarray:
        if sql_type in ("double", "real", "float"):
            return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        if sql_type in ("int", "bigint", "smallint", "tinyint"):
            # monetdbe ignores masks on integer columns; MonetDB's own NULL is the type's minimum
            dtype = np.int64 if sql_type == "bigint" else np.int32
            nil = np.iinfo(dtype).min
            return np.array([nil if v is None else v for v in values], dtype=dtype)
        if sql_type == "timestamp":
            # nanoseconds since the epoch (span times) or datetimes; None is NaT, i.e. NULL
            return np.array(values, dtype="datetime64[ns]")
        if sql_type == "boolean":
            return np.array([bool(v) for v in values], dtype=bool)
        mask = [v is None for v in values]
        arr = np.array(["" if v is None else v for v in values], dtype=str)
        if arr.dtype.kind != "U":  # all empty: numpy picks a 1-char unicode anyway
            arr = arr.astype("U1")
        return np.ma.masked_array(arr, mask=mask)

    def reset(self) -> None:
        """Reopen the connection: after a failed transaction monetdbe may stay unusable."""
        self._on_thread(self._reopen)

    def _reopen(self) -> None:
        try:
            self.con.rollback()
        except Exception:
            pass
        try:
            self.con.close()
        except Exception:
            pass
        self._open(self.path)

    def commit(self) -> None:
        self._on_thread(self.con.commit)

    def rollback(self) -> None:
        try:
            self._on_thread(self._rollback)
        except Exception:
            pass

    def _rollback(self) -> None:
        # monetdbe's Connection.rollback() marks the connection "inconsistent" and the next
        # fetch then fails; the same ROLLBACK sent through our cursor does not.
        self.cur.execute("ROLLBACK")

    def close(self) -> None:
        try:
            self._on_thread(self.con.close)
        except Exception:
            pass
        self._calls.put(None)


def _locked_message(path: str | None) -> str:
    return (
        f"embedded store {path!r} is in use by another process (embedded MonetDB admits "
        "one process at a time). Query it from that process, stop it, or share the store "
        "through `dlprov collector serve` or a MonetDB server (monetdb://...)"
    )


QMARK = re.compile(r"\?")


def _bindable(sql: str, params: Sequence[Any] | None) -> tuple[str, list[Any] | None]:
    """monetdbe cannot bind None or bool: write those two as the SQL constants they are."""
    if not params:
        return sql, None
    if not any(p is None or isinstance(p, bool) for p in params):
        return sql, list(params)
    values = iter(params)
    kept: list[Any] = []

    def sub(_: re.Match[str]) -> str:
        v = next(values)
        if v is None:
            return "NULL"
        if isinstance(v, bool):
            return "TRUE" if v else "FALSE"
        kept.append(v)
        return "?"

    return QMARK.sub(sub, sql), kept or None


def query_error(sql: str, exc: Exception) -> QueryError:
    msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return QueryError(f"{msg}\n  in: {sql.strip()[:200]}")
