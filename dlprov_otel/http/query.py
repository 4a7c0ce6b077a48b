"""The read-only query API over a store, mounted by the collector and by ``dlprov ui``.

- ``POST /v1/sql`` (``{"sql": "SET SCHEMA \\"mnist\\"; SELECT ..."}``): read-only SQL (see
  :mod:`dlprov_otel.http.sqlguard`), run in one session and rolled back, on a connection of its
  own (never holding ingest) within :class:`~.stores.QueryLimits`; ``{"columns", "rows",
  "truncated"}`` (``truncated``: the row cap left rows out).
- ``GET /v1/executions``: the runs, one JSON object each (on the query connection too).
- ``GET /health`` (and ``/healthz``): 200 while the store answers, else 503; no token needed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from dlprov_otel.errors import StoreError
from dlprov_otel.sqltext import column_labels
from dlprov_otel.store import readmodel

from .guard import RETRY_AFTER_STORE, TokenCheck, Unauthorized, json_api
from .routes import HTTPError, Request, Response, Route, json_response, jsonable
from .sqlguard import check_read_only
from .stores import QueryLimits, SharedStore

MAX_SQL_BODY = 1024 * 1024


class QueryApp:
    """``/v1/sql``, ``/v1/executions`` and ``/health`` for ``stores``; ``details`` adds to the health document."""

    def __init__(
        self,
        stores: SharedStore,
        auth: TokenCheck,
        details: Callable[[], dict[str, Any]] | None = None,
        limits: QueryLimits | None = None,
    ):
        self.stores = stores
        self.auth = auth
        self.details = details
        self.limits = limits or QueryLimits()

    def routes(self) -> Sequence[Route]:
        return [
            Route("POST", "/v1/sql", json_api(self.auth, self.sql)),
            Route("GET", "/v1/executions", json_api(self.auth, self.executions)),
            Route("GET", "/health", self.health),
            Route("GET", "/healthz", self.health),
        ]

    def sql(self, request: Request) -> Response:
        body = request.body(MAX_SQL_BODY)
        try:
            doc = json.loads(body or b"null")
        except ValueError as exc:
            raise HTTPError(400, f'the body is not JSON: {exc}; send {{"sql": "SELECT ..."}}') from None
        sql = doc.get("sql") if isinstance(doc, dict) else None
        if not isinstance(sql, str):
            raise HTTPError(400, 'send a JSON object {"sql": "SELECT ..."}')
        statements = check_read_only(sql)
        result = self.stores.read(statements, self.limits)
        rows = [[jsonable(v) for v in row] for row in result.rows]
        last = next((s for s in reversed(statements) if s.lstrip()[:3].upper() != "SET"), "")
        columns = column_labels(last, result.columns)  # count(*) is headed count, not MonetDB's %1
        doc: dict[str, Any] = {"columns": columns, "rows": rows, "truncated": result.truncated}
        if result.truncated:
            doc["max_rows"] = self.limits.max_rows
        return json_response(200, doc)

    def executions(self, request: Request) -> Response:
        reader = self.stores.reader()
        with reader.lock:
            reader.backend.rollback()  # a fresh snapshot
            runs = readmodel.execution_list(reader)  # the dashboard's status (killed detected)
        return json_response(200, [{k: jsonable(v) for k, v in run.items()} for run in runs])

    def health(self, request: Request) -> Response:
        """Status for anyone (a load balancer's probe); the store, errors and counters only for
        a holder of the token, when one is set."""
        try:
            self.auth.check(request.header("Authorization"))
            full = True
        except Unauthorized:
            full = False
        try:
            store = self.stores.get()
            if not self.stores.alive(store):  # a real round trip, not a remembered connection
                raise StoreError(f"{store.url} does not answer")
        except StoreError as exc:
            doc = {"status": "unavailable", "store": self.stores.describe(), "error": str(exc)} if full else {
                "status": "unavailable"
            }
            return json_response(503, doc, {"Retry-After": str(RETRY_AFTER_STORE)})
        if not full:
            return json_response(200, {"status": "ok", "token_required": True})
        doc = {"status": "ok", "store": store.url, "token_required": self.auth.required}
        return json_response(200, {**doc, **(self.details() if self.details else {})})
