"""Talking to a DLProv collector over HTTP: SQL, executions, health and spool replay.

Used by ``dlprov sql --endpoint``, ``dlprov executions --endpoint`` and
``dlprov replay --endpoint``. The token defaults to ``$DLPROV_TOKEN``. A refusal or a failed
query raises :class:`~dlprov_otel.errors.QueryError` with the collector's message; an
unreachable collector raises :class:`~dlprov_otel.errors.StoreError` naming the URL.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from . import spool
from .errors import QueryError, StoreError

logger = logging.getLogger(__name__)

EXECUTION_COLUMNS = [  # readmodel.EXECUTION_LIST_COLUMNS (not imported: the client needs no store)
    "tag", "dataflow_tag", "status", "name", "start_time", "end_time", "duration_s", "scientist", "tasks", "epochs",
    "elements",
]
_RETRYABLE = (429, 502, 503, 504)


def base_url(endpoint: str) -> str:
    """``host:4318``, ``http://host:4318/`` or ``.../v1/traces`` -> ``http://host:4318``."""
    url = endpoint.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    for suffix in ("/v1/traces", "/v1/sql", "/v1/executions"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    return url


def _request(
    method: str,
    url: str,
    body: bytes | None = None,
    content_type: str | None = None,
    token: str | None = None,
    timeout: float = 60.0,
) -> tuple[int, dict[str, str], bytes]:
    """Send one request; returns (status, headers, body) for any HTTP answer."""
    token = token if token is not None else os.environ.get("DLPROV_TOKEN")
    headers = {"Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StoreError(f"cannot reach the DLProv collector at {url}: {reason}") from exc


def _error_text(status: int, body: bytes) -> str:
    try:
        doc = json.loads(body)
        if isinstance(doc, dict):
            return str(doc.get("error") or doc.get("message") or doc)
    except ValueError:
        pass
    try:  # OTLP endpoints answer a google.rpc.Status in protobuf
        from google.rpc import status_pb2

        return status_pb2.Status.FromString(body).message or f"HTTP {status}"
    except Exception:
        return body.decode(errors="replace")[:500] or f"HTTP {status}"


def _json_call(method: str, url: str, doc: Any, token: str | None, timeout: float) -> Any:
    body = None if doc is None else json.dumps(doc).encode()
    status, _, data = _request(method, url, body, "application/json" if body else None, token, timeout)
    if status != 200:
        raise QueryError(f"{url}: HTTP {status}: {_error_text(status, data)}")
    try:
        return json.loads(data)
    except ValueError as exc:
        raise QueryError(f"{url}: the answer is not JSON: {data[:200]!r}") from exc


def query(endpoint: str, sql: str, token: str | None = None, timeout: float = 300.0) -> tuple[list[str], list[tuple]]:
    """Run read-only SQL (statements separated by ``;``, one session) on a collector.

    Returns (columns, rows) of the last statement that returned rows; datetimes come as ISO
    strings and NaN as None. :func:`query_result` also says whether the row cap cut it.
    """
    columns, rows, _ = query_result(endpoint, sql, token, timeout)
    return columns, rows


def query_result(
    endpoint: str, sql: str, token: str | None = None, timeout: float = 300.0
) -> tuple[list[str], list[tuple], int | None]:
    """:func:`query`, plus the collector's row cap when it left rows out (else None)."""
    doc = _json_call("POST", base_url(endpoint) + "/v1/sql", {"sql": sql}, token, timeout)
    cut = int(doc.get("max_rows") or len(doc.get("rows") or [])) if doc.get("truncated") else None
    return list(doc.get("columns") or []), [tuple(r) for r in doc.get("rows") or []], cut


def executions(endpoint: str, token: str | None = None, timeout: float = 60.0) -> tuple[list[str], list[tuple]]:
    """The runs a collector stores, as (columns, rows) like ``Store.executions()``."""
    items = _json_call("GET", base_url(endpoint) + "/v1/executions", None, token, timeout)
    columns = [c for c in EXECUTION_COLUMNS if not items or c in items[0]]
    columns += [c for c in (items[0] if items else {}) if c not in columns]
    return columns, [tuple(item.get(c) for c in columns) for item in items]


def health(endpoint: str, timeout: float = 5.0) -> dict[str, Any]:
    """The collector's ``/health`` document (raises StoreError when it does not answer 200)."""
    url = base_url(endpoint) + "/health"
    status, _, data = _request("GET", url, timeout=timeout, token="")
    if status != 200:
        raise StoreError(f"the DLProv collector at {url} is not healthy (HTTP {status}): {_error_text(status, data)}")
    return json.loads(data)


def send_otlp(
    endpoint: str, data: bytes, token: str | None = None, timeout: float = 60.0, attempts: int = 5
) -> tuple[int, str]:
    """POST one protobuf OTLP request, honouring Retry-After on 429/503; returns (rejected, message).

    Raises QueryError when the collector refuses it, StoreError when it stays unavailable.
    """
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    url = base_url(endpoint) + "/v1/traces"
    for attempt in range(attempts):
        status, headers, body = _request("POST", url, data, "application/x-protobuf", token, timeout)
        if status == 200:
            response = ExportTraceServiceResponse.FromString(body) if body else ExportTraceServiceResponse()
            return response.partial_success.rejected_spans, response.partial_success.error_message
        if status not in _RETRYABLE:
            raise QueryError(f"{url}: HTTP {status}: {_error_text(status, body)}")
        if attempt + 1 < attempts:
            try:
                wait = float(headers.get("retry-after", "1"))
            except ValueError:
                wait = 1.0
            time.sleep(min(max(wait, 0.1), 10.0))
    raise StoreError(f"{url} stayed unavailable (HTTP {status}): {_error_text(status, body)}")


def replay_spool(
    endpoint: str, directory: str | os.PathLike[str] | None = None, token: str | None = None
) -> tuple[int, int]:
    """Send every spooled ``*.otlp.pb`` file to a collector; delete those it acknowledged.

    Returns (files, spans) replayed. Files the collector refuses are kept and reported in a
    QueryError after the others were sent.
    """
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    files = spans = 0
    refused: list[str] = []
    for path in spool.pending(directory):
        data = Path(path).read_bytes()
        try:
            count = sum(len(ss.spans) for rs in ExportTraceServiceRequest.FromString(data).resource_spans
                        for ss in rs.scope_spans)
        except Exception as exc:
            refused.append(f"{path}: not an OTLP file ({exc})")
            continue
        try:
            rejected, message = send_otlp(endpoint, data, token)
        except QueryError as exc:
            refused.append(f"{path}: {exc}")
            continue
        if rejected:
            logger.warning("DLProv: %s: %d span(s) rejected by the collector: %s", path, rejected, message)
        path.unlink()
        files += 1
        spans += count
    if refused:
        raise QueryError(
            f"replayed {files} file(s) ({spans} spans); {len(refused)} kept:\n  " + "\n  ".join(refused)
        )
    return files, spans


__all__ = ["base_url", "executions", "health", "query", "query_result", "replay_spool", "send_otlp"]
