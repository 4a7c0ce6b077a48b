"""The DLProv collector: owns the provenance store, receives OTLP, answers read-only SQL.

``dlprov collector serve`` (or ``python -m dlprov_otel.collector.server``) listens on

- OTLP/HTTP ``POST /v1/traces`` (protobuf or OTLP/JSON, gzip or deflate) and OTLP/gRPC
  ``TraceService/Export``: decoded with ``opentelemetry-proto`` and written through the same
  ``Store.ingest`` as the in-process exporter. A request is acknowledged only once its spans
  are committed; a span delivered twice is stored once (the store is idempotent on ids).
- ``POST /v1/sql`` (``{"sql": "SET SCHEMA \\"mnist\\"; SELECT ..."}``): read-only SQL, run in
  one session and rolled back; ``GET /v1/executions``; ``GET /health`` (and ``/healthz``).

Answers: 400 for undecodable payloads, 401 for a missing or wrong token, 403 for SQL that
writes, 413 for bodies over the limit, 429 (overloaded) and 503 (store unavailable) with
``Retry-After`` — the statuses OTLP clients retry. Spans that decode but cannot be stored
(a malformed DLProv span) are isolated, saved to the reject directory (replayable with
``dlprov replay --spool-dir``) and reported as an OTLP partial success; the rest are stored.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import decimal
import hmac
import ipaddress
import json
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from dlprov_otel import semconv, spool
from dlprov_otel.errors import DLProvError, QueryError, SpecError, StoreError, StoreLockedError, StoreURLError
from dlprov_otel.records import SpanRecord, from_otlp
from dlprov_otel.store import Store, default_store_url, normalize_url, open_store

from . import decode
from .sqlguard import SQLRefused, check_read_only

logger = logging.getLogger("dlprov.collector")

DEFAULT_MAX_BODY = 64 * 1024 * 1024
DEFAULT_SQL_BODY = 1024 * 1024
RETRY_AFTER_BUSY = 1  # seconds, 429
RETRY_AFTER_STORE = 2  # seconds, 503
# A batch that keeps failing span by span points at the store, not at the spans: stop
# bisecting after this many rejects and answer 503 so the sender retries it whole.
MAX_REJECTS = 64
_KIND_ORDER = {semconv.KIND_DATAFLOW: 0, semconv.KIND_EXECUTION_START: 1, semconv.KIND_EXECUTION: 2}


class Overloaded(DLProvError):
    """Too many requests in flight; the sender should retry shortly."""


class Unauthorized(DLProvError):
    """A missing or wrong bearer token."""


@dataclass
class Settings:
    """How a collector listens and where it stores."""

    store: str = field(default_factory=default_store_url)
    host: str = "127.0.0.1"
    http_port: int = 4318
    grpc_port: int | None = 4317  # None: no gRPC
    token: str | None = None
    insecure: bool = False
    max_body: int = DEFAULT_MAX_BODY
    max_inflight: int = 16
    reject_dir: str | None = None


@dataclass
class IngestResult:
    """What one export request did: spans received, newly stored, rejected."""

    received: int = 0
    stored: int = 0
    rejected: int = 0
    message: str = ""


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Collector:
    """The store owner shared by the HTTP and gRPC front ends."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = normalize_url(settings.store)
        self.token = settings.token or None
        default_rejects = spool.default_spool_dir().parent / "rejected"
        self.reject_dir = Path(settings.reject_dir) if settings.reject_dir else default_rejects
        self._store: Store | None = None
        self._store_lock = threading.Lock()
        self._open_error = ""
        self._next_open = 0.0
        self._slots = threading.BoundedSemaphore(max(1, settings.max_inflight))
        self._counts_lock = threading.Lock()
        self.counts = {"requests": 0, "spans_received": 0, "spans_stored": 0, "spans_rejected": 0, "store_errors": 0}
        self._closed = False

    # -- the store ------------------------------------------------------------------------
    def open(self) -> None:
        """Open the store now: errors that retrying will not cure (a locked or malformed store) raise."""
        try:
            self.store()
        except (StoreLockedError, StoreURLError):
            raise
        except StoreError as exc:
            if self.url.startswith("monetdbe:"):
                raise
            logger.warning("store %s unavailable, answering 503 until it is: %s", self._describe(), exc)

    def store(self) -> Store:
        """The open store; reopens a server store that went away (at most every 2 s)."""
        with self._store_lock:
            if self._closed:
                raise StoreError("the collector is shutting down")
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

    def _describe(self) -> str:
        from dlprov_otel.store import describe

        return describe(self.url)

    def _alive(self, store: Store) -> bool:
        """Whether the store still answers; a dead server connection is dropped for a reopen."""
        try:
            store.query("SELECT 1")
            return True
        except Exception as exc:
            if not self.url.startswith("monetdbe:"):
                with self._store_lock:
                    if self._store is store:
                        self._store = None
                        self._open_error = f"lost the connection to {store.url}: {exc}"
                        self._next_open = time.monotonic() + RETRY_AFTER_STORE
                with contextlib.suppress(Exception):
                    store.close()
            return False

    def close(self) -> None:
        with self._store_lock:
            self._closed = True
            store, self._store = self._store, None
        if store is not None:
            with store.lock:  # waits for an ingest in progress to commit
                pass
            store.close()

    # -- admission ------------------------------------------------------------------------
    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Admit one request, or raise :class:`Overloaded` when ``max_inflight`` are running."""
        if not self._slots.acquire(timeout=0.5):
            raise Overloaded(f"{self.settings.max_inflight} requests in flight; retry shortly")
        try:
            yield
        finally:
            self._slots.release()

    def authorize(self, header: str | None) -> None:
        """Check an ``Authorization`` value; without a configured token anything passes."""
        if self.token is None:
            return
        if not header:
            raise Unauthorized("missing bearer token (Authorization: Bearer TOKEN)")
        scheme, _, given = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            raise Unauthorized("wrong bearer token")

    # -- ingest ---------------------------------------------------------------------------
    def ingest(self, request: ExportTraceServiceRequest) -> IngestResult:
        """Store a decoded request; returns once everything stored is committed.

        Raises :class:`StoreError` when the store cannot take it (the sender should retry).
        """
        decode.validate(request)
        result = IngestResult(received=decode.span_count(request))
        records = from_otlp(request)
        with self._counts_lock:
            self.counts["requests"] += 1
            self.counts["spans_received"] += result.received
        if not records:
            return result
        records.sort(key=lambda r: _KIND_ORDER.get(r.kind or "", 3))
        store = self.store()
        try:
            stored, rejected = self._store_records(store, records)
        except StoreError:
            with self._counts_lock:
                self.counts["store_errors"] += 1
            raise
        result.stored = stored
        if rejected:
            path = self._save_rejects(request, rejected)
            result.rejected = len(rejected)
            first = rejected[0]
            result.message = (
                f"{len(rejected)} DLProv span(s) could not be stored and were saved to {path}; "
                f"first: span {first[0].span_id} ({first[0].name!r}): {first[1]}"
            )
            logger.error("%s", result.message)
        with self._counts_lock:
            self.counts["spans_stored"] += stored
            self.counts["spans_rejected"] += len(rejected)
        return result

    def _store_records(self, store: Store, records: list[SpanRecord]) -> tuple[int, list[tuple[SpanRecord, str]]]:
        """Store records, bisecting a failing batch to find the spans that cannot be stored."""
        try:
            return store.ingest(records), []
        except SpecError as exc:
            error = str(exc)
        except StoreError as exc:
            # a failure of the store itself is retried by the sender; one of the data is isolated
            if not self._alive(store):
                raise
            error = str(exc)
        if len(records) == 1:
            return 0, [(records[0], error)]
        mid = len(records) // 2
        stored, rejected = self._store_records(store, records[:mid])
        if len(rejected) > MAX_REJECTS:
            raise StoreError(f"more than {MAX_REJECTS} spans of one batch failed; last error: {error}")
        more, rejected2 = self._store_records(store, records[mid:])
        rejected += rejected2
        if len(rejected) > MAX_REJECTS:
            raise StoreError(f"more than {MAX_REJECTS} spans of one batch failed; last error: {error}")
        return stored + more, rejected

    def _save_rejects(self, request: ExportTraceServiceRequest, rejected: list[tuple[SpanRecord, str]]) -> Path:
        """Keep the rejected spans as an OTLP file (replayable); a failure here is a store error."""
        keys = {(r.trace_id, r.span_id) for r, _ in rejected}
        kept = ExportTraceServiceRequest()
        for rs in request.resource_spans:
            out_rs = None
            for ss in rs.scope_spans:
                spans = [s for s in ss.spans if (s.trace_id.hex(), s.span_id.hex()) in keys]
                if not spans:
                    continue
                if out_rs is None:
                    out_rs = kept.resource_spans.add()
                    out_rs.resource.CopyFrom(rs.resource)
                    out_rs.schema_url = rs.schema_url
                out_ss = out_rs.scope_spans.add()
                out_ss.scope.CopyFrom(ss.scope)
                out_ss.schema_url = ss.schema_url
                out_ss.spans.extend(spans)
        try:
            return spool.write(kept.SerializeToString(), self.reject_dir)
        except OSError as exc:
            raise StoreError(f"cannot save rejected spans to {self.reject_dir}: {exc}") from exc

    # -- queries --------------------------------------------------------------------------
    def query(self, sql: str) -> tuple[list[str], list[list[Any]]]:
        """Run read-only SQL (refused with :class:`SQLRefused` when it would write)."""
        statements = check_read_only(sql)
        result = self.store().run_script(statements, read_only=True)
        return result.columns, [[jsonable(v) for v in row] for row in result.rows]

    def executions(self) -> list[dict[str, Any]]:
        result = self.store().executions()
        return [{c: jsonable(v) for c, v in zip(result.columns, row, strict=False)} for row in result.rows]

    def health(self) -> tuple[bool, dict[str, Any]]:
        try:
            store = self.store()
        except StoreError as exc:
            return False, {"status": "unavailable", "store": self._describe(), "error": str(exc)}
        with self._counts_lock:
            counts = dict(self.counts)
        return True, {"status": "ok", "store": store.url, "token_required": self.token is not None, **counts}


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


# --- OTLP/HTTP, SQL and health over HTTP -------------------------------------------------
class Handler(BaseHTTPRequestHandler):
    """One HTTP request; ``collector`` is set on the subclass made by :func:`make_http_server`."""

    collector: Collector
    protocol_version = "HTTP/1.1"  # keep-alive: OTLP exporters reuse their connection
    server_version = "dlprov-collector"
    timeout = 120  # a stalled client frees its thread

    # routing ------------------------------------------------------------------------------
    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path in ("/health", "/healthz"):
            ok, body = self.collector.health()
            self._json(200 if ok else 503, body, retry_after=None if ok else RETRY_AFTER_STORE)
        elif path == "/v1/executions":
            self._guarded(lambda: self._json(200, self.collector.executions()))
        elif path in ("/v1/traces", "/v1/sql"):
            self._json(405, {"error": f"{path} takes POST"}, allow="POST")
        elif path in ("/", "/ui") or path.startswith("/ui/"):
            self._dashboard()
        else:
            self._json(404, {"error": f"no such endpoint {path}: use /v1/traces, /v1/sql, /v1/executions, /health"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path == "/v1/traces":
            self._traces()
        elif path == "/v1/sql":
            self._guarded(self._sql)
        else:
            self.close_connection = True  # the body is not read
            if path in ("/v1/executions", "/health", "/healthz"):
                self._json(405, {"error": f"{path} takes GET"}, allow="GET")
            else:
                self._json(404, {"error": f"no such endpoint {path}: use /v1/traces, /v1/sql, /v1/executions, /health"})

    def _dashboard(self) -> None:
        """``/ui/...``: the web dashboard (package ``dlprov_otel.ui``), when it is installed."""
        try:
            from dlprov_otel.ui import handle_get
        except ImportError:
            self._json(404, {"error": "the dashboard (dlprov_otel.ui) is not installed"})
            return
        handle_get(self)

    def _other(self) -> None:
        self.close_connection = True
        self._json(405, {"error": f"{self.command} is not supported: use GET or POST"}, allow="GET, POST")

    do_PUT = do_DELETE = do_PATCH = _other

    def handle_expect_100(self) -> bool:
        # answer 413 before the client sends a body that would be refused anyway
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            n = 0
        limit = self.collector.settings.max_body
        if urlsplit(self.path).path == "/v1/traces" and n > limit:
            self.close_connection = True
            as_json = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower() in decode.JSON_TYPES
            self._otlp_error(413, f"the body has {n} bytes, over the limit of {limit} bytes", as_json)
            return False
        return super().handle_expect_100()

    # OTLP -------------------------------------------------------------------------------
    def _traces(self) -> None:
        ctype = self.headers.get("Content-Type")
        as_json = (ctype or "").split(";")[0].strip().lower() in decode.JSON_TYPES
        try:
            self.collector.authorize(self.headers.get("Authorization"))
            with self.collector.slot():
                body = self._read_body(self.collector.settings.max_body)
                body = decode.decompress(body, self.headers.get("Content-Encoding"), self.collector.settings.max_body)
                request = decode.parse(body, ctype)
                result = self.collector.ingest(request)
        except Unauthorized as exc:
            self.close_connection = True
            self._otlp_error(401, str(exc), as_json, extra={"WWW-Authenticate": 'Bearer realm="dlprov"'})
        except Overloaded as exc:
            self.close_connection = True
            self._otlp_error(429, str(exc), as_json, retry_after=RETRY_AFTER_BUSY)
        except decode.PayloadError as exc:
            self._otlp_error(exc.status, str(exc), as_json)
        except StoreError as exc:
            self._otlp_error(503, f"provenance store unavailable: {exc}", as_json, retry_after=RETRY_AFTER_STORE)
        except Exception as exc:  # a bug must not cost the spans: the sender retries a 503
            logger.exception("ingest failed")
            message = f"internal error: {type(exc).__name__}: {exc}"
            self._otlp_error(503, message, as_json, retry_after=RETRY_AFTER_STORE)
        else:
            response = ExportTraceServiceResponse()
            if result.rejected:
                response.partial_success.CopyFrom(
                    ExportTracePartialSuccess(rejected_spans=result.rejected, error_message=result.message)
                )
            if as_json:
                from google.protobuf import json_format

                self._send(200, json_format.MessageToJson(response).encode(), "application/json")
            else:
                self._send(200, response.SerializeToString(), "application/x-protobuf")

    def _otlp_error(
        self,
        status: int,
        message: str,
        as_json: bool,
        retry_after: int | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        # OTLP/HTTP: the body of a failure is a google.rpc.Status in the request's encoding
        if as_json:
            body = json.dumps({"code": status, "message": message}).encode()
            ctype = "application/json"
        else:
            body = status_pb2.Status(code=status, message=message).SerializeToString()
            ctype = "application/x-protobuf"
        self._send(status, body, ctype, retry_after=retry_after, extra=extra)

    def _read_body(self, limit: int) -> bytes:
        length = self.headers.get("Content-Length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                self.close_connection = True
                raise decode.PayloadError(400, f"Content-Length {length!r} is not a number") from None
            if n > limit:
                self._discard(n, limit)
                raise decode.PayloadError(413, f"the body has {n} bytes, over the limit of {limit} bytes")
            return self.rfile.read(n)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit)
        self.close_connection = True
        raise decode.PayloadError(411, "a Content-Length (or chunked transfer encoding) is required")

    def _discard(self, n: int, limit: int) -> None:
        """Read and drop a refused body, so the client reads the answer instead of a reset."""
        if n > 4 * limit:
            self.close_connection = True  # not worth reading: hang up after answering
            return
        while n > 0:
            chunk = self.rfile.read(min(n, 1 << 20))
            if not chunk:
                break
            n -= len(chunk)

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024).strip()
            try:
                size = int(line.split(b";")[0], 16)
            except ValueError:
                self.close_connection = True
                raise decode.PayloadError(400, f"malformed chunk size {line[:40]!r}") from None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(parts)
            total += size
            if total > limit:
                self.close_connection = True
                raise decode.PayloadError(413, f"the body exceeds the limit of {limit} bytes")
            parts.append(self.rfile.read(size))
            self.rfile.readline(8)  # CRLF after the chunk

    # SQL --------------------------------------------------------------------------------
    def _sql(self) -> None:
        body = self._read_body(DEFAULT_SQL_BODY)
        try:
            doc = json.loads(body or b"null")
        except ValueError as exc:
            raise decode.PayloadError(400, f'the body is not JSON: {exc}; send {{"sql": "SELECT ..."}}') from None
        sql = doc.get("sql") if isinstance(doc, dict) else None
        if not isinstance(sql, str):
            raise decode.PayloadError(400, 'send a JSON object {"sql": "SELECT ..."}')
        columns, rows = self.collector.query(sql)
        self._json(200, {"columns": columns, "rows": rows})

    def _guarded(self, action: Any) -> None:
        """Authorize, run, and map errors to statuses for the JSON endpoints."""
        try:
            self.collector.authorize(self.headers.get("Authorization"))
            action()
        except Unauthorized as exc:
            self.close_connection = True
            self._json(401, {"error": str(exc)}, extra={"WWW-Authenticate": 'Bearer realm="dlprov"'})
        except decode.PayloadError as exc:
            self._json(exc.status, {"error": str(exc)})
        except SQLRefused as exc:
            self._json(403, {"error": f"refused: {exc}"})
        except QueryError as exc:
            self._json(400, {"error": str(exc)})
        except StoreError as exc:
            self._json(503, {"error": f"provenance store unavailable: {exc}"}, retry_after=RETRY_AFTER_STORE)
        except Exception as exc:
            logger.exception("request %s failed", self.path)
            self._json(500, {"error": f"internal error: {type(exc).__name__}: {exc}"})

    # responses --------------------------------------------------------------------------
    def _json(self, status: int, doc: Any, retry_after: int | None = None, allow: str | None = None,
              extra: dict[str, str] | None = None) -> None:
        body = json.dumps(doc, allow_nan=False).encode()
        headers = dict(extra or {})
        if allow:
            headers["Allow"] = allow
        self._send(status, body, "application/json", retry_after=retry_after, extra=headers)

    def _send(self, status: int, body: bytes, ctype: str, retry_after: int | None = None,
              extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if retry_after is not None:
            self.send_header("Retry-After", str(retry_after))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # restart on the same port while old sockets are in TIME_WAIT


def make_http_server(collector: Collector, host: str, port: int) -> ThreadingHTTPServer:
    """The HTTP front end bound to ``host:port`` (not yet serving)."""
    handler = type("BoundHandler", (Handler,), {"collector": collector})
    server_cls = _HTTPServer
    if ":" in host:
        server_cls = type("_HTTPServer6", (_HTTPServer,), {"address_family": socket.AF_INET6})
    return server_cls((host.strip("[]"), port), handler)


# --- OTLP/gRPC ------------------------------------------------------------------------------
def make_grpc_server(collector: Collector, host: str, port: int) -> tuple[Any, int]:
    """The OTLP/gRPC front end, started; returns (server, bound port)."""
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: ExportTraceServiceRequest, context: Any) -> ExportTraceServiceResponse:
            auth = dict(context.invocation_metadata()).get("authorization")
            try:
                collector.authorize(auth)
                with collector.slot():
                    result = collector.ingest(request)
            except Unauthorized as exc:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
            except decode.PayloadError as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            except (Overloaded, StoreError) as exc:
                # UNAVAILABLE is retried by every OTLP/gRPC client (RESOURCE_EXHAUSTED is not, by Go's)
                context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
            except Exception as exc:
                logger.exception("gRPC ingest failed")
                context.abort(grpc.StatusCode.UNAVAILABLE, f"internal error: {type(exc).__name__}: {exc}")
            response = ExportTraceServiceResponse()
            if result.rejected:
                response.partial_success.rejected_spans = result.rejected
                response.partial_success.error_message = result.message
            return response

    server = grpc.server(
        futures.ThreadPoolExecutor(
            max_workers=max(2, collector.settings.max_inflight), thread_name_prefix="dlprov-grpc"
        ),
        options=[
            ("grpc.max_receive_message_length", collector.settings.max_body),
            ("grpc.so_reuseport", 0),  # a second collector on the same port must fail, not share it
        ],
    )
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(), server)
    address = f"[{host.strip('[]')}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise DLProvError(f"cannot listen for OTLP/gRPC on {address}: {exc}") from exc
    if not bound:
        raise DLProvError(f"cannot listen for OTLP/gRPC on {address} (port in use?)")
    server.start()
    return server, bound


# --- running --------------------------------------------------------------------------------
def serve(settings: Settings, ready: threading.Event | None = None) -> int:
    """Run the collector until SIGTERM/SIGINT (or :func:`stop`); returns an exit code."""
    if not is_loopback(settings.host) and not settings.token and not settings.insecure:
        raise DLProvError(
            f"refusing to listen on {settings.host} without a token: anyone who reaches it could read "
            "and write provenance. Give --token (or DLPROV_TOKEN), or --insecure on a trusted network"
        )
    collector = Collector(settings)
    collector.open()
    try:
        httpd = make_http_server(collector, settings.host, settings.http_port)
    except OSError as exc:
        collector.close()
        raise DLProvError(f"cannot listen for OTLP/HTTP on {settings.host}:{settings.http_port}: {exc}") from exc
    grpc_server = None
    grpc_port = None
    try:
        if settings.grpc_port is not None:
            grpc_server, grpc_port = make_grpc_server(collector, settings.host, settings.grpc_port)
    except DLProvError:
        httpd.server_close()
        collector.close()
        raise
    _running.append(httpd)
    http_port = httpd.server_address[1]
    logger.info(
        "DLProv collector on http://%s:%d (/v1/traces, /v1/sql, /v1/executions, /health, dashboard /ui/)%s; "
        "store %s; token %s",
        settings.host, http_port,
        f", OTLP/gRPC on {settings.host}:{grpc_port}" if grpc_port else "",
        collector._describe(), "required" if collector.token else "not required",
    )
    _install_signal_handlers(httpd)
    if ready is not None:
        ready.set()
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        if grpc_server is not None:
            grpc_server.stop(grace=5).wait(10)
        httpd.server_close()
        collector.close()
        with contextlib.suppress(ValueError):
            _running.remove(httpd)
        logger.info("DLProv collector stopped")
    return 0


_running: list[ThreadingHTTPServer] = []


def stop() -> None:
    """Stop collectors started by :func:`serve` in this process."""
    for httpd in list(_running):
        threading.Thread(target=httpd.shutdown, daemon=True).start()


def _install_signal_handlers(httpd: ThreadingHTTPServer) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def _stop(signum: int, frame: Any) -> None:
        logger.info("signal %d: stopping", signum)
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)


_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2,
               "mib": 1024**2, "g": 1000**3, "gb": 1000**3, "gib": 1024**3}


def parse_size(text: str) -> int:
    """``64MiB``, ``10M``, ``1000000`` -> bytes."""
    raw = str(text).strip().lower().replace(" ", "")
    digits = raw.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = raw[len(digits):]
    try:
        value = float(digits)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 64MiB)") from None
    if unit not in _SIZE_UNITS or value <= 0:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 64MiB)")
    return int(value * _SIZE_UNITS[unit])


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``dlprov collector serve``."""
    p.add_argument("--store", help="store URL or path (default: $DLPROV_STORE or ./dlprov-data)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--http-port", type=int, default=4318, help="OTLP/HTTP and query port (default 4318; 0: any)")
    p.add_argument("--grpc-port", type=int, default=4317, help="OTLP/gRPC port (default 4317; 0: any)")
    p.add_argument("--no-grpc", action="store_true", help="do not listen for OTLP/gRPC")
    p.add_argument("--token", help="bearer token required from clients (default: $DLPROV_TOKEN)")
    p.add_argument("--insecure", action="store_true", help="allow listening beyond loopback without a token")
    p.add_argument("--max-body", type=parse_size, default=DEFAULT_MAX_BODY,
                   help="largest request body, also after decompression (default 64MiB)")
    p.add_argument("--max-inflight", type=int, default=16, help="requests handled at once before 429 (default 16)")
    p.add_argument("--reject-dir", help="where spans that cannot be stored are kept as OTLP files "
                   "(default: next to the spool, ~/.cache/dlprov/rejected)")
    p.add_argument("--log-level", default=os.environ.get("DLPROV_LOG_LEVEL", "INFO"),
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def settings_from_args(args: argparse.Namespace) -> Settings:
    token = args.token if args.token is not None else os.environ.get("DLPROV_TOKEN")
    return Settings(
        store=args.store or default_store_url(),
        host=args.host,
        http_port=args.http_port,
        grpc_port=None if args.no_grpc else args.grpc_port,
        token=token or None,
        insecure=args.insecure,
        max_body=args.max_body,
        max_inflight=args.max_inflight,
        reject_dir=args.reject_dir,
    )


def run_from_args(args: argparse.Namespace) -> int:
    """Entry of ``dlprov collector serve``."""
    logging.basicConfig(
        level=getattr(logging, args.log_level), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("monetdbe").setLevel(logging.WARNING)  # it logs every result cleanup at INFO
    return serve(settings_from_args(args))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dlprov_otel.collector.server [options]`` (the options of ``collector serve``)."""
    parser = argparse.ArgumentParser(prog="dlprov collector serve", description=__doc__.split("\n\n")[0])
    add_serve_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_from_args(args)
    except DLProvError as exc:
        print(f"dlprov collector: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
