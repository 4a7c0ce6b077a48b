"""How a collector listens and where it stores: :class:`Settings` and the options of ``dlprov collector serve``."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from dlprov_otel.http.stores import DEFAULT_QUERY_MAX_ROWS, DEFAULT_QUERY_TIMEOUT, QueryLimits

DEFAULT_MAX_BODY = 64 * 1024 * 1024


@dataclass
class Settings:
    """How a collector listens and where it stores (``store=None``: ``$DLPROV_STORE`` or ``./dlprov-data``)."""

    store: str | None = None
    host: str = "127.0.0.1"
    http_port: int = 4318
    grpc_port: int | None = 4317  # None: no gRPC
    token: str | None = None
    insecure: bool = False
    max_body: int = DEFAULT_MAX_BODY
    max_inflight: int = 16
    reject_dir: str | None = None
    query_timeout: float = DEFAULT_QUERY_TIMEOUT  # seconds per SQL statement of /v1/sql, 0: none
    query_max_rows: int = DEFAULT_QUERY_MAX_ROWS  # rows of a /v1/sql result (more: truncated)
    ingest_delay: float = 0.0  # seconds each ingest waits first (tests: a slow collector)

    @property
    def query_limits(self) -> QueryLimits:
        return QueryLimits(self.query_timeout, self.query_max_rows)


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
    p.add_argument("--query-timeout", type=float, default=DEFAULT_QUERY_TIMEOUT,
                   help=f"seconds one /v1/sql statement may run (default {DEFAULT_QUERY_TIMEOUT:g}; 0: no limit)")
    p.add_argument("--query-max-rows", type=_positive_int, default=DEFAULT_QUERY_MAX_ROWS,
                   help=f"rows a /v1/sql result returns at most, marked truncated beyond "
                   f"(default {DEFAULT_QUERY_MAX_ROWS})")
    p.add_argument("--ingest-delay", type=float, default=float(os.environ.get("DLPROV_INGEST_DELAY") or 0),
                   help=argparse.SUPPRESS)  # tests: a collector that answers slowly
    p.add_argument("--log-level", default=os.environ.get("DLPROV_LOG_LEVEL", "INFO"),
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def settings_from_args(args: argparse.Namespace) -> Settings:
    """:class:`Settings` from the parsed options (the token also from ``$DLPROV_TOKEN``)."""
    token = args.token if args.token is not None else os.environ.get("DLPROV_TOKEN")
    return Settings(
        store=args.store or None,
        host=args.host,
        http_port=args.http_port,
        grpc_port=None if args.no_grpc else args.grpc_port,
        token=token or None,
        insecure=args.insecure,
        max_body=args.max_body,
        max_inflight=args.max_inflight,
        reject_dir=args.reject_dir,
        query_timeout=max(0.0, args.query_timeout),
        query_max_rows=args.query_max_rows,
        ingest_delay=max(0.0, args.ingest_delay),
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"not a positive number: {text!r}")
    return value
