"""A local spool of spans that could not be exported, kept as OTLP protobuf files.

Each file is one ``ExportTraceServiceRequest``; ``dlprov replay`` (or :func:`replay`) sends
them to a store and removes the files that were stored.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan


def default_spool_dir() -> Path:
    """``DLPROV_SPOOL_DIR``, else ``~/.cache/dlprov/spool``."""
    env = os.environ.get("DLPROV_SPOOL_DIR")
    return Path(env) if env else Path.home() / ".cache" / "dlprov" / "spool"


def encode(spans: Sequence[ReadableSpan]) -> bytes:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    return encode_spans(spans).SerializeToString()


def write(data: bytes, directory: str | os.PathLike[str]) -> Path:
    """Write one OTLP request atomically into the spool; returns its path."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:8]}.otlp.pb"
    tmp = d / ("." + name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    final = d / name
    os.replace(tmp, final)
    return final


def spool_writer(directory: str | os.PathLike[str]) -> Callable[[Sequence[ReadableSpan]], str]:
    def _write(spans: Sequence[ReadableSpan]) -> str:
        return str(write(encode(spans), directory))

    return _write


def quarantine_writer(directory: str | os.PathLike[str]) -> Callable[[Sequence[ReadableSpan], str], str]:
    """Spans the store refused as bad data go to ``<spool>/quarantine/``, one JSON line each
    (the span as OpenTelemetry writes it, plus the error), never replayed automatically."""

    def _write(spans: Sequence[ReadableSpan], error: str) -> str:
        d = Path(directory) / "quarantine"
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{time.strftime('%Y%m%d')}-{os.getpid()}.jsonl"
        with open(path, "a", encoding="utf-8") as fh:
            for span in spans:
                fh.write(json.dumps({"error": error, "span": json.loads(span.to_json(indent=None))}) + "\n")
        return str(path)

    return _write


def pending(directory: str | os.PathLike[str] | None = None) -> list[Path]:
    d = Path(directory) if directory else default_spool_dir()
    return sorted(d.glob("*.otlp.pb")) if d.is_dir() else []


def replay(store, directory: str | os.PathLike[str] | None = None) -> tuple[int, int]:
    """Store every spooled request; returns (files, spans) replayed. Stored files are removed."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from .errors import StoreError
    from .records import from_otlp
    from .store.readmodel import stored_span_keys

    files = spans = 0
    for path in pending(directory):
        request = ExportTraceServiceRequest()
        request.ParseFromString(path.read_bytes())
        records = from_otlp(request)
        store.ingest(records)
        # removed only once every span is read back from the store (a full disk can make a
        # write look done that is not)
        keys = [(int(r.trace_id, 16), int(r.span_id, 16)) for r in records]
        missing = set(keys) - stored_span_keys(store, keys)
        if missing:
            raise StoreError(f"{len(missing)} span(s) of {path} are not in the store after replay; the file is kept")
        spans += len(records)
        files += 1
        path.unlink()
    return files, spans
