"""``dlprov collector ...``: the collector's commands (a plugin of ``dlprov_otel.cli``)."""

from __future__ import annotations

import argparse
import json

from dlprov_otel.client import health

from .settings import add_serve_arguments


def _serve(args: argparse.Namespace) -> int:
    # imported when the command runs, not when `dlprov` builds its parser (it loads the store)
    from .server import run_from_args

    return run_from_args(args)


def _health(args: argparse.Namespace) -> int:
    print(json.dumps(health(args.endpoint), indent=2))
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``dlprov collector serve`` and ``dlprov collector health``."""
    p = subparsers.add_parser("collector", help="the DLProv collector: OTLP in, provenance store, SQL out")
    sub = p.add_subparsers(dest="collector_command", metavar="SUBCOMMAND", required=True)
    s = sub.add_parser(
        "serve",
        help="receive OTLP (HTTP and gRPC) from training jobs into the store and answer SQL",
        description="Owns the store; receives OTLP/HTTP (/v1/traces) and OTLP/gRPC; answers read-only "
        "SQL (/v1/sql), /v1/executions and /health.",
    )
    add_serve_arguments(s)
    s.set_defaults(func=_serve)
    h = sub.add_parser("health", help="ask a running collector whether it is healthy")
    h.add_argument("--endpoint", default="http://127.0.0.1:4318", help="collector URL (default http://127.0.0.1:4318)")
    h.set_defaults(func=_health)
