"""Test helpers: a real DLProv collector process on loopback, and real OTLP payloads.

``start_collector`` runs ``python -m dlprov_otel.collector.server`` on free ports with its own
embedded store and waits for ``/health``. ``dataset_request`` builds DLProv dataset spans with
the real SDK (a private TracerProvider) and encodes them as an OTLP request.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dlprov_otel import Attribute, AttributeType, Dataflow, Element, Set, SetType, Transformation, semconv, spool
from dlprov_otel.api import dataset_attributes
from dlprov_otel.config import free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class CollectorProcess:
    """A running collector; ``restart()`` starts it again on the same ports and store."""

    store: Path | str  # a directory, or a monetdb:// URL
    log: Path
    http_port: int
    grpc_port: int
    token: str | None = None
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def args(self) -> list[str]:
        args = [
            sys.executable, "-m", "dlprov_otel.collector.server",
            "--store", str(self.store),
            "--http-port", str(self.http_port),
            "--grpc-port", str(self.grpc_port),
            "--reject-dir", str(self.log.parent / "rejected"),
            *self.extra_args,
        ]
        if self.token:
            args += ["--token", self.token]
        return args

    def start(self, timeout: float = 180.0, health: int = 200) -> CollectorProcess:
        """Start and wait until ``/health`` answers ``health`` (503: the store is unavailable)."""
        env = dict(os.environ)
        env.pop("DLPROV_TOKEN", None)
        env.pop("DLPROV_STORE", None)
        env["DLPROV_SPOOL_DIR"] = str(self.log.parent / "collector-spool")
        env["PYTHONPATH"] = str(ROOT)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.args(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=ROOT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"collector exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=10) as resp:
                    if resp.status == health:
                        return self
            except urllib.error.HTTPError as exc:
                exc.close()
                if exc.code == health:
                    return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"collector did not answer /health in {timeout}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown at all."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return int(self.proc.returncode)

    def restart(self) -> CollectorProcess:
        self.stop()
        return self.start()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def start_collector(
    directory: Path,
    token: str | None = None,
    extra_args: list[str] | None = None,
    store: str | None = None,
    health: int = 200,
) -> CollectorProcess:
    """A collector with its store in ``directory/store`` (or ``store``) on fresh free ports."""
    directory.mkdir(parents=True, exist_ok=True)
    http_port = free_port()
    grpc_port = free_port()
    while grpc_port == http_port:
        grpc_port = free_port()
    col = CollectorProcess(
        store=store or directory / "store",
        log=directory / "collector.log",
        http_port=http_port,
        grpc_port=grpc_port,
        token=token,
        extra_args=list(extra_args or []),
    )
    col.start(health=health)
    if health == 200:  # the test payloads' dataflow: its relations come from its specification
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        status, body = post(col.url + "/v1/traces", declare_request(), headers=headers)
        assert status == 200 and not ExportTraceServiceResponse.FromString(body).partial_success.rejected_spans, body
    return col


METRICS = Set(
    "metrics",
    SetType.OUTPUT,
    [
        Attribute("step", AttributeType.NUMERIC),
        Attribute("loss", AttributeType.NUMERIC),
        Attribute("note", AttributeType.TEXT),
    ],
)


def loss_of(step: int) -> float:
    return round(1.0 / (step + 1), 6)


def dataflow_attributes(dataflow: str = "remote") -> dict:
    """The attributes of the dataflow span of ``dataflow``: one transformation ``train`` whose
    output is :data:`METRICS`."""
    df = Dataflow(dataflow)
    df.add_transformation(Transformation("train", [], [METRICS]))
    spec = df.to_spec()
    return {
        semconv.KIND: semconv.KIND_DATAFLOW,
        semconv.DATAFLOW_TAG: df.tag,
        semconv.DATAFLOW_SPEC: spec.to_json(),
        semconv.DATAFLOW_SPEC_HASH: spec.hash,
    }


def declare_request(dataflow: str = "remote") -> bytes:
    """An encoded request holding only the dataflow span of ``dataflow`` (its specification)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "collector-test"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.collector")
    tracer.start_span(f"dataflow {dataflow}", attributes=dataflow_attributes(dataflow)).end()
    provider.shutdown()
    return spool.encode(memory.get_finished_spans())


def dataset_spans(
    n: int, execution_tag: str, dataflow: str = "remote", broken: set[int] | None = None, declare: bool = False
) -> list:
    """``n`` finished DLProv dataset spans (one ``metrics`` element each) from a private provider.

    Spans whose index is in ``broken`` carry more attribute names than types (the store
    refuses those). ``declare``: the dataflow span (its specification) comes first (a
    collector from :func:`start_collector` has the default dataflow's already).
    """
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "collector-test"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.collector")
    if declare:
        tracer.start_span(f"dataflow {dataflow}", attributes=dataflow_attributes(dataflow)).end()
    with tracer.start_as_current_span("task") as task_span:
        task_span.set_attribute("test.role", "parent")
        for i in range(n):
            attrs = dataset_attributes(METRICS, SetType.OUTPUT, [Element([i, loss_of(i), f"step {i}; 'drop'"])])
            attrs.update(
                {
                    semconv.DATAFLOW_TAG: dataflow,
                    semconv.EXECUTION_TAG: execution_tag,
                    semconv.TASK_ID: "1",
                    semconv.TRANSFORMATION_TAG: "train",
                }
            )
            if broken and i in broken:
                attrs[semconv.DATASET_TYPES] = ["NUMERIC"]
            tracer.start_span("metrics", attributes=attrs).end()
    provider.shutdown()
    return [s for s in memory.get_finished_spans() if s.name in ("metrics", f"dataflow {dataflow}")]


def dataset_request(
    n: int, execution_tag: str, dataflow: str = "remote", broken: set[int] | None = None, declare: bool = False
) -> bytes:
    """An encoded ``ExportTraceServiceRequest`` of :func:`dataset_spans`."""
    return spool.encode(dataset_spans(n, execution_tag, dataflow, broken, declare))


def post(
    url: str, body: bytes, ctype: str = "application/x-protobuf", timeout: float = 120, headers: dict | None = None
) -> tuple[int, bytes]:
    """POST ``body``; returns (status, body) for any HTTP answer."""
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": ctype, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def decode_request(data: bytes) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest.FromString(data)
