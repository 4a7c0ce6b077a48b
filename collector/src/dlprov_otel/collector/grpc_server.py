"""OTLP/gRPC ingest: ``TraceService/Export`` into the :class:`~.ingest.Collector` (grpc loaded on use)."""

from __future__ import annotations

import logging
from concurrent import futures
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from dlprov_otel.errors import DLProvError, StoreError
from dlprov_otel.http import Unauthorized

from . import decode
from .ingest import Collector, Overloaded

logger = logging.getLogger("dlprov.collector")


def make_grpc_server(collector: Collector, host: str, port: int) -> tuple[Any, int]:
    """The OTLP/gRPC front end, started; returns (server, bound port)."""
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: ExportTraceServiceRequest, context: Any) -> ExportTraceServiceResponse:
            auth = dict(context.invocation_metadata()).get("authorization")
            try:
                collector.auth.check(auth)
                with collector.slot():
                    result = collector.ingest(request)
            except Unauthorized as exc:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
            except decode.PayloadError as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            except (Overloaded, StoreError) as exc:
                # UNAVAILABLE is retried by every OTLP/gRPC client (RESOURCE_EXHAUSTED is not, by Go's)
                context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
            except Exception as exc:
                logger.exception("gRPC ingest failed")
                context.abort(grpc.StatusCode.UNAVAILABLE, f"internal error: {type(exc).__name__}: {exc}")
            response = ExportTraceServiceResponse()
            if result.rejected:
                response.partial_success.rejected_spans = result.rejected
                response.partial_success.error_message = result.message
            return response

    server = grpc.server(
        futures.ThreadPoolExecutor(
            max_workers=max(2, collector.settings.max_inflight), thread_name_prefix="dlprov-grpc"
        ),
        options=[
            ("grpc.max_receive_message_length", collector.settings.max_body),
            ("grpc.so_reuseport", 0),  # a second collector on the same port must fail, not share it
        ],
    )
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(), server)
    address = f"[{host.strip('[]')}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise DLProvError(f"cannot listen for OTLP/gRPC on {address}: {exc}") from exc
    if not bound:
        raise DLProvError(f"cannot listen for OTLP/gRPC on {address} (port in use?)")
    server.start()
    return server, bound
