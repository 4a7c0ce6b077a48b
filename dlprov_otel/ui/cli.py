"""``dlprov ui``: serve the dashboard for a store (a plugin of ``dlprov_otel.cli``).

It mounts the dashboard (:class:`dlprov_otel.ui.DashboardApp`) and the read-only query app
(``/v1/sql``, ``/v1/executions``, ``/health``) on ``--host:--port``, and opens no ingest
endpoint. An embedded store admits one process: while a training writes into it, watch the
training through a collector instead (``dlprov collector serve`` serves the same dashboard
under ``/ui/``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from dlprov_otel.errors import DLProvError

DEFAULT_PORT = 8765
DESCRIPTION = (
    "Serve the DLProv web dashboard (live training charts, runs compared, lineage, PROV downloads, "
    "a read-only SQL console) for a store, at http://HOST:PORT/ui/. It answers read-only queries "
    "(/v1/sql, /v1/executions) and receives no spans. Embedded MonetDB admits one process: "
    "to watch a training that writes into a store, run the training against a collector "
    "(dlprov collector serve serves the same dashboard under /ui/)."
)


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("dlprov.ui").setLevel(logging.INFO)
    # imported when the command runs, not when `dlprov` builds its parser (the store loads numpy)
    from dlprov_otel.store import default_store_url, require_existing

    from .server import serve

    token = args.token if args.token is not None else os.environ.get("DLPROV_TOKEN")
    store = require_existing(args.store or default_store_url())  # reading: never a new empty store
    return serve(store, args.host, args.port, token or None, args.insecure)


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
