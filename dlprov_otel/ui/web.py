"""The dashboard as an HTTP app (see :mod:`dlprov_otel.http.routes`), mounted by ``dlprov ui`` and the collector.

- ``GET /`` and ``GET /ui``: redirect to ``/ui/``.
- ``GET /ui/``, ``GET /ui/<file>``: the single-page app (static files of this package; no
  data in them, so no token needed).
- ``GET /ui/api/...``: JSON documents (bearer token checked like ``/v1/sql``):
  ``dataflows``, ``dataflows/<tag>[?version=N]``, ``executions``, ``executions/<tag>``,
  ``executions/<tag>/prov.<fmt>`` and ``dataflows/<tag>/prov.<fmt>`` (a PROV download:
  json, provn, png, svg, xml, rdf, jsonld); ``executions/<tag>/models/<sha256>``: a model
  file the run recorded in ``otrainedmodel``, served from its recorded path only while the
  file's sha256 still equals the recorded one (a request names a digest, never a path);
  ``lineage?digest=<sha256>``: the runs that made or used a file (``dlprov lineage``), and
  ``lineage/prov.<fmt>?digest=<sha256>`` its PROV sub-graph.

The SQL console posts to ``/v1/sql`` and the connection light asks ``/health``: the query app
(:class:`dlprov_otel.http.QueryApp`) that is mounted next to this one answers them.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from dlprov_otel import prov
from dlprov_otel.errors import SpecError
from dlprov_otel.http import (
    HTTPError,
    Request,
    Response,
    Route,
    SharedStore,
    TokenCheck,
    json_api,
    json_response,
    jsonable,
)
from dlprov_otel.store import Store

from . import data

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
API = "/ui/api/"
MAX_MODEL_BYTES = 2 << 30  # a model download is read into memory once


class DashboardApp:
    """The dashboard's pages and JSON API over ``stores``, its data behind ``auth``."""

    def __init__(self, stores: SharedStore, auth: TokenCheck) -> None:
        self.stores = stores
        self.auth = auth

    def routes(self) -> Sequence[Route]:
        return [
            Route("GET", "/", _to_app),
            Route("GET", "/ui", _to_app),
            Route("GET", API, json_api(self.auth, self.api), prefix=True),
            Route("GET", "/ui/", static, prefix=True),
        ]

    def api(self, request: Request) -> Response:
        """``/ui/api/...``: a JSON document, or a PROV file as a download."""
        segments = [unquote(s) for s in request.path[len(API):].split("/")]
        store = self.stores.get()  # StoreError: 503
        try:
            doc = _route(store, segments, request.query)
        except data.NotFound as exc:
            raise HTTPError(404, str(exc)) from exc
        if isinstance(doc, tuple):  # a file: (body, content type, file name)
            body, ctype, name = doc
            headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
            return Response(200, body, ctype, headers)
        return json_response(200, jsonable(doc), {"Cache-Control": "no-store"})


def _to_app(request: Request) -> Response:
    return Response(302, b"", "text/plain", {"Location": "/ui/"})


def static(request: Request) -> Response:
    """A file of the single-page app (``index.html`` for ``/ui/``)."""
    rel = request.path[len("/ui/"):] or "index.html"
    target = (STATIC / rel).resolve()
    if not target.is_relative_to(STATIC) or not target.is_file():
        raise HTTPError(404, f"no such dashboard file /ui/{rel}")
    ctype = _TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    # no-cache: a new version of the app is picked up at once (the files are small)
    return Response(200, target.read_bytes(), ctype, {"Cache-Control": "no-cache", **_SECURITY})


def _route(store: Store, segments: list[str], query: dict[str, str]) -> Any:
    match segments:
        case ["executions"]:
            return data.list_executions(store)
        case ["executions", tag]:
            return data.execution_detail(store, tag)
        case ["executions", tag, name] if name.startswith("prov."):
            return _prov(store, name, execution=tag)
        case ["executions", tag, "models", digest]:
            return _model_file(store, tag, digest)
        case ["dataflows"]:
            return data.list_dataflows(store)
        case ["dataflows", tag]:
            version = query.get("version")
            if version is not None and not version.isdigit():
                raise HTTPError(400, f"version must be a whole number, got {version!r}")
            return data.dataflow_detail(store, tag, int(version) if version else None)
        case ["dataflows", tag, name] if name.startswith("prov."):
            return _prov(store, name, dataflow=tag)
        case ["lineage"]:  # the runs that made or used the file with this sha256 (H1)
            return _lineage(store, query.get("digest") or "")
        case ["lineage", name] if name.startswith("prov."):
            return _lineage(store, query.get("digest") or "", name[len("prov."):].lower())
        case ["queries"]:
            try:
                return data.example_queries(query.get("dataflow") or "mnist")
            except SpecError as exc:
                raise HTTPError(400, str(exc)) from exc
    raise HTTPError(404, f"no dashboard API {API}{'/'.join(segments)}: use executions, "
                    "executions/TAG, executions/TAG/prov.FORMAT, executions/TAG/models/SHA256, dataflows, "
                    "dataflows/TAG, queries, lineage?digest=SHA256")


def _lineage(store: Store, digest: str, fmt: str | None = None) -> Any:
    """``lineage?digest=``: the lineage document (see store/artifacts.py), or with ``prov.FMT``
    its PROV sub-graph as a download."""
    from dlprov_otel.store import artifacts

    try:
        lin = artifacts.lineage(store, digest)
    except artifacts.DigestError as exc:
        raise HTTPError(400, str(exc)) from exc
    if not lin.found:
        raise HTTPError(404, f"no stored artifact has sha256 {lin.digest}")
    if fmt is None:
        return artifacts.as_json(lin)
    if fmt not in _PROV_TYPES:
        raise HTTPError(404, f"unknown PROV format {fmt!r}: use one of {', '.join(_PROV_TYPES)}")
    from dlprov_otel.prov.lineage import write_lineage

    with tempfile.TemporaryDirectory(prefix="dlprov-ui-") as tmp:
        path = write_lineage(store, lin, fmt, tmp)[0]
        return path.read_bytes(), _PROV_TYPES[fmt], path.name


def _model_file(store: Store, tag: str, digest: str) -> tuple[bytes, str, str]:
    """A recorded model file, as a download, if it still has the digest it was recorded with."""
    digest = digest.lower()
    if not data.SHA256_HEX.fullmatch(digest):
        raise HTTPError(404, "a model is named by the sha256 recorded for it (64 hexadecimal digits)")
    path = data.stored_models(store, tag).get(digest)
    if path is None:
        raise HTTPError(404, f"execution {tag!r} recorded no model file with sha256 {digest}")
    target = Path(path)
    try:
        if not target.is_file():
            raise HTTPError(404, f"the model file recorded at {path} is no longer a file on this host")
        if target.stat().st_size > MAX_MODEL_BYTES:
            raise HTTPError(413, f"{path} is larger than {MAX_MODEL_BYTES} bytes: copy it from the host")
        body = target.read_bytes()
    except OSError as exc:
        raise HTTPError(404, f"cannot read the model file recorded at {path}: {exc.strerror or exc}") from exc
    if hashlib.sha256(body).hexdigest() != digest:  # hashed as read: what is served is what was checked
        raise HTTPError(409, f"{path} changed since the run recorded it (its sha256 is no longer {digest})")
    name = re.sub(r'[^\w.+-]', "_", target.name) or "model"
    return body, "application/octet-stream", name


def _prov(store: Store, name: str, execution: str | None = None, dataflow: str | None = None) -> tuple[bytes, str, str]:
    """Build the PROV document with the PROV export and return it as a download."""
    fmt = name[len("prov."):].lower()
    if fmt not in _PROV_TYPES:
        raise HTTPError(404, f"unknown PROV format {fmt!r}: use one of {', '.join(_PROV_TYPES)}")
    with tempfile.TemporaryDirectory(prefix="dlprov-ui-") as tmp:
        try:
            paths = prov.export(store, execution=execution, dataflow=dataflow, formats=(fmt,), out_dir=tmp)
        except prov.UnknownTagError as exc:
            raise HTTPError(404, str(exc)) from exc
        except prov.ProvExportError as exc:
            raise HTTPError(500, f"PROV export failed: {exc}") from exc
        path = paths[0]
        return path.read_bytes(), _PROV_TYPES[fmt], path.name
