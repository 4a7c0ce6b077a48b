"""A MonetDB server through pymonetdb: :class:`ServerBackend` (see :mod:`.backends`).

Rows are bulk-loaded with ``COPY INTO ... FROM STDIN``; a conflict or a lost connection raises
:class:`TransientStoreError`, which callers retry and never reject.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Sequence
from typing import Any

from ..errors import StoreError
from .backends import QMARK, Backend
from .copy_format import copy_statement
from .transient import TransientStoreError, is_transient, lost_connection, one_line

logger = logging.getLogger(__name__)

# rows per COPY statement (its text is built in memory: ~100 bytes a row)
_COPY_ROWS = 50_000


def _quiet_connect_errors(record: logging.LogRecord) -> bool:
    """pymonetdb logs each failed connect; the store raises one line naming the URL instead."""
    return not record.getMessage().startswith("Could not connect")


class ServerBackend(Backend):
    """A MonetDB server through pymonetdb.

    Rows are bulk-loaded with ``COPY INTO ... FROM STDIN``. A lost connection is reopened on
    the next call that starts a transaction (or by :meth:`reset`); a conflict or a lost
    connection raises :class:`TransientStoreError`, which callers retry and never reject.
    """

    def __init__(
        self, host: str, port: int, user: str, password: str, database: str, connect_timeout: float = 10.0
    ) -> None:
        try:
            import pymonetdb
        except ImportError as exc:
            raise StoreError("monetdb:// stores need pymonetdb: pip install 'dlprov-otel[server]'") from exc
        self._pymonetdb = pymonetdb
        mapi_log = logging.getLogger("pymonetdb.mapi")
        if _quiet_connect_errors not in mapi_log.filters:
            mapi_log.addFilter(_quiet_connect_errors)
        self.lock = threading.RLock()
        self.where = f"monetdb://{user}@{host}:{port}/{database}"
        self._params = {
            "hostname": host,
            "port": port,
            "username": user,
            "password": password,
            "database": database,
            "autocommit": False,
            "connect_timeout": connect_timeout,
        }
        self.con: Any = None
        self._dirty = False  # statements sent since the last commit or rollback
        self._lost_mid_transaction = False  # until rolled back, nothing may run on a new connection
        self.reconnects = 0
        with self.lock:
            self._connect()
            self.default_schema = self.fetch("SELECT CURRENT_SCHEMA")[1][0][0]
            self.commit()

    # -- connection -----------------------------------------------------------------------------
    def _connect(self) -> None:
        try:
            self.con = self._pymonetdb.connect(**self._params)
        except Exception as exc:
            self.con = None
            raise self._connect_error(exc) from None
        self.cur = self.con.cursor()
        self.cur.arraysize = 10_000
        self._dirty = False

    def _connect_error(self, exc: Exception) -> StoreError:
        text = one_line(exc)
        low = text.lower()
        if "credentials" in low or "password" in low:
            return StoreError(f"MonetDB server {self.where} refused the user name or password ({text})")
        if isinstance(exc, socket.gaierror):
            return StoreError(f"cannot reach MonetDB server {self.where}: unknown host {self._params['hostname']!r}")
        if isinstance(exc, ConnectionRefusedError) or "refused" in low:
            return TransientStoreError(f"cannot reach MonetDB server {self.where}: connection refused (is it running?)")
        if isinstance(exc, TimeoutError) or "timed out" in low:
            return TransientStoreError(
                f"cannot reach MonetDB server {self.where}: no answer within {self._params['connect_timeout']} s"
            )
        if lost_connection(exc):
            return TransientStoreError(f"cannot reach MonetDB server {self.where}: {text}")
        return StoreError(f"cannot connect to MonetDB server {self.where}: {text}")

    def _drop(self) -> None:
        con, self.con = self.con, None
        self._lost_mid_transaction = self._lost_mid_transaction or self._dirty
        self._dirty = False
        if con is not None:
            try:
                con.close()
            except Exception:
                pass

    def _reopen(self) -> None:
        self._connect()
        self.reconnects += 1
        logger.info("DLProv: reconnected to %s", self.where)

    def _call(self, fn: Any, *args: Any) -> Any:
        """Run one statement; a conflict or a lost connection raises TransientStoreError."""
        with self.lock:
            if self._lost_mid_transaction:
                # a new connection would commit the rest of a half-lost transaction
                raise TransientStoreError(f"the connection to {self.where} was lost mid-transaction: roll back first")
            if self.con is None:
                self._reopen()  # the connection was lost between transactions
            self._dirty = True
            try:
                return fn(*args)
            except Exception as exc:
                if lost_connection(exc):
                    self._drop()
                    raise TransientStoreError(f"lost the connection to {self.where}: {one_line(exc)}") from exc
                if is_transient(exc):
                    raise TransientStoreError(f"{self.where}: {one_line(exc)}") from exc
                raise

    # -- statements -----------------------------------------------------------------------------
    @staticmethod
    def _sql(sql: str, params: Sequence[Any] | None) -> str:
        if not params:
            return sql
        return QMARK.sub("%s", sql.replace("%", "%%"))

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self._call(self._execute, sql, params)

    def _execute(self, sql: str, params: Sequence[Any] | None) -> None:
        self.cur.execute(self._sql(sql, params), list(params) if params else None)

    def fetch(self, sql: str, params: Sequence[Any] | None = None) -> tuple[list[str], list[tuple]]:
        return self._call(self._fetch, sql, params)

    def _fetch(self, sql: str, params: Sequence[Any] | None) -> tuple[list[str], list[tuple]]:
        self._execute(sql, params)
        if self.cur.description is None:
            return [], []
        cols = [d[0] for d in self.cur.description]
        return cols, [tuple(r) for r in self.cur.fetchall()]

    def fetch_limited(self, sql: str, max_rows: int) -> tuple[list[str], list[tuple], bool]:
        return self._call(self._fetch_limited, sql, max_rows)

    def _fetch_limited(self, sql: str, max_rows: int) -> tuple[list[str], list[tuple], bool]:
        # the server sends rows in blocks of arraysize: only what the cap needs crosses the wire
        self.cur.arraysize = min(max_rows + 1, 10_000)
        try:
            self._execute(sql, None)
            if self.cur.description is None:
                return [], [], False
            cols = [d[0] for d in self.cur.description]
            rows = self.cur.fetchmany(max_rows + 1)
        finally:
            self.cur.arraysize = 10_000
        return cols, [tuple(r) for r in rows[:max_rows]], len(rows) > max_rows

    def append(
        self, schema: str, table: str, columns: list[tuple[str, str]], data: dict[str, list[Any]], n: int
    ) -> None:
        """Bulk-load ``n`` rows with ``COPY INTO ... FROM STDIN`` (values encoded exactly)."""
        for start in range(0, n, _COPY_ROWS):
            self._call(
                self.cur.execute, copy_statement(schema, table, columns, data, start, min(n, start + _COPY_ROWS))
            )

    def commit(self) -> None:
        self._call(self._commit)

    def _commit(self) -> None:
        self.con.commit()
        self._dirty = False

    def rollback(self) -> None:
        with self.lock:
            self._lost_mid_transaction = False
            if self.con is None:
                return
            try:
                self.con.rollback()
                self._dirty = False
            except Exception as exc:
                if lost_connection(exc):
                    self._drop()

    def reset(self) -> None:
        """Roll back a failed transaction; reopen the connection when it is gone."""
        with self.lock:
            self.rollback()
            if self.con is None:
                self._reopen()

    def ping(self) -> None:
        """A real round trip (``SELECT 1``); raises StoreError when the server does not answer."""
        with self.lock:
            in_transaction = self._dirty
            self.fetch("SELECT 1")
            if not in_transaction:
                self.rollback()

    def close(self) -> None:
        with self.lock:
            self._drop()
