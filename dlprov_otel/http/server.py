"""One threaded HTTP server that mounts apps side by side (see :mod:`dlprov_otel.http.routes`).

The request handler does the HTTP work every app shares: reading a body with a limit
(``Content-Length`` or chunked, a refused body drained so the client reads the answer),
``Expect: 100-continue``, keep-alive (a connection whose body was not read is closed), and a
500 for a handler that fails. :func:`serve_forever` runs a server until SIGTERM/SIGINT or
:func:`stop`.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dlprov_otel.errors import DLProvError

from .routes import App, HTTPError, Request, Response, Route, Router, json_response

logger = logging.getLogger("dlprov.http")


class _Handler(BaseHTTPRequestHandler):
    """One HTTP request; ``router`` is set on the subclass made by :func:`make_server`."""

    router: Router
    protocol_version = "HTTP/1.1"  # keep-alive: OTLP exporters reuse their connection
    # headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK held every answer that has a body for 40 ms
    disable_nagle_algorithm = True
    timeout = 120  # a stalled client frees its thread
    _body_pending = False

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        self._body_pending = self._has_body()
        found = self.router.find(self.command, parts.path)
        if isinstance(found, Route):
            try:
                response = found.handler(self._request(parts.path, parts.query))
            except HTTPError as exc:
                response = exc.response()
            except Exception as exc:
                logger.exception("%s %s failed", self.command, parts.path)
                response = json_response(500, {"error": f"internal error: {type(exc).__name__}: {exc}"})
        else:
            response = found
        if self._body_pending:
            self.close_connection = True  # the body was not read: hang up after answering
        self._write(response)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

    def handle_expect_100(self) -> bool:
        parts = urlsplit(self.path)
        found = self.router.find(self.command, parts.path)
        if isinstance(found, Route) and found.expect is not None:
            refusal = found.expect(self._request(parts.path, parts.query))
            if refusal is not None:
                self.close_connection = True
                self._write(refusal)
                return False
        return super().handle_expect_100()

    def _request(self, path: str, query: str) -> Request:
        return Request(
            method=self.command,
            path=path,
            query={k: v[-1] for k, v in parse_qs(query).items()},
            headers=self.headers,  # type: ignore[arg-type]  # an email.message.Message: case-insensitive
            read_body=self._read_body,
        )

    # the body -----------------------------------------------------------------------------
    def _has_body(self) -> bool:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return True
        try:
            return int(self.headers.get("Content-Length") or 0) > 0
        except ValueError:
            return True

    def _read_body(self, limit: int) -> bytes:
        length = self.headers.get("Content-Length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                raise HTTPError(400, f"Content-Length {length!r} is not a number") from None
            if n < 0:
                raise HTTPError(400, f"Content-Length {length!r} is negative")
            if n > limit:
                self._discard(n, limit)
                raise HTTPError(413, f"the body has {n} bytes, over the limit of {limit} bytes")
            self._body_pending = False
            return self.rfile.read(n)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit)
        raise HTTPError(411, "a Content-Length (or chunked transfer encoding) is required")

    def _discard(self, n: int, limit: int) -> None:
        """Read and drop a refused body, so the client reads the answer instead of a reset."""
        if n > 4 * limit:
            return  # not worth reading: hang up after answering
        while n > 0:
            chunk = self.rfile.read(min(n, 1 << 20))
            if not chunk:
                return
            n -= len(chunk)
        self._body_pending = False

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024).strip()
            try:
                size = int(line.split(b";")[0], 16)
            except ValueError:
                raise HTTPError(400, f"malformed chunk size {line[:40]!r}") from None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                self._body_pending = False
                return b"".join(parts)
            total += size
            if total > limit:
                raise HTTPError(413, f"the body exceeds the limit of {limit} bytes")
            parts.append(self.rfile.read(size))
            self.rfile.readline(8)  # CRLF after the chunk

    # the answer ---------------------------------------------------------------------------
    def _write(self, response: Response) -> None:
        if response.close:
            self.close_connection = True
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for k, v in response.headers.items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # restart on the same port while old sockets are in TIME_WAIT


def make_server(apps: Iterable[App], host: str, port: int, name: str = "dlprov") -> ThreadingHTTPServer:
    """A server for ``apps`` bound to ``host:port`` (not yet serving); ``name`` is its Server header."""
    handler = type("Handler", (_Handler,), {"router": Router(apps), "server_version": name})
    server_cls: type[_HTTPServer] = _HTTPServer
    if ":" in host:
        server_cls = type("_HTTPServer6", (_HTTPServer,), {"address_family": socket.AF_INET6})
    try:
        return server_cls((host.strip("[]"), port), handler)
    except OSError as exc:
        raise DLProvError(f"cannot listen for HTTP on {host}:{port}: {exc}") from exc


_running: list[ThreadingHTTPServer] = []


def serve_forever(httpd: ThreadingHTTPServer, ready: Callable[[], None] | None = None) -> None:
    """Serve until SIGTERM/SIGINT (in the main thread) or :func:`stop`; closes the socket."""
    _running.append(httpd)
    _install_signal_handlers(httpd)
    try:
        if ready is not None:
            ready()
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
        with contextlib.suppress(ValueError):
            _running.remove(httpd)


def stop() -> None:
    """Stop the servers that :func:`serve_forever` runs in this process."""
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
