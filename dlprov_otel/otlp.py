"""OTLP export to a DLProv collector (``configure(endpoint=...)``)."""

from __future__ import annotations

import os

from .errors import DLProvError


def make_otlp_exporter(endpoint: str, headers: dict[str, str] | None = None):
    """An OTLP/HTTP (protobuf) span exporter for ``endpoint`` (``http://host:4318``)."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise DLProvError("OTLP export needs: pip install 'dlprov-otel[collector]'") from exc
    url = endpoint.rstrip("/")
    if not url.endswith("/v1/traces"):
        url += "/v1/traces"
    hdrs = dict(headers or {})
    token = os.environ.get("DLPROV_TOKEN")
    if token and "authorization" not in {k.lower() for k in hdrs}:
        hdrs["Authorization"] = f"Bearer {token}"
    return OTLPSpanExporter(endpoint=url, headers=hdrs or None)
