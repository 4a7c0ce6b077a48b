"""HTTP apps over a provenance store, mounted side by side through one route interface.

- :mod:`.routes`: :class:`Request`, :class:`Response`, :class:`Route`, the :class:`App` protocol
  (an object with ``routes()``) and the router;
- :mod:`.server`: one threaded HTTP server that mounts apps (``make_server``, ``serve_forever``);
- :mod:`.query`: the read-only query app (``/v1/sql``, ``/v1/executions``, ``/health``);
- :mod:`.guard`: the bearer token and JSON error statuses; :mod:`.sqlguard`: read-only SQL;
- :mod:`.stores`: the store shared by the request threads.

The dashboard (:mod:`dlprov_otel.ui.web`) is another app; ``dlprov ui`` mounts it with the
query app, and the collector (a separate distribution) mounts both next to OTLP ingest.
"""

from __future__ import annotations

from .guard import TokenCheck, Unauthorized, is_loopback, json_api
from .query import QueryApp
from .routes import App, HTTPError, Request, Response, Route, json_response, jsonable
from .server import make_server, serve_forever, stop
from .stores import QueryLimits, QueryTimeout, SharedStore

__all__ = [
    "App",
    "HTTPError",
    "QueryApp",
    "QueryLimits",
    "QueryTimeout",
    "Request",
    "Response",
    "Route",
    "SharedStore",
    "TokenCheck",
    "Unauthorized",
    "is_loopback",
    "json_api",
    "json_response",
    "jsonable",
    "make_server",
    "serve_forever",
    "stop",
]
