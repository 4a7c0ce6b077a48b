"""The embedded store's column append (store/monetdbe_append.py) stores what monetdbe's own
append stores: strings (unicode, empty, NULL), integers, doubles and timestamps
with their NULLs; and it leaves to monetdbe what it does not handle."""

from __future__ import annotations

import datetime as dt

import pytest

from dlprov_otel.store import monetdbe_append
from dlprov_otel.store.backends import EmbeddedBackend

COLUMNS = [("s", "clob"), ("v", "varchar"), ("i", "int"), ("b", "bigint"), ("d", "double"),
           ("t", "timestamp")]
DDL = "(s STRING, v VARCHAR(40), i INT, b BIGINT, d DOUBLE, t TIMESTAMP)"
ROWS = {
    "s": ["plain", None, "héllo wörld ✓", "", "x" * 500, "emoji 🙂"],
    "v": ["a", "b", None, "", "e", "f"],
    "i": [1, None, -7, 0, 2**31 - 1, 3],
    "b": [2**40, None, -1, 0, 5, 6],
    "d": [1.5, None, -0.25, 0.0, 1e300, 2.0],
    "t": [dt.datetime(2024, 1, 2, 3, 4, 5, 678000), None, 1_700_000_000_123_456_000, dt.datetime(1999, 12, 31),
          0, dt.datetime(2030, 6, 1)],
}


@pytest.fixture
def backend(tmp_path):
    b = EmbeddedBackend(str(tmp_path / "store"))
    b.execute(f"CREATE TABLE fast {DDL}")
    b.execute(f"CREATE TABLE slow {DDL}")
    yield b
    b.close()


def rows(backend, table):
    return backend.fetch(f"SELECT * FROM {table} ORDER BY i NULLS FIRST, s")[1]


def test_the_fast_append_stores_what_monetdbes_append_stores(backend, monkeypatch):
    calls = []
    real = monetdbe_append.append

    def spy(*args):
        calls.append(real(*args))
        return calls[-1]

    monkeypatch.setattr(monetdbe_append, "append", spy)
    backend.append(backend.default_schema, "fast", COLUMNS, ROWS, 6)
    assert calls == [True]
    monkeypatch.setattr(monetdbe_append, "append", lambda *a: False)
    backend.append(backend.default_schema, "slow", COLUMNS, ROWS, 6)
    backend.commit()
    fast, slow = rows(backend, "fast"), rows(backend, "slow")
    assert fast == slow and len(fast) == 6
    assert any(r[0] == "héllo wörld ✓" for r in fast) and any(r[0] == "emoji 🙂" for r in fast)
    assert sum(r[0] is None for r in fast) == 1


@pytest.mark.parametrize("column, value", [("s", "nul\0inside"), ("s", 12), ("v", b"bytes"), ("s", "\ud800")])
def test_values_it_does_not_handle_go_to_monetdbes_append(backend, column, value):
    data = {c: list(v[:1]) for c, v in ROWS.items()}
    data[column] = [value]
    con = backend.con
    assert backend._on_thread(monetdbe_append.append, con, backend.default_schema, "fast", COLUMNS, data, 1) is False
    assert rows(backend, "fast") == []  # nothing was done


def test_a_table_not_as_cached_goes_to_monetdbes_append(backend):
    backend.execute("ALTER TABLE fast ADD COLUMN extra INT")
    data = {c: list(v[:1]) for c, v in ROWS.items()}
    con = backend.con
    assert backend._on_thread(monetdbe_append.append, con, backend.default_schema, "fast", COLUMNS, data, 1) is False
