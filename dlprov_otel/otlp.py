"""OTLP export to a DLProv collector (``configure(endpoint=...)``)."""

from __future__ import annotations

import os

from .errors import DLProvError


def make_otlp_exporter(endpoint: str, headers: dict[str, str] | None = None, protocol: str | None = None):
    """An OTLP span exporter for ``endpoint`` (``http://host:4318``).

    ``protocol`` defaults to ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` / ``OTEL_EXPORTER_OTLP_PROTOCOL``,
    else ``http/protobuf``; ``grpc`` sends OTLP/gRPC instead (``http://host:4317``).
    """
    protocol = (
        (
            protocol
            or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        )
        .strip()
        .lower()
    )
    hdrs = dict(headers or {})
    token = os.environ.get("DLPROV_TOKEN")
    if token and "authorization" not in {k.lower() for k in hdrs}:
        hdrs["Authorization"] = f"Bearer {token}"
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
        except ImportError as exc:
            raise DLProvError("OTLP/gRPC export needs: pip install 'dlprov-otel[collector]'") from exc
        # gRPC metadata keys are lower case
        grpc_headers = {k.lower(): v for k, v in hdrs.items()} or None
        return GrpcExporter(endpoint=endpoint, insecure=not endpoint.startswith("https://"), headers=grpc_headers)
    if protocol != "http/protobuf":
        raise DLProvError(f"OTLP protocol {protocol!r} is not supported: use http/protobuf or grpc")
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise DLProvError("OTLP export needs: pip install 'dlprov-otel[collector]'") from exc
    url = endpoint.rstrip("/")
    if not url.endswith("/v1/traces"):
        url += "/v1/traces"
    return OTLPSpanExporter(endpoint=url, headers=hdrs or None)
