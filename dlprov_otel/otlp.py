"""OTLP export to a DLProv collector (``configure(endpoint=...)``).

Over OTLP/HTTP and OTLP/gRPC the exporter reads the collector's answer: a partial success
names the spans the collector refused for good (``[rejected: TRACE/SPAN ...]`` at the end of its message), and
:attr:`DLProvOTLPExporter.rejected` hands exactly those to the processor, which quarantines
them instead of retrying them; the rest of the batch counts as stored.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from .errors import DLProvError

logger = logging.getLogger(__name__)
_REJECTED = re.compile(r"\s*\[rejected: ([0-9a-f/ ]*)\]\s*$")


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
        return _exporter_class(GrpcExporter)(
            endpoint=endpoint, insecure=not endpoint.startswith("https://"), headers=grpc_headers
        )
    if protocol != "http/protobuf":
        raise DLProvError(f"OTLP protocol {protocol!r} is not supported: use http/protobuf or grpc")
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise DLProvError("OTLP export needs: pip install 'dlprov-otel[collector]'") from exc
    url = endpoint.rstrip("/")
    if not url.endswith("/v1/traces"):
        url += "/v1/traces"
    return _exporter_class(OTLPSpanExporter)(endpoint=url, headers=hdrs or None)


class _Capture:
    """The part of an OTLP exporter that talks to the collector (HTTP transport or gRPC stub),
    keeping the last answer: the exporter itself drops it."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.last: Any = None

    def request(self, *args: Any, **kwargs: Any) -> Any:  # HTTP transport
        self.last = self._inner.request(*args, **kwargs)
        return self.last

    def Export(self, *args: Any, **kwargs: Any) -> Any:  # the gRPC stub's method
        self.last = self._inner.Export(*args, **kwargs)
        return self.last

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


_classes: dict[type, type] = {}


def _exporter_class(base: type) -> type:
    """``DLProvOTLPExporter``: OpenTelemetry's OTLP span exporter (HTTP or gRPC) that reads the
    collector's partial success."""
    if base in _classes:
        return _classes[base]

    class DLProvOTLPExporter(base):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.rejected: list[ReadableSpan] = []  # spans of the last export the collector refused
            self.rejected_error = ""
            self._capture: _Capture | None = None
            client = getattr(self, "_client", None)
            if client is not None and hasattr(getattr(client, "_transport", None), "request"):  # HTTP
                self._capture = client._transport = _Capture(client._transport)
            elif client is not None and hasattr(client, "Export"):  # gRPC
                self._capture = self._client = _Capture(client)
            else:  # another exporter version: the partial success is only logged by it
                logger.debug("DLProv: this OTLP exporter hides the collector's answers; partial success not read")

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            self.rejected, self.rejected_error = [], ""
            if self._capture is not None:
                self._capture.last = None
            result = super().export(spans)
            if result is SpanExportResult.SUCCESS and self._capture is not None and self._capture.last is not None:
                try:
                    self._read_partial_success(spans, self._capture.last)
                except Exception as exc:  # an answer we cannot read: the spans count as stored
                    logger.warning("DLProv: cannot read the collector's answer: %s", exc)
            return result

        def _read_partial_success(self, spans: Sequence[ReadableSpan], answer: Any) -> None:
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

            if isinstance(answer, ExportTraceServiceResponse):
                response = answer
            else:
                body = answer.content()
                response = ExportTraceServiceResponse.FromString(body) if body else ExportTraceServiceResponse()
            partial = response.partial_success
            if not partial.rejected_spans:
                return
            message = partial.error_message
            m = _REJECTED.search(message)
            keys = set(m.group(1).split()) if m else set()
            self.rejected = [
                s for s in spans if f"{s.context.trace_id:032x}/{s.context.span_id:016x}" in keys
            ]
            self.rejected_error = message[: m.start()] if m else message
            if len(self.rejected) != partial.rejected_spans:
                logger.error(
                    "DLProv: the collector rejected %d span(s) but named %d of them: %s",
                    partial.rejected_spans, len(self.rejected), self.rejected_error,
                )

    _classes[base] = DLProvOTLPExporter
    return DLProvOTLPExporter
