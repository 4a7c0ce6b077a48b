"""``dlprov ui``: serve the dashboard for a store (a plugin of ``dlprov_otel.cli``).

It runs the collector's HTTP front end (OTLP/HTTP ingest and read-only SQL included, no
gRPC) on ``--host:--port`` and prints the dashboard's address. An embedded store admits one
process: while a training writes into it, watch the training through a collector instead
(``dlprov collector serve`` serves the same dashboard under ``/ui/``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Sequence

DEFAULT_PORT = 8765
DESCRIPTION = (
    "Serve the DLProv web dashboard (live training charts, runs compared, lineage, PROV downloads, "
    "a read-only SQL console) for a store, at http://HOST:PORT/ui/. It is the collector's HTTP front end, "
    "so OTLP/HTTP ingest and /v1/sql answer on the same port. Embedded MonetDB admits one process: "
    "to watch a training that writes into a store, run the training against a collector "
    "(dlprov collector serve serves the same dashboard under /ui/)."
)


def _serve(args: argparse.Namespace) -> int:
    from dlprov_otel.collector.server import Settings, is_loopback, serve
    from dlprov_otel.services.otelcol import free_port
    from dlprov_otel.store import default_store_url

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("dlprov.collector").setLevel(logging.INFO)
    port = args.port or free_port(args.host)
    token = args.token if args.token is not None else os.environ.get("DLPROV_TOKEN")
    settings = Settings(
        store=args.store or default_store_url(),
        host=args.host,
        http_port=port,
        grpc_port=None,
        token=token or None,
        insecure=args.insecure,
    )
    ready = threading.Event()
    host = f"[{args.host}]" if ":" in args.host else args.host
    shown = "127.0.0.1" if host in ("0.0.0.0", "[::]") else host

    def announce() -> None:
        if ready.wait(120):
            note = "" if is_loopback(args.host) else " (reachable from other machines)"
            print(f"DLProv dashboard: http://{shown}:{port}/ui/{note}  (Ctrl+C stops it)", flush=True)

    threading.Thread(target=announce, daemon=True).start()
    return serve(settings, ready)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``dlprov ui``."""
    p.add_argument("--store", help="store URL or path (default: $DLPROV_STORE or ./dlprov-data)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT}; 0: any free)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--token", help="bearer token the dashboard's API requires (default: $DLPROV_TOKEN)")
    p.add_argument("--insecure", action="store_true", help="allow listening beyond loopback without a token")


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``dlprov ui``."""
    p = subparsers.add_parser(
        "ui",
        help="web dashboard: live training charts, runs compared, lineage, SQL console",
        description=DESCRIPTION,
    )
    add_arguments(p)
    p.set_defaults(func=_serve)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dlprov_otel.ui.cli [options]``: the same as ``dlprov ui``."""
    from dlprov_otel.errors import DLProvError

    parser = argparse.ArgumentParser(prog="dlprov ui", description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return _serve(args)
    except DLProvError as exc:
        print(f"dlprov ui: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
