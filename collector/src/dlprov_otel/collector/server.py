"""The DLProv collector: owns the provenance store, receives OTLP, answers read-only SQL.

``dlprov collector serve`` (or ``python -m dlprov_otel.collector.server``) mounts, on one HTTP
port, OTLP/HTTP ingest (``POST /v1/traces``, :mod:`.otlp_http`), the core's read-only query app
(``POST /v1/sql``, ``GET /v1/executions``, ``GET /health``) and the dashboard (``/ui/``); and
OTLP/gRPC ``TraceService/Export`` (:mod:`.grpc_server`) on another. Both ingest through
:class:`~.ingest.Collector`: a request is acknowledged only once its spans are committed, and a
span delivered twice is stored once (the store is idempotent on ids).
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import threading
from collections.abc import Sequence
from http.server import ThreadingHTTPServer

from dlprov_otel.errors import DLProvError
from dlprov_otel.http import QueryApp, make_server, serve_forever
from dlprov_otel.http import stop as stop
from dlprov_otel.http.guard import refuse_without_token
from dlprov_otel.ui.web import DashboardApp

from .grpc_server import make_grpc_server
from .ingest import Collector
from .otlp_http import OTLPHTTPApp
from .settings import Settings, add_serve_arguments, settings_from_args

logger = logging.getLogger("dlprov.collector")
GC_THRESHOLD = 10_000  # net allocations of tracked objects between gen-0 collections


def make_http_server(collector: Collector, host: str, port: int) -> ThreadingHTTPServer:
    """The HTTP front end bound to ``host:port`` (not yet serving): ingest, queries and the dashboard."""
    apps = [
        OTLPHTTPApp(collector),
        QueryApp(collector.stores, collector.auth, collector.stats, collector.settings.query_limits),
        DashboardApp(collector.stores, collector.auth),
    ]
    return make_server(apps, host, port, "dlprov-collector")


def serve(settings: Settings, ready: threading.Event | None = None) -> int:
    """Run the collector until SIGTERM/SIGINT (or :func:`stop`); returns an exit code."""
    refuse_without_token(settings.host, settings.token, settings.insecure, access="read and write")
    collector = Collector(settings)
    collector.open()
    _tune_gc()
    try:
        httpd = make_http_server(collector, settings.host, settings.http_port)
    except DLProvError:
        collector.close()
        raise
    grpc_server = None
    grpc_port = None
    try:
        if settings.grpc_port is not None:
            grpc_server, grpc_port = make_grpc_server(collector, settings.host, settings.grpc_port)
    except DLProvError:
        httpd.server_close()
        collector.close()
        raise

    def announce() -> None:
        logger.info(
            "DLProv collector on http://%s:%d (/v1/traces, /v1/sql, /v1/executions, /health, dashboard /ui/)%s; "
            "store %s; token %s",
            settings.host, httpd.server_address[1],
            f", OTLP/gRPC on {settings.host}:{grpc_port}" if grpc_port else "",
            collector.stores.describe(), "required" if collector.auth.required else "not required",
        )
        if ready is not None:
            ready.set()

    try:
        serve_forever(httpd, announce)
    finally:
        if grpc_server is not None:
            grpc_server.stop(grace=5).wait(10)
        collector.close()
        logger.info("DLProv collector stopped")
    return 0


def _tune_gc() -> None:
    """Fewer collections of the cyclic garbage collector: the objects of a request (records,
    their attribute dicts, row tuples) live until it is answered, so with the default gen-0
    threshold (700) they were scanned several times each and promoted, about 1.5 us per span
    of collections that freed nothing. The objects made so far (modules, the store's caches)
    are frozen out of the collections; cycles are still collected, after 10,000 net
    allocations instead of 700."""
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


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
