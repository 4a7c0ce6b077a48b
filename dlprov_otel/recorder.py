"""The recording path on the training thread: journal first, spans built off the thread.

A dataset emission (one epoch row, one learning-rate change, ...) costs the caller a
``marshal`` copied into the journal's memory map (:mod:`dlprov_otel.journal`: no system call)
plus a deque append; a row of a running task (:meth:`Recorder.row_recorder`, the hot path of ``t.output``)
journals only its values, its constant attributes once per set and task. A background
thread, which the caller never wakes (it looks every ``POLL`` seconds, and at once on a
flush), then builds the real OpenTelemetry span, with the same ids and times, so every span
processor of the provider still sees every span. Spans created the
ordinary way (executions, tasks, dataflow specifications) are journalled when they end, by
:class:`JournalProcessor`, the provider's first processor.
"""

from __future__ import annotations

import functools
import logging
import marshal
import os
import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from itertools import count
from operator import itemgetter
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from .journal import Journal, expand_row, put_length
from .values import storable_attributes

logger = logging.getLogger(__name__)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


class SystemRandomIdGenerator(IdGenerator):
    """Trace and span ids from the OS's entropy.

    The SDK's default draws from the ``random`` module, which training scripts seed for
    reproducibility (``random.seed(42)``): two runs would then share ids, and the store, which
    is idempotent on (trace id, span id), would take the second run for a duplicate.

    The span builder thread may impose the next span id (the one already journalled).
    """

    def __init__(self) -> None:
        self._forced = threading.local()

    def force_next_span_id(self, span_id: int) -> None:
        self._forced.span_id = span_id

    def generate_span_id(self) -> int:
        forced = getattr(self._forced, "span_id", 0)
        if forced:
            self._forced.span_id = 0
            return forced
        return new_span_id()

    def generate_trace_id(self) -> int:
        while True:
            value = _ids.getrandbits(128)
            if value != trace.INVALID_TRACE_ID:
                return value


# A generator of our own, seeded from the OS's entropy (and again in a forked child): scripts
# that seed ``random`` do not touch it, and no id costs a system call (``secrets`` reads
# ``os.urandom`` each time, up to a millisecond on a loaded machine).
_ids = random.Random(secrets.token_bytes(32))
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _ids.seed(secrets.token_bytes(32)))


def new_span_id() -> int:
    while True:
        value = _ids.getrandbits(64)
        if value != trace.INVALID_SPAN_ID:
            return value


class JournalProcessor(SpanProcessor):
    """Journals every span that ends, except those the builder made from journal records."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.built_here = threading.local()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if getattr(self.built_here, "flag", False) or not span.context.trace_flags.sampled:
            return
        self.journal.append_readable(span)

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


_BIG = 2**53  # ints beyond this take the general path (exact float, or its error)
_WARM_CALLS = 8  # calls before CPython 3.11 specializes a function (its "warm-up")
_WARM_ROW = {"\x00": None}  # no attribute is named so: a row recorder returns False at once
POLL = 0.05  # seconds between the builder's looks at the emissions (and, at most, the delay it adds)


class RowPlan:
    """The constant part of the rows of one set in one task (see ``Task.record_row``): the
    span name, the constant attributes and, per value, its data key and whether it is numeric.
    Journalled once per journal (``"p"`` record); each row then journals only its values."""

    __slots__ = ("head", "keys", "name", "numeric")

    def __init__(self, name: str, head: dict[str, Any], keys: tuple[str, ...], numeric: tuple[bool, ...]) -> None:
        self.name, self.head, self.keys, self.numeric = name, head, keys, numeric

    def as_record(self) -> tuple:
        return ("p", 0, self.name, self.head, self.keys, self.numeric)


# a type signature written out in a row recorder: (value types, ints to range-check, strings to check for NUL)
Special = tuple[tuple[type, ...], tuple[int, ...], tuple[int, ...]]
RowRecorder = Callable[[Mapping[str, Any]], "bool | None"]  # True: recorded; False: the general path; None: bind again
_ROW_HEAD = """
def record(values):
    if owner._state is not state or owner._provider_tracer is not None:
        return None
"""
# the general checks: any row of declared names, its type signature looked up
_ROW_GENERAL = """
    if len(values) == size:  # then every declared attribute, or an unknown one
        try:
            row = every(values)
        except KeyError:
            return False
    elif required <= values.keys() <= allowed:
        row = tuple(map(values.get, names))
    else:
        return False
    kinds = tuple(map(type, row))
    check = checks.get(kinds)
    if check is None:
        check = checks[kinds] = row_check(kinds, numeric)
        if check is not False and len(checks) == 1:
            specialize(kinds, check)
    if check is False:
        return False
    ints, strs = check
    for i in ints:
        if not -BIG < row[i] < BIG:
            return False
    for i in strs:
        if "\\x00" in row[i]:
            return False
"""
_ROW_WRITE = {
    "mapped": """
    data = dumps(("r", trace_id, span_id, parent_id, now, number, row), 2)
    acquire()
    try:
        if not journal.closed:  # Journal._put, inline: the payload copied into the map, then its length
            offset = journal._offset
            end = offset + 4 + len(data)
            if end <= journal._end or journal._grow(end):
                m = journal._map
                m[offset + 4 : end] = data
                put_len(m, offset, len(data))
                uncommitted[(trace_id, span_id)] = offset
                journal._offset = end
                journal.records += 1
    finally:
        release()
""",
    "payload": """
    journal.append_payload(dumps(("r", trace_id, span_id, parent_id, now, number, row), 2), (trace_id, span_id))
""",
    "span": """
    journal.append_span(trace_id, span_id, parent_id, plan.name, now, now, recorder._attributes(plan, row))
""",
    "none": "",
}
_ROW_TAIL = """
    recorder.emitted += 1
    if recorder._stopped:  # after shutdown: build it here, the processors export inline
        recorder._build((parent, span_id, plan, now, row))
    else:
        items.append((parent, span_id, plan, now, row))  # no wake-up (see POLL)
    return True
"""


def _row_source(size: int, special: Special | None, way: str) -> str:
    """The source of a row recorder (see :meth:`Recorder.row_recorder`): the general checks,
    or, for one type signature (``kinds``, ints to range-check, strings to check for NUL),
    those checks written out, any other row handed to ``generic``; then the journal write of
    ``way`` (how this journal takes rows) and the hand-over."""
    if special is None:
        checks = _ROW_GENERAL
    else:
        kinds, ints, strs = special
        values = [f"v{i}" for i in range(size)]
        wrong = " or ".join(
            f"v{i} is not None" if k is type(None) else f"type(v{i}) is not K{i}" for i, k in enumerate(kinds)
        )
        bad = [f"not -BIG < v{i} < BIG" for i in ints] + [f'"\\x00" in v{i}' for i in strs]
        checks = (
            "\n    if len(values) != size:\n        return generic(values)\n"
            "    try:\n        row = every(values)\n    except KeyError:\n        return False\n"
            f"    {', '.join(values)}, = row\n"
            f"    if {wrong}:\n        return generic(values)\n"
            + (f"    if {' or '.join(bad)}:\n        return False\n" if bad else "")
        )
    return _ROW_HEAD + checks + "    now = time_ns()\n    span_id = next_id()\n" + _ROW_WRITE[way] + _ROW_TAIL


@functools.lru_cache(maxsize=256)
def _row_code(size: int, special: Special | None, way: str) -> Any:
    """The compiled source of :func:`_row_source` (the code of one row shape, shared by every
    recorder of that shape: compiled once, and warmed up once)."""
    return compile(_row_source(size, special, way), "<dlprov row recorder>", "exec")


def _compile(size: int, special: Special | None, way: str, scope: dict[str, Any]) -> RowRecorder:
    """A row recorder whose names are ``scope``'s (our own template, filled with names only)."""
    exec(_row_code(size, special, way), scope)
    return scope.pop("record")


def _warmed(record: RowRecorder) -> RowRecorder:
    """CPython 3.11 specializes a function's bytecode for the objects it meets only from its
    8th call on, and a training loop calls a row recorder once per epoch, often fewer times:
    calls that return at once (a name no attribute has) count, and record nothing."""
    for _ in range(_WARM_CALLS):
        record(_WARM_ROW)
    return record


class Recorder:
    """Journal + span builder of one pipeline."""

    def __init__(self, tracer: trace.Tracer, ids: SystemRandomIdGenerator, journal: Journal | None) -> None:
        self.tracer = tracer
        self.ids = ids
        self.journal = journal
        self.journal_processor = JournalProcessor(journal) if journal is not None else None
        self.emitted = 0
        self._items: deque[Any] = deque()
        self._plans: dict[RowPlan, int] = {}  # plan -> its number in the journal
        self._wake = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="dlprov-span-builder", daemon=True)
        self._thread.start()

    # -- the caller's thread ----------------------------------------------------------------
    def emit(self, parent: SpanContext, name: str, attributes: dict[str, Any]) -> None:
        """A dataset emission: journal it, then let the builder make its span."""
        now = time.time_ns()
        span_id = new_span_id()
        if self.journal is not None:
            self.journal.append_span(parent.trace_id, span_id, parent.span_id, name, now, now, attributes)
        self._hand_over((parent, span_id, name, now, attributes))

    def row_recorder(
        self,
        parent: SpanContext,
        plan: RowPlan,
        names: tuple[str, ...],
        allowed: frozenset[str],
        required: frozenset[str],
        row_check: Callable[[tuple[type, ...], tuple[bool, ...]], Any],
        owner: Any,
        state: Any,
        slot: tuple[dict[str, Any], str] | None = None,
    ) -> RowRecorder:
        """``record(values)``: the whole hot path of ``t.output`` for rows of ``plan`` under
        ``parent``, in one frame with every name bound here (after a training epoch the
        caller's code and data are out of the CPU caches, and each call and lookup costs).

        Checks the row (the keys ``required <= keys <= allowed``; per type signature,
        ``row_check(types, numeric)`` says which ints to range-check and which strings to
        check for NUL, or False), journals its values (with the journal's own bookkeeping, see
        :meth:`Journal.row_sink`) and hands it to the builder. Span ids are consecutive from a
        random start drawn per closure (unique as random ones are, with no draw per row). Returns True when recorded,
        False when the row must take the general path, None when ``owner`` (the tracing
        module) no longer has ``state`` as its pipeline or records with a provider of its own.

        The first type signature that passes its check gets a recorder of its own, made from
        the same source with the checks written out for those types (see :func:`_row_source`);
        it takes the place of this one in ``slot`` (a dict and its key, where the caller keeps
        the recorder) and hands any other signature back to this one.
        """
        journal = self.journal
        number = -1
        if journal is not None:
            number = self._plans.get(plan, -1)
            if number < 0:
                number = self._plans[plan] = journal.add_plan(plan.name, plan.head, plan.keys, plan.numeric)
        sink = journal.row_sink() if journal is not None and number >= 0 else None
        lock, uncommitted = sink if sink is not None else (threading.Lock(), {})
        size = len(names)
        scope: dict[str, Any] = {
            "owner": owner,
            "state": state,
            "size": size,
            "names": names,
            "allowed": allowed,
            "required": required,
            "row_check": row_check,
            "checks": {},
            "every": itemgetter(*names) if size > 1 else (lambda v: tuple(v[n] for n in names)),
            "numeric": plan.numeric,
            "time_ns": time.time_ns,
            "next_id": count(_ids.getrandbits(63) + 1).__next__,  # span ids: consecutive from a random start
            "dumps": marshal.dumps,
            "put_len": put_length,
            "acquire": lock.acquire,
            "release": lock.release,
            "uncommitted": uncommitted,
            "journal": journal,
            "number": number,
            "trace_id": parent.trace_id,
            "parent_id": parent.span_id,
            "parent": parent,
            "plan": plan,
            "recorder": self,
            "items": self._items,
            "BIG": _BIG,
        }
        way = "mapped" if sink is not None else "payload" if number >= 0 else "span" if journal is not None else "none"
        generic = _compile(size, None, way, scope)
        if slot is not None:
            rows, key = slot

            def specialize(kinds: tuple[type, ...], check: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
                if rows.get(key) is not generic:
                    return
                special = dict(scope, generic=generic)
                special.update((f"K{i}", kind) for i, kind in enumerate(kinds))
                rows[key] = _warmed(_compile(size, (kinds, *check), way, special))

            scope["specialize"] = specialize
        else:
            scope["specialize"] = lambda kinds, check: None
        return _warmed(generic)

    def _hand_over(self, item: tuple) -> None:
        self.emitted += 1
        if self._stopped:  # after shutdown: build it here, the processors export inline
            self._build(item)
        else:
            self._items.append(item)  # no wake-up: the builder looks every POLL seconds

    @staticmethod
    def _attributes(plan: RowPlan, values: tuple) -> dict[str, Any]:
        return expand_row(plan.as_record(), values)

    # -- the builder thread ------------------------------------------------------------------
    def _run(self) -> None:
        if self.journal_processor is not None:
            self.journal_processor.built_here.flag = True
        items = self._items
        while True:
            self._wake.wait(POLL)
            self._wake.clear()
            while items:
                item = items.popleft()
                if item is None:
                    return
                if isinstance(item, threading.Event):
                    item.set()
                    continue
                try:
                    self._build(item)
                except Exception:  # never let one span stop the builder
                    logger.exception("DLProv: building a provenance span failed")

    def _build(self, item: tuple) -> None:
        parent, span_id, name, ts, attributes = item
        if isinstance(name, RowPlan):
            name, attributes = name.name, self._attributes(name, attributes)
        ctx = trace.set_span_in_context(NonRecordingSpan(parent))
        self.ids.force_next_span_id(span_id)
        attributes = storable_attributes(attributes)  # off the caller's thread: undecodable bytes in a path
        self.tracer.start_span(name, context=ctx, attributes=attributes, start_time=ts).end(end_time=ts)

    def drain(self, timeout: float) -> bool:
        """Wait until every emission so far has become a span."""
        if self._stopped or not self._thread.is_alive():
            return True
        done = threading.Event()
        self._items.append(done)
        self._wake.set()
        return done.wait(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        if self._stopped:
            return
        self.drain(timeout)
        self._stopped = True
        self._items.append(None)
        self._wake.set()
        self._thread.join(timeout=5)
        # whatever arrived between the drain and the stop is built here
        while self._items:
            item = self._items.popleft()
            if isinstance(item, tuple):
                self._build(item)
            elif isinstance(item, threading.Event):
                item.set()
