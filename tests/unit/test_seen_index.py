"""The duplicate check: a span is stored once, whether it comes back in a retry, a replayed
journal or another request; traces new to a store held alone are checked in memory."""

from __future__ import annotations

import re

from dlprov_otel.records import SpanRecord
from dlprov_otel.store.seen import SeenIndex


class FakeLog:
    """span_log as a set of (trace, span), answering the two lookups the index makes."""

    def __init__(self, stored: set[tuple[str, str]] | None = None) -> None:
        self.stored = set(stored or ())
        self.queries: list[str] = []

    def fetch(self, sql: str, params=None):
        self.queries.append(sql)
        listed = set(params) if params else set(re.findall(r"'([0-9a-f]+)'", sql))
        if "DISTINCT trace_id" in sql:
            return ["trace_id"], sorted({(t,) for t, _ in self.stored if t in listed})
        return ["trace_id", "span_id"], sorted((t, s) for t, s in self.stored if s in listed)


def recs(trace: str, spans: range) -> list[SpanRecord]:
    return [SpanRecord(trace, f"{i:016x}", None, "s", 0, 0, {}) for i in spans]


def store_through(index: SeenIndex, log: FakeLog, records: list[SpanRecord]) -> list[SpanRecord]:
    fresh = index.drop_seen(records)
    keys = {(r.trace_id, r.span_id) for r in fresh}
    log.stored |= keys
    index.committed(keys)
    return fresh


def test_a_new_trace_is_checked_in_memory_and_nothing_is_stored_twice():
    log = FakeLog()
    index = SeenIndex(log.fetch, "span_log", exclusive=True)
    new = "a" * 32
    assert len(store_through(index, log, recs(new, range(0, 10)))) == 10
    assert len(log.queries) == 1 and "DISTINCT trace_id" in log.queries[0]  # only: is the trace known?
    again = store_through(index, log, recs(new, range(5, 15)) + recs(new, range(14, 16)))
    assert [r.span_id for r in again] == [f"{i:016x}" for i in range(10, 16)]  # 5..9 were stored, 14 twice
    assert len(log.queries) == 1  # no lookup in span_log for a trace this writer alone has filled
    assert len(log.stored) == 16


def test_a_trace_the_store_knew_is_looked_up_there():
    old = "b" * 32
    log = FakeLog({(old, f"{i:016x}") for i in range(3)})  # a journal replayed by another process
    index = SeenIndex(log.fetch, "span_log", exclusive=True)
    fresh = store_through(index, log, recs(old, range(0, 6)))
    assert [r.span_id for r in fresh] == [f"{i:016x}" for i in range(3, 6)]
    assert any("span_id IN" in q for q in log.queries)


def test_a_shared_store_and_a_forgotten_index_always_look_up():
    log = FakeLog()
    shared = SeenIndex(log.fetch, "span_log", exclusive=False)  # a server: other writers
    t = "c" * 32
    assert len(store_through(shared, log, recs(t, range(4)))) == 4
    assert store_through(shared, log, recs(t, range(4))) == []
    assert all("span_id IN" in q for q in log.queries)
    alone = SeenIndex(log.fetch, "span_log", exclusive=True)
    assert store_through(alone, log, recs(t, range(4))) == []  # known to the store: looked up
    alone.forget()  # after a failed write
    assert store_through(alone, log, recs(t, range(2, 6))) == recs(t, range(4, 6))
