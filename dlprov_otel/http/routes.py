"""The route interface shared by the HTTP apps: requests, responses, routes and a router.

An app (the collector's OTLP ingest, the read-only query API, the dashboard) is an object with
a ``routes()`` method; a route is a method, a path (exact, or a prefix ending in ``/``) and a
handler that turns a :class:`Request` into a :class:`Response`. :func:`dlprov_otel.http.server.make_server`
mounts any number of apps side by side on one port; a path no app knows is a 404, a known path
asked with another method a 405 naming the allowed ones.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from dlprov_otel.errors import DLProvError

JSON = "application/json"


@dataclass
class Response:
    """What a handler answers; ``close`` hangs up after answering."""

    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False


def json_response(status: int, doc: Any, headers: Mapping[str, str] | None = None, close: bool = False) -> Response:
    """A JSON response (NaN and infinities refused: pass values through :func:`jsonable`)."""
    return Response(status, json.dumps(doc, allow_nan=False).encode(), JSON, dict(headers or {}), close)


class HTTPError(DLProvError):
    """A request that cannot be answered as asked; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = dict(headers or {})

    def response(self) -> Response:
        """The error as ``{"error": message}``."""
        return json_response(self.status, {"error": str(self)}, self.headers)


@dataclass
class Request:
    """One HTTP request as a handler sees it; the body is read on demand, up to a limit."""

    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]
    read_body: Callable[[int], bytes] = field(repr=False, default=lambda limit: b"")

    def header(self, name: str) -> str | None:
        """A header's value (names are case-insensitive), or ``None``."""
        return self.headers.get(name)

    def body(self, limit: int) -> bytes:
        """The body; :class:`HTTPError` 413 above ``limit`` bytes, 411 without a length."""
        return self.read_body(limit)


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    """``method path`` answered by ``handler``; a ``path`` ending in ``/`` with ``prefix`` covers all below it.

    ``expect`` answers a request that sent ``Expect: 100-continue`` before its body is sent:
    a :class:`Response` refuses it (e.g. 413 for a body over the limit), ``None`` lets it come.
    """

    method: str
    path: str
    handler: Handler
    prefix: bool = False
    expect: Callable[[Request], Response | None] | None = None

    def matches(self, path: str) -> bool:
        return path.startswith(self.path) if self.prefix else path == self.path


class App(Protocol):
    """Something that can be mounted: it lists its routes."""

    def routes(self) -> Sequence[Route]: ...


class Router:
    """Finds the route of a request among the routes of several apps."""

    def __init__(self, apps: Iterable[App]) -> None:
        self.routes = [r for app in apps for r in app.routes()]

    def find(self, method: str, path: str) -> Route | Response:
        """The route for ``method path``, or the 404/405 response to give instead."""
        matching = sorted((r for r in self.routes if r.matches(path)), key=lambda r: (r.prefix, -len(r.path)))
        for route in matching:
            if route.method == method:
                return route
        if matching:
            allow = ", ".join(sorted({r.method for r in matching}))
            return json_response(405, {"error": f"{path} takes {allow}"}, {"Allow": allow})
        known = sorted({r.path for r in self.routes if r.path != "/"})
        return json_response(404, {"error": f"no such endpoint {path}: use {', '.join(known)}"})


def jsonable(v: Any) -> Any:
    """A JSON-ready value: ISO datetimes, NaN and infinities as null, decimals as floats."""
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return jsonable(float(v))
    if isinstance(v, bytes | bytearray | memoryview):
        return bytes(v).hex()
    if isinstance(v, uuid.UUID):
        return str(v)
    if hasattr(v, "item"):  # numpy scalars
        return jsonable(v.item())
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    return str(v)
