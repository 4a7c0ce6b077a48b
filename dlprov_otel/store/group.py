"""Group commit: concurrent ingests into one store share one write and one commit.

A collector answers several producers at once; each request used to take the store's lock in
turn for its own duplicate check, appends and commit. Here every request queues its records
and waits for the store's lock; whoever gets it writes everything queued so far (its own
records and those of the requests that arrived meanwhile) in one write and one commit, and
answers each of them. A request is answered only after the commit that holds its records,
as before. When the shared write fails, the group is undone and each request is written
alone, so a request's errors (bad data, a conflict) stay its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from ..records import SpanRecord

MAX_GROUP = 20_000  # records written together at most

# (records) -> fresh (trace id, span id) keys, written and committed under the store's lock
WriteFn = Callable[[Sequence[SpanRecord]], set[tuple[str, str]]]


class _Entry:
    __slots__ = ("done", "error", "records", "stored")

    def __init__(self, records: Sequence[SpanRecord]) -> None:
        self.records = records
        self.done = False
        self.stored = 0
        self.error: BaseException | None = None


class GroupCommit:
    """Writes the records of concurrent callers together (see the module's text)."""

    def __init__(self, lock: threading.RLock | threading.Lock, write: WriteFn, write_alone: WriteFn) -> None:
        self._lock = lock  # the store's lock
        self._write = write  # one write + one commit, undone on failure
        self._write_alone = write_alone  # the same for one caller's records
        self._queue: list[_Entry] = []
        self._queue_lock = threading.Lock()
        self.groups = 0  # shared writes done (for tests and benchmarks)
        self.grouped = 0  # callers answered by a shared write

    def ingest(self, records: Sequence[SpanRecord]) -> int:
        """Store ``records`` (with whatever else is queued); returns how many were new."""
        entry = _Entry(records)
        with self._queue_lock:
            self._queue.append(entry)
        with self._lock:
            if not entry.done:
                self._drain()
        if entry.error is not None:
            raise entry.error
        return entry.stored

    def _drain(self) -> None:
        """Under the store's lock: write what is queued, this caller's entry included."""
        with self._queue_lock:
            group, total = [], 0
            while self._queue and (not group or total + len(self._queue[0].records) <= MAX_GROUP):
                entry = self._queue.pop(0)
                group.append(entry)
                total += len(entry.records)
        if len(group) == 1:
            self._run_alone(group[0])
            return
        try:
            fresh = self._write([r for e in group for r in e.records])
        except BaseException:  # undone: each caller's records alone, with its own errors
            for entry in group:
                self._run_alone(entry)
            return
        self.groups += 1
        self.grouped += len(group)
        for entry in group:
            stored = 0
            for r in entry.records:
                key = (r.trace_id, r.span_id)
                if key in fresh:
                    fresh.discard(key)  # a span sent twice in the group counts once
                    stored += 1
            entry.stored, entry.done = stored, True

    def _run_alone(self, entry: _Entry) -> None:
        try:
            entry.stored = len(self._write_alone(entry.records))
        except BaseException as exc:
            entry.error = exc
        entry.done = True
