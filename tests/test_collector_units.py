"""The collector's pieces without a process: the read-only SQL guard, OTLP decoding, the
read-only session of the store, the route interface, the CLI plugin."""

from __future__ import annotations

import base64
import gzip
import json
import zlib

import pytest

from dlprov_otel.collector import decode
from dlprov_otel.collector.settings import parse_size
from dlprov_otel.http import is_loopback, jsonable
from dlprov_otel.http.sqlguard import SQLRefused, check_read_only

pytestmark = pytest.mark.collector


@pytest.mark.parametrize(
    "text",
    [
        'SET SCHEMA "mnist"; SELECT * FROM otrainmodel',
        "SELECT 'drop table x; delete from y' AS words",
        'SELECT "drop" FROM t',
        "SELECT 1 -- ; drop table t\n",
        "select /* ; drop */ 1",
        "WITH a AS (SELECT 1) SELECT * FROM a",
        "EXPLAIN SELECT 1",
        "(SELECT 1) UNION (SELECT 2)",
        "SELECT 'it\\'s; fine'",
        "SELECT update_time, created FROM t",
        'SELECT "a""; drop table t; --" FROM t',
        "\\d",
        "set schema mnist; \\d otrainmodel",
    ],
)
def test_guard_allows_reads(text):
    assert check_read_only(text)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("INSERT INTO t VALUES (1)", "starts with INSERT"),
        ("/* c */ drop table t", "starts with DROP"),
        ("select 1; /* x */ UpDaTe t set a=1", "statement 2 starts with UPDATE"),
        ("SELECT 'x';DROP TABLE t", "statement 2 starts with DROP"),
        ("WITH a AS (SELECT 1) DELETE FROM t", "contains DELETE"),
        ("SET SCHEMA mnist DROP", "only SET SCHEMA"),
        ("SELECT 'a\\'; DROP TABLE t; --'", "starts with DROP"),  # harmless in MonetDB, not elsewhere
        ("SELECT R'a\\'; DROP TABLE t; --'", "starts with DROP"),  # a raw literal ends at the quote
        ("SELECT 'open", "unterminated string literal"),
        ("SELECT 1 /* open", "unterminated /* comment"),
        ("-- nothing", "no SQL statement"),
        ("42", "not a query"),
        ("\\d a b", "use \\d"),
    ],
)
def test_guard_refuses(text, why):
    with pytest.raises(SQLRefused, match=None) as err:
        check_read_only(text)
    assert why in str(err.value)


def test_catalog_shortcut_quotes_its_name():
    (stmt,) = check_read_only('\\d "we""ird"')
    assert "t.name = 'we\"ird'" in stmt and "CURRENT_SCHEMA" in stmt


def test_read_only_session_keeps_nothing(tmp_path):
    from dlprov_otel.store import open_store

    store = open_store(tmp_path / "store")
    try:
        store.run_script(["CREATE TABLE scratch (a INT)", "INSERT INTO scratch VALUES (1)"], read_only=True)
        assert store.query("SELECT COUNT(*) FROM sys.tables WHERE name = 'scratch'").rows == [(0,)]
        # and the session is usable right after the rollback
        assert store.query("SELECT 1").rows == [(1,)]
    finally:
        store.close()


def _request_json() -> dict:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "t"}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "0af7651916cd43dd8448eb211c80319c",
                                "spanId": "b7ad6b7169203331",
                                "parentSpanId": "",
                                "name": "x",
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": "1544712661000000000",
                                "links": [
                                    {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "00f067aa0ba902b7"}
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    }


def test_otlp_json_ids_are_hex():
    req = decode.parse(json.dumps(_request_json()).encode(), "application/json; charset=utf-8")
    decode.validate(req)
    span = req.resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id.hex() == "0af7651916cd43dd8448eb211c80319c"
    assert span.span_id.hex() == "b7ad6b7169203331" and span.parent_span_id == b""
    assert span.links[0].span_id.hex() == "00f067aa0ba902b7"
    assert span.end_time_unix_nano == 1544712661000000000


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["resourceSpans"][0]["scopeSpans"][0]["spans"][0].update(spanId="xyz"), "spans[0].spanId"),
        (
            lambda d: d["resourceSpans"][0]["scopeSpans"][0]["spans"][0].update(
                traceId=base64.b64encode(bytes(16)).decode()
            ),
            "expected 32 hex digits",
        ),
        (lambda d: d["resourceSpans"][0]["scopeSpans"][0]["spans"][0].update(startTimeUnixNano="soon"), "OTLP/JSON"),
        (lambda d: d["resourceSpans"][0].update(scopeSpans={}), "scopeSpans must be a list"),
    ],
)
def test_otlp_json_errors_are_precise(mutate, message):
    doc = _request_json()
    mutate(doc)
    with pytest.raises(decode.PayloadError, match=None) as err:
        decode.parse(json.dumps(doc).encode(), "application/json")
    assert err.value.status == 400 and message in str(err.value)


def test_zero_ids_are_refused():
    doc = _request_json()
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = "0" * 32
    req = decode.parse(json.dumps(doc).encode(), "application/json")
    with pytest.raises(decode.PayloadError, match="trace_id is all zeros"):
        decode.validate(req)


def test_decompress_limits_and_encodings():
    data = b"a" * 1000
    assert decode.decompress(gzip.compress(data), "gzip", 1000) == data
    assert decode.decompress(zlib.compress(data), "deflate", 1000) == data
    raw = zlib.compressobj(wbits=-15)
    assert decode.decompress(raw.compress(data) + raw.flush(), "deflate", 1000) == data
    with pytest.raises(decode.PayloadError) as err:
        decode.decompress(gzip.compress(data), "gzip", 999)
    assert err.value.status == 413
    with pytest.raises(decode.PayloadError) as err:
        decode.decompress(gzip.compress(data)[:-8], "gzip", 5000)
    assert err.value.status == 400 and "truncated" in str(err.value)
    with pytest.raises(decode.PayloadError) as err:
        decode.decompress(data, "br", 5000)
    assert err.value.status == 415


def test_small_helpers():
    assert parse_size("64MiB") == 64 * 1024 * 1024 and parse_size("10k") == 10_000 and parse_size("123") == 123
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("") and not is_loopback("10.1.2.3")
    import datetime as dt
    import decimal

    assert jsonable([float("nan"), dt.datetime(2024, 1, 2, 3, 4, 5), decimal.Decimal("1.5"), b"\x01"]) == [
        None,
        "2024-01-02T03:04:05",
        1.5,
        "01",
    ]


def test_cli_plugin_registers_serve(tmp_path, capsys):
    import argparse

    from dlprov_otel.collector.cli import add_commands

    parser = argparse.ArgumentParser(prog="dlprov")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["collector", "serve", "--store", str(tmp_path / "s"), "--host", "0.0.0.0"])
    assert args.http_port == 4318 and args.grpc_port == 4317 and args.max_body == 64 * 1024 * 1024
    from dlprov_otel.errors import DLProvError

    args.token = None
    with pytest.raises(DLProvError, match="without a token"):
        args.func(args)


def test_router_mounts_apps_side_by_side():
    from dlprov_otel.http import Response, Route
    from dlprov_otel.http.routes import Router

    def answer(text: str):
        return lambda request: Response(200, text.encode(), "text/plain")

    class Ingest:
        def routes(self):
            return [Route("POST", "/v1/traces", answer("ingest"))]

    class Pages:
        def routes(self):
            return [
                Route("GET", "/ui/api/", answer("api"), prefix=True),
                Route("GET", "/ui/", answer("page"), prefix=True),
            ]

    router = Router([Ingest(), Pages()])
    assert router.find("POST", "/v1/traces").handler(None).body == b"ingest"
    assert router.find("GET", "/ui/api/executions").handler(None).body == b"api"  # the longer prefix wins
    assert router.find("GET", "/ui/js/app.js").handler(None).body == b"page"
    refused = router.find("GET", "/v1/traces")
    assert refused.status == 405 and refused.headers == {"Allow": "POST"}
    missing = router.find("POST", "/v1/sql")
    assert missing.status == 404 and json.loads(missing.body)["error"].startswith("no such endpoint /v1/sql")
    # without the ingest app, spans are not taken
    assert Router([Pages()]).find("POST", "/v1/traces").status == 404


def test_two_requests_creating_one_new_execution_tag_the_first_owns_it(tmp_path):
    """Two runs (traces) pick the same new tag and their first requests reach the collector at
    once: the first one admitted owns the execution, before either is stored."""
    from dlprov_otel import semconv
    from dlprov_otel.collector.admission import Admission
    from dlprov_otel.records import SpanRecord
    from dlprov_otel.store import open_store

    def creating(trace: str) -> SpanRecord:
        attrs = {semconv.KIND: semconv.KIND_EXECUTION_START, semconv.EXECUTION_TAG: "run-1",
                 semconv.DATAFLOW_TAG: "mnist"}
        return SpanRecord(trace, trace[:16], None, "execution.start", 1, 1, attrs)

    store = open_store(tmp_path / "store")
    try:
        admission = Admission()
        first_admitted, first_refused = admission.check(store, [creating("a" * 32)])
        second_admitted, second_refused = admission.check(store, [creating("b" * 32)])
        again, _ = admission.check(store, [creating("a" * 32)])  # the owner's retry
    finally:
        store.close()
    assert len(first_admitted) == 1 and not first_refused
    assert not second_admitted
    assert "belongs to another run" in second_refused[0][1]
    assert len(again) == 1
