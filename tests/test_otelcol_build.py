"""Build the DLProv OpenTelemetry Collector from our manifest and run it with our config.

A stdlib HTTP server stands in for the DLProv collector: it records the OTLP/HTTP requests POSTed
to /v1/traces. Spans are sent to the otelcol with the Python OTLP/HTTP exporter; the sink must
receive them with the token. The Collector's own queue and retries are its business: that our
config turns them on is checked statically in test_docker_files.py.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dlprov_otel.config import free_port
from dlprov_otel.services import otelcol

pytestmark = pytest.mark.collector

import opentelemetry.exporter.otlp.proto.http  # noqa: E402,F401  - the collector extra
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

TOKEN = "test-token-4f1c"
# Fast retries so the tests take seconds, not the production defaults (1s .. 30s).
FAST_RETRY = {"OTELCOL_RETRY_INITIAL": "200ms", "OTELCOL_RETRY_MAX_INTERVAL": "1s"}


class Sink:
    """A fake DLProv collector: records decoded OTLP trace requests POSTed to /v1/traces."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Sink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding", "").lower() == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                req = ExportTraceServiceRequest.FromString(body)
                with sink.lock:
                    sink.requests.append(req)
                    sink.headers.append({k.lower(): v for k, v in self.headers.items()})
                payload = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def span_names(self) -> list[str]:
        with self.lock:
            return [
                span.name
                for req in self.requests
                for rs in req.resource_spans
                for ss in rs.scope_spans
                for span in ss.spans
            ]

    def wait_for(self, name: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if name in self.span_names():
                return True
            time.sleep(0.1)
        return False


def make_span(name: str) -> ReadableSpan:
    """One finished span, with a resource and an attribute to check on the other side."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "otelcol-test"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("tests.otelcol").start_as_current_span(name) as span:
        span.set_attribute("dlprov.test.id", name)
    provider.shutdown()
    (finished,) = memory.get_finished_spans()
    return finished


def send(col: otelcol.OtelCol, name: str) -> None:
    exporter = OTLPSpanExporter(endpoint=f"{col.http_endpoint}/v1/traces", timeout=10)
    try:
        assert exporter.export([make_span(name)]) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()


@pytest.fixture(scope="module")
def binary() -> Path:
    if (
        not otelcol.binary_path().exists()
        and shutil.which("go") is None
        and not Path("/usr/local/go/bin/go").exists()
    ):
        pytest.fail("no Go toolchain to build the OpenTelemetry Collector (make test installs it: /usr/local/go)")
    path = otelcol.build()
    assert path == otelcol.binary_path()
    return path


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink().start()
    yield s
    s.stop()


def _start(
    sink: Sink, storage: Path, token: str | None = None, env: dict[str, str] | None = None
) -> otelcol.OtelCol:
    return otelcol.start(
        free_port(),
        free_port(),
        forward_to=sink.url,
        storage_dir=storage,
        token=token,
        timeout=60,
        log_path=storage.parent / "otelcol.log",
        extra_env={**FAST_RETRY, **(env or {})},
    )


def test_binary_has_the_manifest_components(binary: Path) -> None:
    out = subprocess.run(
        [str(binary), "components"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    for name in ("otlp", "memory_limiter", "batch", "otlp_http", "file_storage", "health_check"):
        assert f"name: {name}\n" in out, f"{name} missing from `otelcol-dlprov components`"
    val = subprocess.run(
        [str(binary), "validate", "--config", str(otelcol.config_path())],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert val.returncode == 0, val.stdout + val.stderr


def test_forwards_a_span_with_the_token(binary: Path, sink: Sink, tmp_path: Path) -> None:
    col = _start(sink, tmp_path / "queue", token=TOKEN)
    try:
        name = f"span-{uuid.uuid4()}"
        send(col, name)
        assert sink.wait_for(name, 15), f"sink got {sink.span_names()}; log:\n{col.log_tail()}"
        with sink.lock:
            req, headers = sink.requests[-1], sink.headers[-1]
        assert headers.get("authorization") == f"Bearer {TOKEN}"
        rs = req.resource_spans[0]
        resource = {a.key: a.value.string_value for a in rs.resource.attributes}
        assert resource["service.name"] == "otelcol-test"
        span = rs.scope_spans[0].spans[0]
        assert {a.key: a.value.string_value for a in span.attributes} == {"dlprov.test.id": name}
        assert len(span.trace_id) == 16 and len(span.span_id) == 8
    finally:
        assert col.stop() == 0, col.log_tail()


def test_start_reports_a_bad_config(binary: Path, sink: Sink, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="exited with code"):
        _start(sink, tmp_path / "queue", env={"DLPROV_COMPRESSION": "bogus"})
