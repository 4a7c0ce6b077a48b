"""Group commit: concurrent ingests share one write; each caller is answered with its own
count, and a failing shared write falls back to each caller alone, with its own error."""

from __future__ import annotations

import threading

import pytest

from dlprov_otel.records import SpanRecord
from dlprov_otel.store.group import GroupCommit


def records(prefix: str, n: int) -> list[SpanRecord]:
    return [SpanRecord("t" * 32, f"{prefix}{i:015x}"[-16:], None, "s", 0, 0, {}) for i in range(n)]


class FakeStore:
    """Writes under a lock; the first write blocks until the others have queued."""

    def __init__(self, bad: str | None = None) -> None:
        self.lock = threading.RLock()
        self.stored: set[tuple[str, str]] = set()
        self.writes: list[int] = []
        self.release = threading.Event()
        self.bad = bad  # a span id prefix this store refuses

    def write(self, recs) -> set[tuple[str, str]]:
        self.release.wait(10)
        if self.bad and any(r.span_id.startswith(self.bad) for r in recs):
            raise ValueError(f"refused {self.bad}")
        fresh = {(r.trace_id, r.span_id) for r in recs} - self.stored
        self.stored |= fresh
        self.writes.append(len(recs))
        return fresh


def run_concurrently(group: GroupCommit, store: FakeStore, batches: list[list[SpanRecord]]) -> list[object]:
    results: list[object] = [None] * len(batches)

    def call(i: int) -> None:
        try:
            results[i] = group.ingest(batches[i])
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(batches))]
    with store.lock:  # hold the store while every caller queues, as a long write would
        for t in threads:
            t.start()
        while len(group._queue) < len(batches):
            threading.Event().wait(0.01)
        store.release.set()
    for t in threads:
        t.join(10)
    return results


def test_concurrent_ingests_are_written_together_and_each_gets_its_count():
    store = FakeStore()
    group = GroupCommit(store.lock, store.write, store.write)
    dup = records("a", 3)
    batches = [records("a", 3), records("b", 5), records("c", 2), dup]  # the last repeats the first
    results = run_concurrently(group, store, batches)
    assert results[1:3] == [5, 2]
    assert sorted([results[0], results[3]]) == [0, 3]  # the same spans twice in a group: counted once
    assert store.writes == [13] and group.groups == 1 and group.grouped == 4
    assert len(store.stored) == 10


def test_a_failing_group_is_written_caller_by_caller_with_its_own_error():
    store = FakeStore(bad="b")
    group = GroupCommit(store.lock, store.write, store.write)
    results = run_concurrently(group, store, [records("a", 3), records("b", 2), records("c", 4)])
    assert results[0] == 3 and results[2] == 4
    assert isinstance(results[1], ValueError) and "refused b" in str(results[1])
    assert store.writes == [3, 4] and group.groups == 0


def test_a_lone_caller_is_written_alone():
    store = FakeStore()
    store.release.set()
    group = GroupCommit(store.lock, store.write, store.write)
    assert group.ingest(records("a", 4)) == 4
    assert group.ingest(records("a", 4)) == 0  # idempotent

    def refuse(recs):
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        GroupCommit(store.lock, store.write, refuse).ingest(records("z", 1))
