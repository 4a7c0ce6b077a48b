"""HTTP routes of the dashboard, called by the collector's request handler.

- ``GET /`` and ``GET /ui``: redirect to ``/ui/``.
- ``GET /ui/``, ``GET /ui/<file>``: the single-page app (static files of this package; no
  data in them, so no token needed).
- ``GET /ui/api/...``: JSON documents (bearer token checked like ``/v1/sql``):
  ``dataflows``, ``dataflows/<tag>[?version=N]``, ``executions``, ``executions/<tag>``,
  ``executions/<tag>/prov.<fmt>`` and ``dataflows/<tag>/prov.<fmt>`` (a PROV download:
  json, provn, png, svg, xml, rdf, jsonld).

The SQL console posts to the collector's own ``/v1/sql`` (read-only guard included).
"""

from __future__ import annotations

import json
import mimetypes
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from dlprov_otel.errors import DLProvError

from . import data

if TYPE_CHECKING:
    from http.server import BaseHTTPRequestHandler

STATIC = Path(__file__).resolve().parent / "static"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",  # ES modules need a JavaScript type
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}
_PROV_TYPES = {
    "json": "application/json",
    "provn": "text/provenance-notation; charset=utf-8",
    "png": "image/png",
    "svg": "image/svg+xml",
    "xml": "application/xml",
    "rdf": "text/turtle; charset=utf-8",
    "jsonld": "application/ld+json",
}
# Everything the app loads comes from here: no CDN, no inline script.
_SECURITY = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class RouteError(DLProvError):
    """A dashboard request that cannot be answered; ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def handles(path: str) -> bool:
    """Whether ``path`` belongs to the dashboard."""
    return path in ("/", "/ui") or path.startswith("/ui/")


def handle_get(handler: BaseHTTPRequestHandler) -> None:
    """Answer one ``GET`` for the dashboard on the collector's ``handler``."""
    parts = urlsplit(handler.path)
    path = parts.path
    if path in ("/", "/ui"):
        handler._send(302, b"", "text/plain", extra={"Location": "/ui/"})  # type: ignore[attr-defined]
        return
    if path.startswith("/ui/api/"):
        segments = [unquote(s) for s in path[len("/ui/api/"):].split("/")]
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        handler._guarded(lambda: _api(handler, segments, query))  # type: ignore[attr-defined]
        return
    _static(handler, path[len("/ui/"):])


def _static(handler: Any, rel: str) -> None:
    rel = rel or "index.html"
    target = (STATIC / rel).resolve()
    if not target.is_relative_to(STATIC) or not target.is_file():
        handler._json(404, {"error": f"no such dashboard file /ui/{rel}"})
        return
    ctype = _TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    # no-cache: a new version of the app is picked up at once (the files are small)
    handler._send(200, target.read_bytes(), ctype, extra={"Cache-Control": "no-cache", **_SECURITY})


def _api(handler: Any, segments: list[str], query: dict[str, str]) -> None:
    store = handler.collector.store()  # StoreError: 503, answered by the collector's handler
    try:
        doc = _route(store, segments, query)
    except data.NotFound as exc:
        handler._json(404, {"error": str(exc)})
        return
    except RouteError as exc:
        handler._json(exc.status, {"error": str(exc)})
        return
    if isinstance(doc, tuple):  # a file: (body, content type, file name)
        body, ctype, name = doc
        handler._send(200, body, ctype, extra={
            "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
        return
    from dlprov_otel.collector.server import jsonable

    body = json.dumps(jsonable(doc), allow_nan=False).encode()
    handler._send(200, body, "application/json", extra={"Cache-Control": "no-store"})


def _route(store: Any, segments: list[str], query: dict[str, str]) -> Any:
    match segments:
        case ["executions"]:
            return data.list_executions(store)
        case ["executions", tag]:
            return data.execution_detail(store, tag)
        case ["executions", tag, name] if name.startswith("prov."):
            return _prov(store, name, execution=tag)
        case ["dataflows"]:
            return data.list_dataflows(store)
        case ["dataflows", tag]:
            version = query.get("version")
            if version is not None and not version.isdigit():
                raise RouteError(400, f"version must be a whole number, got {version!r}")
            return data.dataflow_detail(store, tag, int(version) if version else None)
        case ["dataflows", tag, name] if name.startswith("prov."):
            return _prov(store, name, dataflow=tag)
    raise RouteError(404, f"no dashboard API /ui/api/{'/'.join(segments)}: use executions, "
                     "executions/TAG, executions/TAG/prov.FORMAT, dataflows, dataflows/TAG")


def _prov(store: Any, name: str, execution: str | None = None, dataflow: str | None = None) -> tuple[bytes, str, str]:
    """Build the PROV document with the PROV export and return it as a download."""
    from dlprov_otel import prov

    fmt = name[len("prov."):].lower()
    if fmt not in _PROV_TYPES:
        raise RouteError(404, f"unknown PROV format {fmt!r}: use one of {', '.join(_PROV_TYPES)}")
    with tempfile.TemporaryDirectory(prefix="dlprov-ui-") as tmp:
        try:
            paths = prov.export(store, execution=execution, dataflow=dataflow, formats=(fmt,), out_dir=tmp)
        except prov.UnknownTagError as exc:
            raise RouteError(404, str(exc)) from exc
        except prov.ProvExportError as exc:
            raise RouteError(500, f"PROV export failed: {exc}") from exc
        path = paths[0]
        return path.read_bytes(), _PROV_TYPES[fmt], path.name
