"""What a collector admits before it stores: well-formed DLProv spans, and only a run's own spans.

Checked per span, so that one bad span is answered as an OTLP partial success and the rest of
its request is stored (a retry could never cure it: it is not answered 503):

- **well-formed**: a dataflow span carries a specification that parses; a dataset span has
  valid tags, as many attribute types as names, and an element count;
- **ownership**: an execution belongs to the trace that created it (its root span's trace,
  shared by all ranks of a job, and re-sent unchanged by a journal replay). A span of another
  trace that names an existing execution is refused: it cannot add rows, tasks or columns to
  another run. A span that names an execution and a dataflow other than the execution's is
  refused too;
- **declared columns**: a dataflow's columns change only through its specification, so a row
  span with an attribute that its set does not declare (in the stored specification, or in a
  dataflow span of the same request) is refused, as the store would refuse it; checked here
  so that any number of them is one partial success, never a batch bisected into a 503.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from dlprov_otel import semconv
from dlprov_otel.errors import DLProvError
from dlprov_otel.model import DataflowSpec
from dlprov_otel.records import SpanRecord
from dlprov_otel.store import Store
from dlprov_otel.store import schema as S
from dlprov_otel.store.rows import IN_CHUNK, shape, tag
from dlprov_otel.store.writer import no_spec, undeclared

_CREATES = (semconv.KIND_EXECUTION, semconv.KIND_EXECUTION_START)
_MAX_OWNERS = 100_000  # execution tags whose owner is remembered


class Admission:
    """Per-span checks of the collector; remembers which trace owns each execution."""

    def __init__(self) -> None:
        self._owners: dict[str, tuple[str, str | None]] = {}  # execution -> (trace, dataflow)
        self._specs: dict[str, DataflowSpec] = {}  # the latest stored version seen, per dataflow
        self._lock = threading.Lock()

    def check(
        self, store: Store, records: Sequence[SpanRecord]
    ) -> tuple[list[SpanRecord], list[tuple[SpanRecord, str]]]:
        """Split ``records`` into (admitted, [(refused, why)])."""
        admitted: list[SpanRecord] = []
        refused: list[tuple[SpanRecord, str]] = []
        well_formed: set[tuple[Any, ...]] = set()  # the checked fields of dataset spans that passed
        c = semconv
        for r in records:
            get = r.attributes.get
            fields = None
            if get(c.KIND) == c.KIND_DATASET:  # the same tags, lists and count: the same verdict
                fields = (get(c.DATAFLOW_TAG, ""), get(c.DATASET_TAG, ""), get(c.DATASET_ATTRIBUTES, ()),
                          get(c.DATASET_TYPES, ()), get(c.DATASET_ELEMENTS, 0))
                try:
                    if fields in well_formed:
                        admitted.append(r)
                        continue
                except TypeError:  # a list or a dict among them: checked each time
                    fields = None
            why = malformed(r)
            if why:
                refused.append((r, why))
            else:
                admitted.append(r)
                if fields is not None:
                    well_formed.add(fields)
        owners = self._owners_of(store, admitted)
        kept: list[SpanRecord] = []
        for r in admitted:
            exec_tag = _execution_tag(r)
            owner, dataflow = owners.get(exec_tag, (None, None)) if exec_tag else (None, None)
            named = _dataflow_tag(r)
            if owner is not None and owner != r.trace_id:
                refused.append((r, f"execution {exec_tag!r} belongs to another run (trace {owner}); a span of "
                                   f"trace {r.trace_id} cannot add to it: record under a new execution tag"))
            elif dataflow and named and named != dataflow:
                refused.append((r, f"execution {exec_tag!r} is a run of dataflow {dataflow!r}; a span of it "
                                   f"cannot name dataflow {named!r}"))
            else:
                kept.append(r)
        return self._declared_only(store, kept, refused), refused

    def _declared_only(
        self, store: Store, records: list[SpanRecord], refused: list[tuple[SpanRecord, str]]
    ) -> list[SpanRecord]:
        """The records but the row spans with attributes their set does not declare (those go
        to ``refused``). One lookup per distinct (dataflow, set, attribute list) of the request."""
        sent: dict[str, DataflowSpec] = {}  # versions this request declares
        for r in records:
            if r.kind == semconv.KIND_DATAFLOW:
                spec = DataflowSpec.from_json(r.attributes[semconv.DATAFLOW_SPEC])
                sent[spec.tag] = sent[spec.tag].merged_with(spec) if spec.tag in sent else spec
        verdicts: dict[tuple[Any, Any, tuple[Any, ...]], str | None] = {}
        out: list[SpanRecord] = []
        for r in records:
            if r.kind != semconv.KIND_DATASET:
                out.append(r)
                continue
            get = r.attributes.get
            names_sent = tuple(get(semconv.DATASET_ATTRIBUTES, ()))
            raw = (get(semconv.DATAFLOW_TAG, ""), get(semconv.DATASET_TAG, ""), names_sent)
            if raw not in verdicts:  # malformed() checked these: no error here
                dataflow = tag(raw[0], "dataflow tag")
                names = tuple(tag(n, "attribute name") for n in raw[2])
                verdicts[raw] = self._why_undeclared(store, dataflow, tag(raw[1], "set tag"), names, sent.get(dataflow))
            if (why := verdicts[raw]) is None:
                out.append(r)
            else:
                refused.append((r, f"span {r.span_id} ({r.name!r}): {why}"))
        return out

    def _why_undeclared(
        self, store: Store, dataflow: str, set_tag: str, names: tuple[str, ...], sent: DataflowSpec | None
    ) -> str | None:
        """None when the set declares all ``names``; else why not. A spec cached here is
        read again from the store before a refusal (another writer may have extended it)."""
        missing: set[str] = set(names)
        for fresh in (False, True):
            with self._lock:
                spec = None if fresh else self._specs.get(dataflow)
            if spec is None and (fresh or dataflow not in self._specs):
                rows = store.query(
                    f"SELECT spec FROM {store.cat(S.DATAFLOW_VERSION)} WHERE dataflow_tag = ? "
                    "ORDER BY version DESC LIMIT 1",
                    [dataflow],
                ).rows
                spec = DataflowSpec.from_json(rows[0][0]) if rows else None
                if spec is not None:
                    with self._lock:
                        self._specs[dataflow] = spec
            missing = set(names)
            for version in (spec, sent):
                if version is not None and set_tag in version.sets:
                    missing -= version.attributes_of(set_tag).keys()
            if not missing:
                return None
            if spec is None and sent is None:
                return no_spec(dataflow)
        if not any(v is not None and set_tag in v.sets for v in (spec, sent)):
            return f"dataflow {dataflow!r} declares no set {set_tag!r}"
        return undeclared(dataflow, set_tag, missing)

    def stored(self, records: Sequence[SpanRecord]) -> None:
        """Remember the owners of executions just stored (claimed already when admitted)."""
        with self._lock:
            if len(self._owners) > _MAX_OWNERS:
                self._owners.clear()
            for r in records:
                if r.kind in _CREATES and (exec_tag := _execution_tag(r)):
                    self._owners.setdefault(exec_tag, (r.trace_id, _dataflow_tag(r)))

    def _owners_of(self, store: Store, records: Sequence[SpanRecord]) -> dict[str, tuple[str, str | None]]:
        """The owning trace and the dataflow of each execution these records name: stored,
        else those of the first span of this request that creates it."""
        tags = {t for r in records if (t := _execution_tag(r))}
        if not tags:
            return {}
        with self._lock:
            owners = {t: self._owners[t] for t in tags if t in self._owners}
        unknown = sorted(tags - owners.keys())
        found: dict[str, tuple[str, str | None]] = {}
        for i in range(0, len(unknown), IN_CHUNK):
            chunk = unknown[i : i + IN_CHUNK]
            rows = store.query(
                f"SELECT tag, trace_id, dataflow_tag FROM {store.cat(S.DATAFLOW_EXECUTION)} WHERE tag IN "
                f"({', '.join('?' for _ in chunk)})",
                chunk,
            ).rows
            found.update({str(t): (str(tr), df or None) for t, tr, df in rows if tr})
        if found:
            with self._lock:
                self._owners.update(found)
            owners.update(found)
        created: dict[str, tuple[str, str | None]] = {}
        for r in records:  # created by this request (the first trace that does)
            if r.kind in _CREATES and (exec_tag := _execution_tag(r)) and exec_tag not in owners:
                created.setdefault(exec_tag, (r.trace_id, _dataflow_tag(r)))
        if created:  # claimed at once: a concurrent request creating the same tag finds the claim
            with self._lock:
                for exec_tag, claim in created.items():
                    owners[exec_tag] = self._owners.setdefault(exec_tag, claim)
        return owners


def _execution_tag(r: SpanRecord) -> str | None:
    value: Any = r.attributes.get(semconv.EXECUTION_TAG)
    return str(value) if value not in (None, "") else None


def _dataflow_tag(r: SpanRecord) -> str | None:
    value: Any = r.attributes.get(semconv.DATAFLOW_TAG)
    return str(value) if value not in (None, "") else None


def malformed(r: SpanRecord) -> str | None:
    """Why the store could never take this span, or None (cheap checks, no store access)."""
    attrs = r.attributes
    try:
        if r.kind == semconv.KIND_DATAFLOW:
            spec = attrs.get(semconv.DATAFLOW_SPEC)
            if not isinstance(spec, str):
                return "dataflow span without a specification (dlprov.dataflow.spec)"
            DataflowSpec.from_json(spec)
        elif r.kind == semconv.KIND_DATASET:
            tag(attrs.get(semconv.DATAFLOW_TAG, ""), "dataflow tag")
            tag(attrs.get(semconv.DATASET_TAG, ""), "set tag")
            names = attrs.get(semconv.DATASET_ATTRIBUTES, ())
            types = attrs.get(semconv.DATASET_TYPES, ())
            if not isinstance(names, list | tuple) or not isinstance(types, list | tuple):
                return f"dataset span {r.span_id}: attribute names and types must be lists"
            shape(tuple(names), tuple(types), r.span_id)
            int(attrs.get(semconv.DATASET_ELEMENTS, 0))
    except (DLProvError, ValueError, TypeError, KeyError, AttributeError) as exc:
        return f"span {r.span_id} ({r.name!r}): {type(exc).__name__}: {exc}" if not isinstance(
            exc, DLProvError) else f"span {r.span_id} ({r.name!r}): {exc}"
    return None


__all__ = ["Admission", "malformed"]
