"""The MonetDB server store against a real mserver5 (tests/fixtures_monetdb.py starts one).

Same rows as the embedded store; values survive COPY INTO exactly (hypothesis); conflicts and
lost connections are told apart from bad data; a wrong password or host is one clear line.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dlprov_otel
from dlprov_otel.errors import StoreError
from dlprov_otel.store import open_store
from dlprov_otel.store.backends import TransientStoreError, is_transient
from dlprov_otel.store.server_backend import ServerBackend
from tests import seedflow
from tests.fixtures_monetdb import empty_server

pytestmark = pytest.mark.server

# columns whose values depend on the moment or the span ids of a run
_VOLATILE = {
    "emitted_at",
    "trace_id",
    "span_id",
    "element_id",
    "received_at",
    "created_at",
    "updated_at",
    "start_time",
    "end_time",
    "started_at",
    "duration",
    "pid",
    "hardware_id",
    "spec",
    "spec_hash",
}


def backend(url: str) -> ServerBackend:
    p = urlsplit(url)
    return ServerBackend(
        p.hostname or "", p.port or 50000, unquote(p.username or ""), unquote(p.password or ""), p.path.strip("/")
    )


def snapshot(url: str) -> dict[str, list[tuple]]:
    """Every catalog and set table's stable columns, sorted: what a store holds, run-independently."""
    store = open_store(url)
    try:
        tables = store.query(
            "SELECT s.name, t.name FROM sys.tables t JOIN sys.schemas s ON t.schema_id = s.id "
            "WHERE NOT t.system AND t.type = 0 AND t.temporary = 0"
        ).rows
        out = {}
        for schema, table in sorted(tables):
            if table in ("span_log", "execution_recipe"):  # the recipe: packages imported so far differ
                continue
            names = store.query(
                "SELECT c.name FROM sys.columns c JOIN sys.tables t ON c.table_id = t.id "
                "JOIN sys.schemas s ON t.schema_id = s.id WHERE s.name = ? AND t.name = ? ORDER BY c.number",
                [schema, table],
            ).rows
            cols = [n for (n,) in names if n not in _VOLATILE]
            rows = store.query(
                f'SELECT {", ".join(chr(34) + c + chr(34) for c in cols)} FROM "{schema}"."{table}"'
            ).rows
            key = ("catalog" if schema in ("sys", store.schema) else schema) + "." + table
            out[key] = sorted(rows, key=repr)
        return out
    finally:
        store.close()


def test_seed_flow_gives_the_same_rows_as_the_embedded_store(monetdb_url, tmp_path):
    empty_server(monetdb_url)
    embedded = str(tmp_path / "embedded")
    for url in (embedded, monetdb_url):
        seedflow.record_seed_flow(url, epochs=5, exec_tag="seed-run")
        dlprov_otel.shutdown()
    want, got = snapshot(embedded), snapshot(monetdb_url)
    assert sum(len(v) for v in want.values()) > 20, want
    assert "mnist.otrainmodel" in want and len(want["mnist.otrainmodel"]) == 5
    assert got == want


# --- COPY INTO keeps every value exactly --------------------------------------------------------
_COLUMNS = [("s", "clob"), ("d", "double"), ("i", "int"), ("b", "bigint"), ("t", "timestamp"), ("f", "boolean")]
_HOSTILE = [
    '"',
    "'",
    "\\",
    "\\n",
    "\\\\",
    "\t",
    "\n",
    "\r\n",
    "\r",
    ",",
    '","',
    "NULL",
    "null",
    "",
    " ",
    "\\N",
    "E'\\n'",
    "é中文😀",
    "\u2028",
    "a\x01b",
    '"quoted, with \\ and \n"',
    "--",
    ";",
    "%s",
    "%%",
    "?",
]
# Excluded: NUL (MonetDB strings cannot hold it: refused, see below) and the C1 controls
# U+0080-U+009F, which are stored exactly (length 1) but read back mangled by pymonetdb's result
# parser (it decodes the server's escapes of their bytes as Latin-1) on any write path.
_C1 = "".join(map(chr, range(0x80, 0xA0)))
_plain_text = st.one_of(
    st.sampled_from(_HOSTILE),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00" + _C1), max_size=40),
)
_values = (
    _plain_text,
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**31) + 1, 2**31 - 1),
    st.integers(-(2**63) + 1, 2**63 - 1),
    st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2200, 1, 1)),
    st.booleans(),
)
# with NULLs anywhere (the per-value encoders), or none at all (the whole-column fast paths)
_rows = st.one_of(
    st.lists(st.tuples(*(st.one_of(st.none(), v) for v in _values)), min_size=1, max_size=30),
    st.lists(st.tuples(*_values), min_size=1, max_size=30),
)


@pytest.fixture(scope="module")
def roundtrip_table(monetdb_url):
    empty_server(monetdb_url)
    be = backend(monetdb_url)
    be.execute('CREATE SCHEMA "rt"')
    be.execute('CREATE TABLE "rt"."v" (n INT, s STRING, d DOUBLE, i INT, b BIGINT, t TIMESTAMP, f BOOLEAN)')
    be.commit()
    yield be
    be.close()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=_rows)
def test_copy_into_round_trips_values_exactly(roundtrip_table, rows):
    be = roundtrip_table
    be.execute('DELETE FROM "rt"."v"')
    data = {"n": list(range(len(rows)))}
    for j, (name, _) in enumerate(_COLUMNS):
        data[name] = [r[j] for r in rows]
    be.append("rt", "v", [("n", "int"), *_COLUMNS], data, len(rows))
    be.commit()
    _, back = be.fetch('SELECT s, d, i, b, t, f FROM "rt"."v" ORDER BY n')
    assert back == [tuple(r) for r in rows]


def test_nan_is_null_and_span_times_are_timestamps(roundtrip_table):
    be = roundtrip_table
    be.execute('DELETE FROM "rt"."v"')
    ns = 1_700_000_000_123_456_000
    be.append(
        "rt", "v", [("n", "int"), ("d", "double"), ("t", "timestamp")], {"n": [0], "d": [float("nan")], "t": [ns]}, 1
    )
    be.commit()
    assert be.fetch('SELECT d, t FROM "rt"."v"')[1] == [(None, dt.datetime(2023, 11, 14, 22, 13, 20, 123456))]


def test_data_that_can_never_be_stored_is_permanent(roundtrip_table):
    be = roundtrip_table
    with pytest.raises(StoreError) as err:
        be.append("rt", "v", [("n", "int"), ("s", "clob")], {"n": [0], "s": ["a\x00b"]}, 1)
    assert not is_transient(err.value)
    be.reset()
    with pytest.raises(Exception) as err2:  # a string where a number belongs: MonetDB refuses it
        be.execute('INSERT INTO "rt"."v" (n) VALUES (?)', ["not a number"])
    assert not is_transient(err2.value)
    be.reset()
    assert be.fetch("SELECT 1")[1] == [(1,)]


# --- transient failures ---------------------------------------------------------------------------
def test_a_transaction_conflict_is_transient(monetdb_url):
    empty_server(monetdb_url)
    a, b = backend(monetdb_url), backend(monetdb_url)
    try:
        a.execute('CREATE SCHEMA "race"')
        with pytest.raises(TransientStoreError) as err:
            try:  # MonetDB reports the conflict at the statement or at the later commit
                b.execute('CREATE SCHEMA "race"')
            finally:
                a.commit()
            b.commit()
        assert is_transient(err.value) and "conflict" in str(err.value)
        b.reset()
        assert b.fetch("SELECT COUNT(*) FROM sys.schemas WHERE name = 'race'")[1] == [(1,)]
    finally:
        a.close()
        b.close()


def test_the_connection_comes_back_after_a_server_restart(monetdb_server):
    be = backend(monetdb_server.url)
    try:
        assert be.fetch("SELECT 1")[1] == [(1,)]
        be.commit()
        monetdb_server.kill()
        with pytest.raises(TransientStoreError, match=r"monetdb://monetdb@127\.0\.0\.1"):
            be.fetch("SELECT 1")
        be.rollback()
        with pytest.raises(TransientStoreError, match=r"cannot reach MonetDB server monetdb://monetdb@127\.0\.0\.1"):
            be.ping()
        monetdb_server.start()
        be.ping()  # reconnects by itself
        assert be.reconnects >= 1
        assert be.fetch("SELECT 2")[1] == [(2,)]
    finally:
        be.close()


def test_ping_is_a_real_round_trip_and_waits_for_a_writer(monetdb_url):
    be = backend(monetdb_url)
    try:
        be.ping()
        done = threading.Event()
        with be.lock:  # a writer holds the connection: ping waits for it instead of interleaving
            t = threading.Thread(target=lambda: (be.ping(), done.set()))
            t.start()
            assert not done.wait(0.3)
        t.join(30)
        assert done.is_set()
    finally:
        be.close()


# --- wrong password or host: one line, the URL without its password ----------------------------
def _bad(url: str, **parts: str) -> str:
    p = urlsplit(url)
    user = parts.get("user", p.username)
    password = parts.get("password", p.password)
    host = parts.get("host", p.hostname)
    return f"monetdb://{user}:{password}@{host}:{p.port}{p.path}"


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ({"password": "Wr0ng-s3cret"}, "refused the user name or password"),
        ({"host": "no-such-host.invalid"}, "unknown host 'no-such-host.invalid'"),
    ],
)
def test_wrong_password_or_host_is_one_clear_line(monetdb_url, parts, message):
    url = _bad(monetdb_url, **parts)
    with pytest.raises(StoreError) as err:
        open_store(url)
    text = str(err.value)
    shown = f"monetdb://monetdb@{parts.get('host', '127.0.0.1')}:{urlsplit(url).port}/"
    assert "\n" not in text and message in text and shown in text, text
    assert "Wr0ng-s3cret" not in text and ":monetdb@" not in text


def test_wrong_password_on_the_command_line_is_one_line(monetdb_url, tmp_path):
    url = _bad(monetdb_url, password="Wr0ng-s3cret")
    proc = subprocess.run(
        [sys.executable, "-m", "dlprov_otel.cli", "executions", "--store", url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "refused the user name or password" in lines[0], proc.stderr
    assert "Wr0ng-s3cret" not in proc.stderr + proc.stdout
