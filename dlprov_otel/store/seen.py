"""The duplicate check of idempotent ingest: which spans of a batch the store already holds.

The store keeps every stored span's (trace id, span id) in ``span_log``; a batch's ids are
looked up there (as literals: a statement with hundreds of parameters takes monetdbe longer to
prepare than to run), so a span sent twice (a retry, a replayed journal) is stored once.

That lookup scans ``span_log``, which grows with the store. On a store this process holds
alone (embedded MonetDB admits one process), a trace that had no span in the store when this
process first saw it can only gain spans through this process: its span ids are then kept in
memory, after each commit, and its later spans are checked there instead of in the store. A
trace the store already knew (a replayed journal, a run resumed by another process) is
always looked up in the store; so is everything on a shared (server) store. The memory is
bounded (``MAX_TRACKED`` ids); beyond it every trace is looked up in the store again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..records import SpanRecord
from .rows import IN_CHUNK

_HEX_SPAN = re.compile(r"[0-9a-f]{16}")
_HEX_TRACE = re.compile(r"[0-9a-f]{32}")
LITERAL_CHUNK = 5_000  # ids per lookup, as literals
MAX_TRACKED = 2_000_000  # span ids kept in memory at most

Fetch = Callable[[str, Sequence[Any] | None], tuple[list[str], list[tuple]]]
Key = tuple[str, str]


class SeenIndex:
    """Which records a store holds already (see the module's text)."""

    def __init__(self, fetch: Fetch, span_log: str, exclusive: bool) -> None:
        self._fetch = fetch
        self._span_log = span_log  # qualified table name
        self._exclusive = exclusive  # this connection is the store's only writer
        self._new: dict[str, set[str]] = {}  # trace new to the store when first seen -> its stored span ids
        self._old: set[str] = set()  # traces the store knew before: looked up there
        self._tracked = 0

    def drop_seen(self, records: Sequence[SpanRecord]) -> list[SpanRecord]:
        """The records whose span the store does not hold, each once."""
        unique: dict[Key, SpanRecord] = {}
        for r in records:
            unique.setdefault((r.trace_id, r.span_id), r)
        lookup = list(unique)
        seen: set[Key] = set()
        if self._exclusive:
            self._classify({t for t, _ in lookup})
            lookup = []
            for key in unique:
                ids = self._new.get(key[0])
                if ids is None:
                    lookup.append(key)
                elif key[1] in ids:
                    seen.add(key)
        seen.update(self._in_store(lookup))
        return [r for k, r in unique.items() if k not in seen]

    def committed(self, keys: Iterable[Key]) -> None:
        """These spans were committed by this connection."""
        if not self._exclusive:
            return
        for trace_id, span_id in keys:
            ids = self._new.get(trace_id)
            if ids is not None and span_id not in ids:
                ids.add(span_id)
                self._tracked += 1
        if self._tracked > MAX_TRACKED:
            self.forget()

    def forget(self) -> None:
        """Look every trace up in the store again (after a failed write, or at the bound)."""
        self._new.clear()
        self._old.clear()
        self._tracked = 0

    def _classify(self, traces: set[str]) -> None:
        """Sort traces seen for the first time into new to the store or known to it."""
        unknown = [t for t in traces if t not in self._new and t not in self._old]
        if not unknown:
            return
        if not all(_HEX_TRACE.fullmatch(t) for t in unknown):
            self._old.update(unknown)  # not an id we can list as a literal: always look up
            return
        known: set[str] = set()
        for i in range(0, len(unknown), LITERAL_CHUNK):
            listed = ", ".join(f"'{t}'" for t in unknown[i : i + LITERAL_CHUNK])
            _, rows = self._fetch(f"SELECT DISTINCT trace_id FROM {self._span_log} WHERE trace_id IN ({listed})", None)
            known.update(str(t) for (t,) in rows)
        for t in unknown:
            if t in known:
                self._old.add(t)
            else:
                self._new[t] = set()

    def _in_store(self, keys: list[Key]) -> set[Key]:
        if not keys:
            return set()
        inline = all(_HEX_SPAN.fullmatch(k[1]) for k in keys)
        step = LITERAL_CHUNK if inline else IN_CHUNK
        seen: set[Key] = set()
        for i in range(0, len(keys), step):
            chunk = keys[i : i + step]
            if inline:
                listed, params = ", ".join(f"'{k[1]}'" for k in chunk), None
            else:
                listed, params = ", ".join("?" for _ in chunk), [k[1] for k in chunk]
            _, rows = self._fetch(f"SELECT trace_id, span_id FROM {self._span_log} WHERE span_id IN ({listed})", params)
            seen.update((t, s) for t, s in rows)
        return seen
