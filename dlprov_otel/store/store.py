"""The provenance store: one MonetDB connection (embedded or server), its writer and SQL.

:meth:`Store.ingest` stores span records (see :mod:`.writer`); :meth:`Store.query` and
:meth:`Store.run_script` read. Queries over the catalog that return objects are in
:mod:`.readmodel`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import QueryError, SpecError, StoreError
from ..records import SpanRecord
from .backends import Backend, query_error
from .group import GroupCommit
from .schema import qualified, quote_ident
from .transient import TransientStoreError, is_transient
from .writer import Writer

logger = logging.getLogger(__name__)


@dataclass
class Result:
    """Columns and rows of a query."""

    columns: list[str]
    rows: list[tuple]
    truncated: bool = False  # rows were left out (a row cap)

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r, strict=False)) for r in self.rows]


class Store:
    """A MonetDB provenance store (embedded or server) named by ``url``.

    ``on_close`` is called by :meth:`close` (the registry of open stores counts references);
    without one, closing closes the connection. ``create=False``: the catalog exists already
    (a second connection, for queries).
    """

    def __init__(
        self, backend: Backend, url: str, on_close: Callable[[Store], None] | None = None, create: bool = True
    ) -> None:
        self.backend = backend
        self.url = url
        self.lock = backend.lock
        self._group = GroupCommit(self.lock, self._write_committed, self._write_committed)
        self.schema = backend.default_schema
        self._writer = Writer(backend, self.schema)
        self._on_close = on_close
        self._refs = 0
        if create:
            with self.lock:
                self._writer.create_catalog()
                backend.commit()

    # -- naming -----------------------------------------------------------------------------
    def cat(self, table: str) -> str:
        """Qualified name of a catalog table."""
        return qualified(self.schema, table)

    # -- ingest -----------------------------------------------------------------------------
    def ingest(self, records: Sequence[SpanRecord]) -> int:
        """Store span records; returns how many were new. Raises ``StoreError`` on failure:
        :class:`TransientStoreError` for a conflict or a lost connection, retried here first
        for up to 10 s (writers racing on a new dataflow's schema conflict and then pass)."""
        delay, deadline = 0.05, time.monotonic() + 10
        while True:
            try:
                return self._ingest_once(records)
            except TransientStoreError:
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _ingest_once(self, records: Sequence[SpanRecord]) -> int:
        if not records:
            return 0
        return self._group.ingest(records)  # with concurrent ingests: one write, one commit

    def _write_committed(self, records: Sequence[SpanRecord]) -> set[tuple[str, str]]:
        """Write and commit (undone on failure); the fresh keys. Called under ``self.lock``."""
        with self.lock:
            try:
                fresh = self._writer.write_keys(records)
                if fresh:
                    self.backend.commit()
                    self._writer.committed(fresh)
                return fresh
            except Exception as exc:
                try:
                    self.backend.reset()
                except Exception:
                    logger.debug("resetting the store connection failed", exc_info=True)
                self._writer.forget()  # DDL may have been rolled back with the batch
                if isinstance(exc, StoreError | SpecError):
                    if not isinstance(exc, TransientStoreError) and is_transient(exc):
                        raise TransientStoreError(str(exc)) from exc
                    raise
                error = TransientStoreError if is_transient(exc) else StoreError
                raise error(f"writing provenance to {self.url} failed: {exc}") from exc

    def table_columns(self, schema: str, table: str) -> list[tuple[str, str]]:
        """``[(column, MonetDB type)]`` of a table, ``[]`` when there is none (cached)."""
        with self.lock:
            return self._writer.table_columns(schema, table)

    # -- queries ----------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] | None = None) -> Result:
        with self.lock:
            try:
                cols, rows = self.backend.fetch(sql, params)
                self.backend.commit()
            except Exception as exc:
                self.backend.rollback()
                raise query_error(sql, exc) from exc
            return Result(cols, rows)

    def fetch(self, sql: str, params: Sequence[Any] | None = None) -> tuple[list[str], list[tuple]]:
        """:meth:`query` as ``(columns, rows)`` (the shape :mod:`.schema`'s introspection takes)."""
        res = self.query(sql, params)
        return res.columns, res.rows

    def run_script(
        self,
        statements: Sequence[str],
        *,
        read_only: bool = False,
        max_rows: int | None = None,
        results: list[Result] | None = None,
    ) -> Result:
        """Run statements in one session and return the last result (``SET SCHEMA`` carries).

        ``read_only`` rolls the session back instead of committing: nothing it wrote stays.
        ``max_rows`` keeps at most that many rows of a result (``Result.truncated`` then says so).
        """
        with self.lock:
            result = Result([], [])
            try:
                for stmt in statements:
                    if max_rows is None:
                        cols, rows, cut = *self.backend.fetch(stmt), False
                    else:
                        cols, rows, cut = self.backend.fetch_limited(stmt, max_rows)
                    if cols:
                        result = Result(cols, rows, cut)
                        if results is not None:  # every result, in order (``dlprov sql``)
                            results.append(result)
                if read_only:
                    self.backend.rollback()
                else:
                    self.backend.commit()
            except Exception as exc:
                self.backend.rollback()
                raise query_error(stmt, exc) from exc
            finally:
                try:
                    self.backend.execute(f"SET SCHEMA {quote_ident(self.schema)}")
                except Exception:
                    pass
            return result

    # -- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        if self._on_close is not None:
            self._on_close(self)
        else:
            self.backend.close()


__all__ = ["QueryError", "Result", "Store"]
