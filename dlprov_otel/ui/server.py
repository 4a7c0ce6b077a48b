"""The stand-alone dashboard server of ``dlprov ui``: the dashboard and the read-only query app, no ingest."""

from __future__ import annotations

import logging

from dlprov_otel.errors import DLProvError
from dlprov_otel.http import QueryApp, SharedStore, TokenCheck, is_loopback, make_server, serve_forever
from dlprov_otel.http.guard import refuse_without_token

from .web import DashboardApp

logger = logging.getLogger("dlprov.ui")


def serve(store: str, host: str, port: int, token: str | None = None, insecure: bool = False) -> int:
    """Serve the dashboard for ``store`` until SIGTERM/SIGINT; prints its address once it listens."""
    refuse_without_token(host, token, insecure)
    stores = SharedStore(store)
    stores.open()
    auth = TokenCheck(token)
    try:
        httpd = make_server([QueryApp(stores, auth), DashboardApp(stores, auth)], host, port, "dlprov-ui")
    except DLProvError:
        stores.close()
        raise
    shown = f"[{host}]" if ":" in host else host
    shown = "127.0.0.1" if shown in ("0.0.0.0", "[::]") else shown
    note = "" if is_loopback(host) else " (reachable from other machines)"
    url = f"http://{shown}:{httpd.server_address[1]}/ui/"

    def announce() -> None:
        logger.info("store %s; token %s", stores.describe(), "required" if auth.required else "not required")
        print(f"DLProv dashboard: {url}{note}  (Ctrl+C stops it)", flush=True)

    try:
        serve_forever(httpd, announce)
    finally:
        stores.close()
    return 0
