"""Build a W3C PROV document from the provenance store (see DESIGN.md, "W3C PROV and Neo4j").

Everything is read with SQL through :meth:`Store.query`; the PROV records are made with the
``prov`` library. Identifiers are derived from what the store already keys on (trace and
span ids, element ids, tags), so building the same execution twice gives the same document.

Mapping (vocabulary ``dlprov:`` = ``https://w3id.org/dlprov/ns#``, instances ``dlid:`` =
``https://w3id.org/dlprov/id/``):

===========================  ===============================================================
store                        PROV
===========================  ===============================================================
dataflow (+ spec)            entity ``dlid:dataflow/<tag>``, ``prov:type prov:Plan``
dataflow_execution           activity ``dlid:execution/<trace id>`` (start, end), used the plan
scientist                    agent ``dlid:scientist/<name>``, ``prov:Person``
hardware                     agent ``dlid:hardware/<id>``, ``dlprov:Hardware``
(execution, agent, plan)     wasAssociatedWith(execution, agent, plan)
task                         activity ``dlid:task/<trace>-<span>`` (start, end), ``dlprov:dt_tag``,
                             wasInformedBy(task, execution), wasInformedBy(task, dependency)
set relation row             entity ``dlid:element/<trace>-<element id>``, ``dlprov:ds_tag`` and
                             the row's attributes (numbers ``xsd:double``, NULL/NaN left out)
consumer_task_id             used(task, element, emitted at)
producer_task_id             wasGeneratedBy(element, task, emitted at)
dependency outputs           used(task, element) for elements of the task's input sets that its
                             dependencies (task_dependency) produced
outputs x inputs of a task   wasDerivedFrom(output, input, task)
otrainedmodel                ``dlprov:TrainedModel``, wasAttributedTo(model, scientist)
===========================  ===============================================================
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from prov.constants import PROV
from prov.identifier import QualifiedName
from prov.model import ProvActivity, ProvDocument, ProvEntity

from ..model import DataflowSpec
from ..semconv import RESERVED_COLUMNS
from ..store import Store
from ..store.ddl import quote_ident
from . import ID_URI, VOCAB_URI, UnknownTagError

VOCAB_PREFIX = "dlprov"
ID_PREFIX = "dlid"

# Sets whose elements are trained models: typed dlprov:TrainedModel, attributed to the scientist.
MODEL_SETS = frozenset({"otrainedmodel"})

_IN_CHUNK = 200
_SAFE_LOCAL = re.compile(r"^[A-Za-z0-9_.\-]{1,80}$")
# Characters XML 1.0 cannot carry (C0 controls but tab/newline/CR, surrogates, U+FFFE/F):
# PROV-XML could not hold a value with them, so every text is written with \xNN escapes.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean_text(text: str) -> str:
    """``text`` with the characters no PROV serialization can carry escaped as ``\\xNN``."""
    return _NOT_XML.sub(_escape_char, text)


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}"


# ----------------------------------------------------------------------------- identifiers


def local_name(text: str) -> str:
    """A local name safe in PROV-N, PROV-XML, RDF and Neo4j: ``text`` itself when it is plain
    ASCII, else an ASCII slug plus a hash of ``text`` (stable, and distinct texts stay distinct)."""
    if _SAFE_LOCAL.match(text) and not text.startswith((".", "-")):
        return text
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9_]+", "-", ascii_text).strip("-")[:40] or "x"
    return f"{slug}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:10]}"


def _utc(value: Any) -> dt.datetime | None:
    """Store timestamps are naive UTC; PROV gets them timezone-aware."""
    if not isinstance(value, dt.datetime):
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _typed(value: Any) -> Any:
    """A store value as a PROV attribute value, or ``None`` to leave it out (NULL, NaN)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, float | Decimal):
        number = float(value)
        return None if math.isnan(number) else number
    if isinstance(value, int):
        return float(value)  # set attributes are DOUBLE: keep them xsd:double
    if isinstance(value, dt.datetime):
        return _utc(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return clean_text(str(value))


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


# ----------------------------------------------------------------------------- snapshot


@dataclass
class _Task:
    exec_tag: str
    id: str
    dt_tag: str
    row: dict[str, Any]
    deps: list[_Task] = field(default_factory=list)
    ident: QualifiedName | None = None

    @property
    def start(self) -> dt.datetime | None:
        return self.row.get("start_time")

    @property
    def end(self) -> dt.datetime | None:
        return self.row.get("end_time")


@dataclass
class _Element:
    set_tag: str
    row: dict[str, Any]
    attributes: list[tuple[str, Any]]
    label: str = ""

    @property
    def emitted(self) -> dt.datetime | None:
        return self.row.get("emitted_at")


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _rows(store: Store, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    return store.query(sql, list(params)).as_dicts()


def _rows_in(store: Store, sql_prefix: str, column: str, values: Sequence[Any], suffix: str = "") -> list[dict]:
    """``sql_prefix WHERE column IN (...) suffix`` over chunks of ``values``."""
    out: list[dict[str, Any]] = []
    for chunk in _chunks(list(values)):
        ph = ", ".join("?" for _ in chunk)
        out.extend(_rows(store, f"{sql_prefix} WHERE {column} IN ({ph}) {suffix}", chunk))
    return out


def _known(store: Store, table: str, order: str) -> list[str]:
    return [r[0] for r in store.query(f"SELECT tag FROM {store.cat(table)} ORDER BY {order}").rows]


def _listing(tags: Sequence[str], limit: int = 20) -> str:
    if not tags:
        return "none"
    shown = ", ".join(repr(t) for t in tags[:limit])
    return shown + (f", ... ({len(tags)} in all)" if len(tags) > limit else "")


def select_executions(store: Store, execution: str | None, dataflow: str | None) -> list[dict[str, Any]]:
    """The execution rows to export; raises ``UnknownTagError`` naming the known tags."""
    table = store.cat("dataflow_execution")
    if dataflow is not None:
        known_df = _known(store, "dataflow", "tag")
        if dataflow not in known_df:
            raise UnknownTagError(f"unknown dataflow {dataflow!r} in {store.url}; known: {_listing(known_df)}")
    if execution is not None:
        rows = _rows(store, f"SELECT * FROM {table} WHERE tag = ?", [execution])
        if not rows:
            known = _known(store, "dataflow_execution", "start_time, tag")
            raise UnknownTagError(f"unknown execution {execution!r} in {store.url}; known: {_listing(known)}")
        if dataflow is not None and rows[0]["dataflow_tag"] != dataflow:
            raise UnknownTagError(
                f"execution {execution!r} belongs to dataflow {rows[0]['dataflow_tag']!r}, not {dataflow!r}"
            )
        return rows
    if dataflow is not None:
        return _rows(store, f"SELECT * FROM {table} WHERE dataflow_tag = ? ORDER BY start_time, tag", [dataflow])
    return _rows(store, f"SELECT * FROM {table} ORDER BY start_time, tag")


# ----------------------------------------------------------------------------- builder


class _Builder:
    def __init__(self, store: Store, tick: Callable[[int], None]) -> None:
        self.store = store
        self.tick = tick
        self.doc = ProvDocument()
        self.ns = self.doc.add_namespace(VOCAB_PREFIX, VOCAB_URI)
        self.ids = self.doc.add_namespace(ID_PREFIX, ID_URI)
        self.entities: dict[str, ProvEntity] = {}  # element key -> entity
        self.agents: dict[str, QualifiedName] = {}
        self.plans: dict[str, QualifiedName] = {}

    # -- naming ----------------------------------------------------------------------------
    def vocab(self, name: str) -> QualifiedName:
        return self.ns[name]

    def ident(self, kind: str, *parts: str) -> QualifiedName:
        return self.ids[kind + "/" + "-".join(local_name(str(p)) for p in parts)]

    def attrs(self, pairs: Iterable[tuple[str, Any]]) -> list[tuple[Any, Any]]:
        out: list[tuple[Any, Any]] = []
        for key, value in pairs:
            if value is None:
                continue
            name = key if isinstance(key, QualifiedName) else self.vocab(key)
            out.append((name, clean_text(value) if isinstance(value, str) else value))
        return out

    # -- plan and agents --------------------------------------------------------------------
    def plan(self, dataflow: str) -> QualifiedName:
        if dataflow in self.plans:
            return self.plans[dataflow]
        rows = _rows(
            self.store,
            f"SELECT version, spec_hash FROM {self.store.cat('dataflow')} WHERE tag = ?",
            [dataflow],
        )
        version = int(rows[0]["version"]) if rows else None
        ident = self.ident("dataflow", dataflow)
        self.doc.entity(
            ident,
            [
                (PROV["type"], PROV["Plan"]),
                (PROV["label"], clean_text(f"dataflow {dataflow}")),
                *self.attrs(
                    [("tag", dataflow), ("version", version), ("spec_hash", rows[0]["spec_hash"] if rows else None)]
                ),
            ],
        )
        self.plans[dataflow] = ident
        return ident

    def scientist(self, name: str | None) -> QualifiedName | None:
        if not name:
            return None
        key = "scientist:" + name
        if key not in self.agents:
            ident = self.ident("scientist", name)
            self.doc.agent(
                ident,
                [(PROV["type"], PROV["Person"]), (PROV["label"], clean_text(name)), *self.attrs([("name", name)])],
            )
            self.agents[key] = ident
        return self.agents[key]

    def hardware(self, hw_id: str | None, rows: dict[str, dict[str, Any]]) -> QualifiedName | None:
        if not hw_id:
            return None
        key = "hardware:" + hw_id
        if key not in self.agents:
            hw = rows.get(hw_id, {})
            gpus = hw.get("gpus")
            try:
                gpu_list = json.loads(gpus) if gpus else []
            except ValueError:
                gpu_list = [gpus]
            cpu = hw.get("cpu_model")
            count = hw.get("cpu_count")
            label = " · ".join(
                p
                for p in (
                    str(hw.get("host_name") or "hardware"),
                    f"{count}× {cpu}" if cpu and count else cpu,
                    ", ".join(map(str, gpu_list)) if gpu_list else None,
                )
                if p
            )
            ident = self.ident("hardware", hw_id)
            self.doc.agent(
                ident,
                [
                    (PROV["type"], self.vocab("Hardware")),
                    (PROV["label"], clean_text(label)),
                    *self.attrs(
                        [
                            ("hardware_id", hw_id),
                            ("host_name", hw.get("host_name")),
                            ("arch", hw.get("arch")),
                            ("os", hw.get("os")),
                            ("cpu_model", cpu),
                            ("cpu_count", int(count) if count is not None else None),
                            ("memory_bytes", int(hw["memory_bytes"]) if hw.get("memory_bytes") else None),
                            ("gpus", ", ".join(map(str, gpu_list)) if gpu_list else None),
                            ("container", hw.get("container") or None),
                        ]
                    ),
                ],
            )
            self.agents[key] = ident
        return self.agents[key]

    # -- elements ---------------------------------------------------------------------------
    def element(self, el: _Element) -> ProvEntity:
        key = f"{el.row.get('trace_id')}-{el.row.get('element_id')}"
        entity = self.entities.get(key)
        if entity is not None:
            return entity
        ident = self.ident("element", str(el.row.get("trace_id") or "x"), str(el.row.get("element_id")))
        pairs: list[tuple[Any, Any]] = []
        if el.set_tag in MODEL_SETS:
            pairs.append((PROV["type"], self.vocab("TrainedModel")))
        pairs.append((PROV["label"], clean_text(el.label or el.set_tag)))
        pairs.append((self.vocab("ds_tag"), el.set_tag))
        pairs.extend(self.attrs(el.attributes))
        entity = self.doc.entity(ident, pairs)
        self.entities[key] = entity
        self.tick(1)
        return entity


def _label_for(el: _Element, numbered: bool, position: int) -> str:
    values = dict(el.attributes)
    epoch = values.get("epoch")
    if isinstance(epoch, float):
        return f"{el.set_tag} · epoch {_number_text(epoch)}"
    if numbered:
        return f"{el.set_tag} #{position + 1}"
    return el.set_tag


def _spec(store: Store, dataflow: str) -> DataflowSpec | None:
    rows = store.query(
        f"SELECT spec FROM {store.cat('dataflow_version')} WHERE dataflow_tag = ? ORDER BY version DESC LIMIT 1",
        [dataflow],
    ).rows
    return DataflowSpec.from_json(rows[0][0]) if rows else None


def _existing_tables(store: Store, schema: str) -> set[str]:
    res = store.query(
        "SELECT t.name FROM sys.tables t JOIN sys.schemas s ON t.schema_id = s.id WHERE s.name = ?",
        [schema],
    )
    return {r[0] for r in res.rows}


def _set_tags(store: Store, dataflow: str, spec: DataflowSpec | None) -> list[str]:
    ordered = list(spec.sets) if spec else []
    for r in store.query(
        f"SELECT tag FROM {store.cat('data_set')} WHERE dataflow_tag = ? ORDER BY tag", [dataflow]
    ).rows:
        if r[0] not in ordered:
            ordered.append(r[0])
    tables = _existing_tables(store, dataflow)
    return [t for t in ordered if t in tables]


_FAR = dt.datetime.max


def _epoch_key(value: Any) -> float:
    number = _typed(value)
    return number if isinstance(number, float) else math.inf


def _order_key(value: Any) -> tuple:
    # Task ids are strings; "10" must sort after "9".
    text = str(value)
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def _dependency_elements(
    task: _Task,
    set_tag: str,
    producers: set[str],
    outputs: dict[tuple[int, str], list[_Element]],
) -> list[_Element]:
    """Output elements of ``set_tag`` made by the nearest dependencies (transitively) of
    ``task`` whose transformation produces that set."""
    seen = {id(task)}
    level = list(task.deps)
    while level:
        found: list[_Element] = []
        for dep in level:
            if dep.dt_tag in producers:
                found.extend(_visible(task, dep, outputs.get((id(dep), set_tag), [])))
        if found:
            return found
        nxt: list[_Task] = []
        for dep in level:
            if id(dep) in seen:
                continue
            seen.add(id(dep))
            nxt.extend(d for d in dep.deps if id(d) not in seen)
        level = nxt
    return []


def _visible(task: _Task, dep: _Task, rows: list[_Element]) -> list[_Element]:
    """What ``task`` can have used of ``dep``'s outputs.

    A task that starts after its dependency ended used all of them. A task that ran while its
    dependency was still producing (an adaptation during training) used the state at its
    start: the latest element emitted by then. This also keeps a 10,000-epoch run with many
    adaptations linear instead of epochs x adaptations.
    """
    if not rows or task.start is None or dep.end is None or task.start >= dep.end:
        return rows
    before = [r for r in rows if r.emitted is not None and r.emitted <= task.start]
    if before:
        return [before[-1]]
    if task.end is not None:
        during = [r for r in rows if r.emitted is not None and r.emitted <= task.end]
        return during[:1]
    return rows[:1]


def build(
    store: Store,
    execution: str | None = None,
    dataflow: str | None = None,
    progress: Callable[[int], Any] | None = None,
    on_total: Callable[[int], Any] | None = None,
) -> ProvDocument:
    """Build the PROV document of one execution, of every execution of a dataflow, or (with
    neither) of every execution in the store."""
    executions = select_executions(store, execution, dataflow)
    b = _Builder(store, progress or (lambda n: None))
    doc = b.doc
    dataflows: list[str] = []
    if dataflow is not None:
        dataflows.append(dataflow)
    for ex in executions:
        if ex["dataflow_tag"] and ex["dataflow_tag"] not in dataflows:
            dataflows.append(ex["dataflow_tag"])
    for df in dataflows:
        b.plan(df)

    hw_ids = sorted({ex["hardware_id"] for ex in executions if ex.get("hardware_id")})
    hardware = {r["id"]: r for r in _rows_in(store, f"SELECT * FROM {store.cat('hardware')}", "id", hw_ids)}

    # Read everything first (a few queries per set), then emit records in a fixed order.
    by_df: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ex in executions:
        by_df[ex["dataflow_tag"]].append(ex)
    specs = {df: _spec(store, df) for df in by_df}
    tags = [ex["tag"] for ex in executions]
    task_rows = _rows_in(store, f"SELECT * FROM {store.cat('task')}", "execution_tag", tags)
    dep_rows = _rows_in(store, f"SELECT * FROM {store.cat('task_dependency')}", "execution_tag", tags)
    tasks: dict[str, list[_Task]] = defaultdict(list)
    by_id: dict[tuple[str, str], list[_Task]] = defaultdict(list)
    for r in task_rows:
        t = _Task(r["execution_tag"], str(r["id"]), r["dt_tag"], r)
        tasks[t.exec_tag].append(t)
        by_id[(t.exec_tag, t.id)].append(t)
    for r in sorted(dep_rows, key=lambda r: (_order_key(r["depends_on_task_id"]), str(r["depends_on_dt_tag"]))):
        for t in by_id.get((r["execution_tag"], str(r["task_id"])), []):
            if r["dt_tag"] and t.dt_tag != r["dt_tag"]:
                continue
            for d in by_id.get((r["execution_tag"], str(r["depends_on_task_id"])), []):
                if (not r["depends_on_dt_tag"] or d.dt_tag == r["depends_on_dt_tag"]) and d not in t.deps:
                    t.deps.append(d)

    elements: dict[str, list[_Element]] = defaultdict(list)  # exec tag -> elements
    total = 0
    for df, exs in by_df.items():
        spec = specs[df]
        for set_tag in _set_tags(store, df, spec):
            table = f"{quote_ident(df)}.{quote_ident(set_tag)}"
            rows = _rows_in(
                store,
                f"SELECT * FROM {table}",
                "execution_tag",
                [ex["tag"] for ex in exs],
                "ORDER BY emitted_at, span_id, idx",
            )
            if rows and "epoch" in rows[0]:
                # Emission times tie within a millisecond; the epoch keeps them in order.
                rows.sort(key=lambda r: (r["emitted_at"] or _FAR, _epoch_key(r["epoch"])))
            for r in rows:
                attrs = [(c, _typed(v)) for c, v in r.items() if c not in RESERVED_COLUMNS]
                elements[r["execution_tag"]].append(_Element(set_tag, r, attrs))
            total += len(rows)
    if on_total is not None:
        on_total(total)

    for ex in executions:
        spec = specs.get(ex["dataflow_tag"])
        _emit_execution(b, ex, spec, tasks.get(ex["tag"], []), elements.get(ex["tag"], []), hardware)
    return doc


def _emit_execution(
    b: _Builder,
    ex: dict[str, Any],
    spec: DataflowSpec | None,
    tasks: list[_Task],
    elements: list[_Element],
    hardware: dict[str, dict[str, Any]],
) -> None:
    doc = b.doc
    tag = ex["tag"]
    exec_id = b.ident("execution", ex["trace_id"] or tag)
    activity: ProvActivity = doc.activity(
        exec_id,
        _utc(ex.get("start_time")),
        _utc(ex.get("end_time")),
        [
            (PROV["type"], b.vocab("Execution")),
            (PROV["label"], clean_text(f"execution {tag}")),
            *b.attrs(
                [
                    ("exec_tag", tag),
                    ("dataflow_tag", ex.get("dataflow_tag")),
                    ("status", ex.get("status")),
                    ("scientist", ex.get("scientist")),
                    ("service_name", ex.get("service_name")),
                    ("world_size", int(ex["world_size"]) if ex.get("world_size") is not None else None),
                    ("trace_id", ex.get("trace_id")),
                    ("error", ex.get("error")),
                ]
            ),
        ],
    )
    plan = b.plans.get(ex["dataflow_tag"]) if ex.get("dataflow_tag") else None
    if plan is not None:
        doc.used(activity, plan)
    scientist = b.scientist(ex.get("scientist"))
    machine = b.hardware(ex.get("hardware_id"), hardware)
    for agent in (scientist, machine):
        if agent is not None:
            doc.wasAssociatedWith(activity, agent, plan)

    spec_order = {t["tag"]: i for i, t in enumerate(spec.transformations)} if spec else {}
    ordered = sorted(
        tasks, key=lambda t: (t.start or _FAR, spec_order.get(t.dt_tag, 1 << 20), _order_key(t.id), t.dt_tag)
    )
    per_dt = defaultdict(int)
    for t in ordered:
        per_dt[t.dt_tag] += 1
    for t in ordered:
        r = t.row
        trace = r.get("trace_id") or ex.get("trace_id") or tag
        t.ident = b.ident("task", trace, r.get("span_id") or f"{t.dt_tag}.{t.id}")
        label = t.dt_tag if per_dt[t.dt_tag] == 1 else f"{t.dt_tag} · task {t.id}"
        doc.activity(
            t.ident,
            _utc(t.start),
            _utc(t.end),
            [
                (PROV["type"], b.vocab("Task")),
                (PROV["label"], clean_text(label)),
                *b.attrs(
                    [
                        ("dt_tag", t.dt_tag),
                        ("task_id", t.id),
                        ("status", r.get("status")),
                        ("duration", _typed(r.get("duration"))),
                        ("rank", int(r["rank"]) if r.get("rank") is not None else None),
                        ("error", r.get("error")),
                    ]
                ),
            ],
        )
    for t in ordered:
        doc.wasInformedBy(t.ident, exec_id)
        for d in t.deps:
            if d.ident is not None:
                doc.wasInformedBy(t.ident, d.ident)

    # Group the elements by the task that consumed or produced them.
    task_of: dict[tuple[str, str], list[_Task]] = defaultdict(list)
    for t in ordered:
        task_of[(t.exec_tag, t.id)].append(t)

    def owner(task_id: Any, set_tag: str, role: str) -> _Task | None:
        if task_id is None:
            return None
        candidates = task_of.get((tag, str(task_id)), [])
        for t in candidates:
            tr = spec.transformation(t.dt_tag) if spec else None
            if tr and set_tag in tr.get(role, []):
                return t
        return candidates[0] if candidates else None

    inputs: dict[int, list[_Element]] = defaultdict(list)
    outputs: dict[tuple[int, str], list[_Element]] = defaultdict(list)
    produced: dict[int, list[_Element]] = defaultdict(list)
    orphans: list[_Element] = []
    el_task: dict[int, int] = {}
    el_role: dict[int, str] = {}
    for el in elements:
        producer = owner(el.row.get("producer_task_id"), el.set_tag, "output")
        consumer = owner(el.row.get("consumer_task_id"), el.set_tag, "input")
        if producer is not None:
            outputs[(id(producer), el.set_tag)].append(el)
            produced[id(producer)].append(el)
            el_task[id(el)], el_role[id(el)] = id(producer), "output"
        elif consumer is not None:
            inputs[id(consumer)].append(el)
            el_task[id(el)], el_role[id(el)] = id(consumer), "input"
        else:
            orphans.append(el)

    # Labels say what an element is: "otrainmodel · epoch 3", or "otrainset #2" when a task
    # recorded several elements of one set.
    groups: dict[tuple[int, str, str], list[_Element]] = defaultdict(list)
    for el in elements:
        groups[(el_task.get(id(el), 0), el_role.get(id(el), ""), el.set_tag)].append(el)
    for group in groups.values():
        for i, el in enumerate(group):
            el.label = _label_for(el, len(group) > 1, i)

    for t in ordered:
        used: list[ProvEntity] = []
        used_ids: set[int] = set()
        own_sets = set()
        for el in inputs.get(id(t), []):
            entity = b.element(el)
            doc.used(t.ident, entity, _utc(el.emitted))
            used.append(entity)
            used_ids.add(id(entity))
            own_sets.add(el.set_tag)
        tr = spec.transformation(t.dt_tag) if spec else None
        for set_tag in tr.get("input", []) if tr else []:
            if set_tag in own_sets:
                continue  # the task recorded this input itself
            found = _dependency_elements(t, set_tag, set(spec.producers_of(set_tag)), outputs)
            for el in found:
                entity = b.element(el)
                if id(entity) not in used_ids:
                    doc.used(t.ident, entity)
                    used.append(entity)
                    used_ids.add(id(entity))
        for el in produced.get(id(t), []):
            entity = b.element(el)
            doc.wasGeneratedBy(entity, t.ident, _utc(el.emitted))
            for source in used:
                doc.wasDerivedFrom(entity, source, t.ident)
            if el.set_tag in MODEL_SETS and scientist is not None:
                doc.wasAttributedTo(entity, scientist)
    for el in orphans:
        b.element(el)
