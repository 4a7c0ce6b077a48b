"""OTLP/HTTP ingest as an HTTP app: ``POST /v1/traces`` (protobuf or OTLP/JSON, gzip or deflate).

Answers as OTLP/HTTP wants them: 200 with an ``ExportTraceServiceResponse`` (a partial success
names spans that were set aside), and for a failure a ``google.rpc.Status`` in the request's
encoding: 400 for undecodable payloads, 401 for a missing or wrong token, 413 for bodies over
the limit, 415 for unknown encodings, 429 (overloaded) and 503 (store unavailable) with
``Retry-After`` — the statuses OTLP clients retry.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence

from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from dlprov_otel.errors import StoreError
from dlprov_otel.http import HTTPError, Request, Response, Route, Unauthorized
from dlprov_otel.http.guard import CHALLENGE, RETRY_AFTER_STORE

from . import decode, lean
from .ingest import Collector, Overloaded

logger = logging.getLogger("dlprov.collector")

RETRY_AFTER_BUSY = 1  # seconds, 429
PROTOBUF = "application/x-protobuf"


class OTLPHTTPApp:
    """``POST /v1/traces`` into ``collector``."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    def routes(self) -> Sequence[Route]:
        return [Route("POST", "/v1/traces", self.traces, expect=self.expect)]

    def expect(self, request: Request) -> Response | None:
        """Answer 413 before the client sends a body that would be refused anyway."""
        try:
            n = int(request.header("Content-Length") or 0)
        except ValueError:
            return None
        limit = self.collector.settings.max_body
        if n > limit:
            return _error(413, f"the body has {n} bytes, over the limit of {limit} bytes", _as_json(request))
        return None

    def traces(self, request: Request) -> Response:
        ctype = request.header("Content-Type")
        as_json = _as_json(request)
        collector = self.collector
        limit = collector.settings.max_body
        try:
            collector.auth.check(request.header("Authorization"))
            with collector.slot():
                body = request.body(limit)
                body = decode.decompress(body, request.header("Content-Encoding"), limit)
                result = collector.ingest(lean.parse(body, ctype))
        except Unauthorized as exc:
            return _error(401, str(exc), as_json, CHALLENGE, close=True)
        except Overloaded as exc:
            return _error(429, str(exc), as_json, {"Retry-After": str(RETRY_AFTER_BUSY)}, close=True)
        except HTTPError as exc:  # the body's size or framing, or a payload that does not decode
            return _error(exc.status, str(exc), as_json)
        except StoreError as exc:
            return _error(503, f"provenance store unavailable: {exc}", as_json, {"Retry-After": str(RETRY_AFTER_STORE)})
        except Exception as exc:  # a bug must not cost the spans: the sender retries a 503
            logger.exception("ingest failed")
            message = f"internal error: {type(exc).__name__}: {exc}"
            return _error(503, message, as_json, {"Retry-After": str(RETRY_AFTER_STORE)})
        response = ExportTraceServiceResponse()
        if result.rejected:
            response.partial_success.CopyFrom(
                ExportTracePartialSuccess(rejected_spans=result.rejected, error_message=result.message)
            )
        if as_json:
            return Response(200, json_format.MessageToJson(response).encode(), "application/json")
        return Response(200, response.SerializeToString(), PROTOBUF)


def _as_json(request: Request) -> bool:
    return (request.header("Content-Type") or "").split(";")[0].strip().lower() in decode.JSON_TYPES


def _error(status: int, message: str, as_json: bool, headers: Mapping[str, str] | None = None,
           close: bool = False) -> Response:
    """OTLP/HTTP: the body of a failure is a google.rpc.Status in the request's encoding."""
    if as_json:
        body = json.dumps({"code": status, "message": message}).encode()
        return Response(status, body, "application/json", dict(headers or {}), close)
    body = status_pb2.Status(code=status, message=message).SerializeToString()
    return Response(status, body, PROTOBUF, dict(headers or {}), close)
