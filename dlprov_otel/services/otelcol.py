"""The DLProv OpenTelemetry Collector (``collector/otelcol``), built from source and run locally.

:func:`build` runs ``collector/otelcol/build.sh`` (the OpenTelemetry Collector Builder, from the Go
module proxy; idempotent), :func:`start` runs the binary with ``collector/otelcol/config.yaml``
(OTLP in, persistent queue, OTLP/HTTP out to the DLProv collector), all settings passed as the
environment variables that config documents, and waits until its health check answers.

Environment: ``DLPROV_OTELCOL_DIR`` (the folder of ``build.sh`` and ``config.yaml``; default
``collector/otelcol`` of the checkout), ``DLPROV_OTELCOL_BIN`` (use this binary instead of the
built one).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dlprov_otel.config import free_port

from .checkout import checkout_folder
from .processes import HOST, tail

LOG_TAIL_LINES = 40


def otelcol_dir() -> Path:
    """The folder of ``build.sh`` and ``config.yaml``: ``$DLPROV_OTELCOL_DIR``, else the checkout's."""
    return checkout_folder("DLPROV_OTELCOL_DIR", "collector/otelcol", "build.sh")


def config_path() -> Path:
    """The collector's configuration (``config.yaml``)."""
    return otelcol_dir() / "config.yaml"


def binary_path() -> Path:
    """Path of the collector binary (``$DLPROV_OTELCOL_BIN`` or ``build/otelcol-dlprov`` of :func:`otelcol_dir`)."""
    override = os.environ.get("DLPROV_OTELCOL_BIN")
    return Path(override) if override else otelcol_dir() / "build" / "otelcol-dlprov"


def build(force: bool = False, timeout: float = 1800) -> Path:
    """Build the collector with ``build.sh`` (a no-op when up to date) and return the binary."""
    if os.environ.get("DLPROV_OTELCOL_BIN"):
        path = binary_path()
        if not os.access(path, os.X_OK):
            raise RuntimeError(f"DLPROV_OTELCOL_BIN={path} is not an executable file")
        return path
    script = otelcol_dir() / "build.sh"
    cmd = ["bash", str(script), *(["--force"] if force else [])]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{script} did not finish in {timeout:.0f}s") from exc
    if proc.returncode != 0:
        tail = _tail(proc.stdout + proc.stderr)
        raise RuntimeError(f"{script} failed (exit {proc.returncode}):\n{tail}")
    path = binary_path()
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{script} succeeded but {path} is missing")
    return path


@dataclass
class OtelCol:
    """A running collector started by :func:`start`; :meth:`stop` ends it."""

    grpc_port: int
    http_port: int
    health_port: int
    metrics_port: int
    pid: int
    log_path: Path
    storage_dir: Path
    forward_to: str
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def http_endpoint(self) -> str:
        """Base URL of the OTLP/HTTP receiver (append ``/v1/traces``)."""
        return f"http://{HOST}:{self.http_port}"

    @property
    def grpc_endpoint(self) -> str:
        """``host:port`` of the OTLP/gRPC receiver."""
        return f"{HOST}:{self.grpc_port}"

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process.poll() is None

    def healthy(self) -> bool:
        """Whether the health check answers 200."""
        return _health_ok(self.health_port)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the collector's log."""
        return tail(self.log_path, lines)

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM (a clean shutdown keeps the persistent queue), SIGKILL after ``timeout``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return int(self.process.returncode)

    def __enter__(self) -> OtelCol:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(
    grpc_port: int,
    http_port: int,
    forward_to: str,
    storage_dir: str | os.PathLike[str],
    token: str | None = None,
    health_port: int | None = None,
    timeout: float = 300,
    *,
    metrics_port: int | None = None,
    log_path: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> OtelCol:
    """Start the collector and wait until its health check answers.

    ``config`` defaults to :func:`config_path`; ``forward_to`` is the DLProv collector's base
    URL (``/v1/traces`` is appended);
    ``storage_dir`` holds the persistent queue (created); ``health_port`` and ``metrics_port``
    default to free ports; ``extra_env`` overrides any variable of ``config.yaml`` (e.g.
    ``OTELCOL_RETRY_MAX_INTERVAL``). Raises RuntimeError with the log tail on failure.
    """
    config = config or config_path()
    binary = binary_path()
    if not os.access(binary, os.X_OK):
        raise RuntimeError(
            f"{binary} not found: build it first (dlprov_otel.services.otelcol.build())"
        )
    health_port = health_port or free_port()
    metrics_port = metrics_port or free_port()
    ports = {"grpc": grpc_port, "http": http_port, "health": health_port, "metrics": metrics_port}
    if len(set(ports.values())) != len(ports):
        raise RuntimeError(f"the collector's ports must differ: {ports}")
    busy = [f"{name}={port}" for name, port in ports.items() if not _port_free(port)]
    if busy:
        raise RuntimeError(f"ports already in use on {HOST}: {', '.join(busy)}")
    storage = Path(storage_dir)
    storage.mkdir(parents=True, exist_ok=True)
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix="otelcol-dlprov-", suffix=".log")
        os.close(fd)
        log_path = name
    log = Path(log_path)
    env = {
        **os.environ,
        "OTELCOL_BIND_HOST": HOST,
        "OTELCOL_GRPC_PORT": str(grpc_port),
        "OTELCOL_HTTP_PORT": str(http_port),
        "OTELCOL_HEALTH_PORT": str(health_port),
        "OTELCOL_METRICS_PORT": str(metrics_port),
        "OTELCOL_STORAGE_DIR": str(storage),
        "DLPROV_COLLECTOR_ENDPOINT": forward_to,
        "DLPROV_TOKEN": token or "",
        **(extra_env or {}),
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(binary), "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    col = OtelCol(
        grpc_port, http_port, health_port, metrics_port, proc.pid, log, storage, forward_to, proc
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not col.alive():
            raise RuntimeError(
                f"otelcol exited with code {proc.returncode} during startup; {log}:\n"
                + col.log_tail()
            )
        if col.healthy():
            return col
        time.sleep(0.1)
    col.stop()
    raise RuntimeError(
        f"otelcol health check on {HOST}:{health_port} did not answer in {timeout:.0f}s; "
        f"{log}:\n{col.log_tail()}"
    )


def _health_ok(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _port_free(port: int) -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])
