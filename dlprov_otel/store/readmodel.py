"""The read model: every query over the provenance store's catalog, returning plain objects.

The CLI (``dlprov executions``), the dashboard (:mod:`dlprov_otel.ui.data`), the PROV builder
(:mod:`dlprov_otel.prov.builder`) and the collector's query API read through here; nothing else
writes SQL against the catalog. Values are as the store keeps them (naive UTC datetimes;
monetdbe reads a NULL double back as NaN). The lineage rule over these objects is in
:mod:`.lineage`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import fields
from typing import Any

from ..errors import DLProvError, SpecError
from ..model import DataflowSpec
from . import schema as S
from .liveness import now, run_state
from .objects import (
    SUMMARY_COLUMNS,
    Attribute,
    DataDependency,
    Dataflow,
    DataflowRuns,
    DataflowVersion,
    Element,
    Execution,
    ExecutionSummary,
    Hardware,
    Process,
    Task,
    TaskDependency,
)
from .store import Store

logger = logging.getLogger(__name__)

_IN_CHUNK = 200  # values per IN (...) list


# --- helpers ----------------------------------------------------------------------------------
def _cat(store: Store, table: str) -> str:
    return store.cat(table)


def _objects(cls: type, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[Any]:
    names = [f.name for f in fields(cls)]
    out = []
    for row in rows:
        d = dict(zip(columns, row, strict=False))
        out.append(cls(**{n: d.get(n) for n in names}))
    return out


def _select(store: Store, cls: type, sql: str, params: Sequence[Any] | None = None) -> list[Any]:
    res = store.query(sql, params)
    return _objects(cls, res.columns, res.rows)


def _chunks(values: Sequence[Any], size: int = _IN_CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def _ph(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


def _select_in(store: Store, cls: type, sql: str, column: str, values: Sequence[Any], suffix: str = "") -> list[Any]:
    """``sql WHERE column IN (...) suffix`` over chunks of ``values``."""
    out: list[Any] = []
    for chunk in _chunks(list(values)):
        out.extend(_select(store, cls, f"{sql} WHERE {column} IN ({_ph(chunk)}) {suffix}", list(chunk)))
    return out


def _spec(text: str | None, dataflow: str) -> DataflowSpec | None:
    try:
        return DataflowSpec.from_json(text or "")
    except SpecError as exc:
        logger.warning("DLProv: the stored specification of %r cannot be read: %s", dataflow, exc)
        return None


def _tags(store: Store, sql: str, params: Sequence[Any] | None = None) -> list[str]:
    return [r[0] for r in store.query(sql, params).rows]


# --- dataflows --------------------------------------------------------------------------------
def dataflows(store: Store) -> list[Dataflow]:
    """Every dataflow, by tag."""
    return _select(store, Dataflow, f"SELECT * FROM {_cat(store, S.DATAFLOW)} ORDER BY tag")


def dataflow(store: Store, tag: str) -> Dataflow | None:
    found = _select(store, Dataflow, f"SELECT * FROM {_cat(store, S.DATAFLOW)} WHERE tag = ?", [tag])
    return found[0] if found else None


def dataflow_tags(store: Store) -> list[str]:
    return _tags(store, f"SELECT tag FROM {_cat(store, S.DATAFLOW)} ORDER BY tag")


def spec_versions(store: Store, tag: str) -> list[DataflowVersion]:
    """The versions of dataflow ``tag``, oldest first."""
    res = store.query(
        f"SELECT version, spec_hash, created_at, spec FROM {_cat(store, S.DATAFLOW_VERSION)} "
        "WHERE dataflow_tag = ? ORDER BY version",
        [tag],
    )
    return [DataflowVersion(tag, int(v), h, c, _spec(s, tag)) for v, h, c, s in res.rows]


def latest_spec(store: Store, tag: str) -> DataflowSpec | None:
    """The newest specification of dataflow ``tag``."""
    rows = store.query(
        f"SELECT spec FROM {_cat(store, S.DATAFLOW_VERSION)} WHERE dataflow_tag = ? ORDER BY version DESC LIMIT 1",
        [tag],
    ).rows
    return _spec(rows[0][0], tag) if rows else None


def latest_specs(store: Store) -> dict[str, DataflowSpec]:
    """The newest specification of every dataflow."""
    versions = _cat(store, S.DATAFLOW_VERSION)
    res = store.query(
        f"SELECT v.dataflow_tag, v.spec FROM {versions} v "
        f"JOIN (SELECT dataflow_tag, MAX(version) AS version FROM {versions} "
        "GROUP BY dataflow_tag) m ON m.dataflow_tag = v.dataflow_tag AND m.version = v.version"
    )
    out = {}
    for tag, text in res.rows:
        spec = _spec(text, tag)
        if spec is not None:
            out[tag] = spec
    return out


def runs_per_dataflow(store: Store) -> dict[str, DataflowRuns]:
    res = store.query(
        f"SELECT dataflow_tag, COUNT(*), MAX(start_time) FROM {_cat(store, S.DATAFLOW_EXECUTION)} GROUP BY dataflow_tag"
    )
    return {tag: DataflowRuns(int(n or 0), last) for tag, n, last in res.rows}


def attributes(store: Store, dataflow_tag: str) -> list[Attribute]:
    """Stored attributes of a dataflow's sets, by set and position."""
    return _select(
        store,
        Attribute,
        f"SELECT ds_tag, name, type, ordinal, optional, declared FROM {_cat(store, S.ATTRIBUTE)} "
        "WHERE dataflow_tag = ? ORDER BY ds_tag, ordinal",
        [dataflow_tag],
    )


def data_dependencies(store: Store, dataflow_tag: str, version: int) -> list[DataDependency]:
    """Data dependencies of a dataflow as of ``version``."""
    return _select(
        store,
        DataDependency,
        f"SELECT ds_tag, previous_dt_tag, next_dt_tag FROM {_cat(store, S.DATA_DEPENDENCY)} "
        "WHERE dataflow_tag = ? AND version_added <= ? ORDER BY ds_tag",
        [dataflow_tag, version],
    )


def set_tables(store: Store, dataflow_tag: str) -> dict[str, list[tuple[str, str]]]:
    """The set relations that exist for a dataflow: table -> ``[(column, SQL type)]``."""
    return S.schema_tables(store.fetch, dataflow_tag)


def set_tags(store: Store, dataflow_tag: str, spec: DataflowSpec | None) -> list[str]:
    """Sets of a dataflow that have a relation: the spec's order, then the others by tag."""
    ordered = list(spec.sets) if spec else []
    for tag in _tags(
        store, f"SELECT tag FROM {_cat(store, S.DATA_SET)} WHERE dataflow_tag = ? ORDER BY tag", [dataflow_tag]
    ):
        if tag not in ordered:
            ordered.append(tag)
    tables = set_tables(store, dataflow_tag)
    return [t for t in ordered if t in tables]


# --- executions -------------------------------------------------------------------------------
def executions(
    store: Store, *, tag: str | None = None, dataflow_tag: str | None = None, newest_first: bool = False
) -> list[Execution]:
    """Executions (one, those of a dataflow, or all), by start time."""
    sql = f"SELECT * FROM {_cat(store, S.DATAFLOW_EXECUTION)}"
    where, params = [], []
    if tag is not None:
        where.append("tag = ?")
        params.append(tag)
    if dataflow_tag is not None:
        where.append("dataflow_tag = ?")
        params.append(dataflow_tag)
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY start_time DESC" if newest_first else " ORDER BY start_time, tag"
    return _select(store, Execution, sql, params)


def execution_tags(store: Store) -> list[str]:
    """Every execution tag, by start time."""
    return _tags(store, f"SELECT tag FROM {_cat(store, S.DATAFLOW_EXECUTION)} ORDER BY start_time, tag")


def execution_summaries(store: Store) -> list[ExecutionSummary]:
    """Runs with status, start, end and task count, by start time."""
    return _select(
        store,
        ExecutionSummary,
        f"SELECT e.tag, e.dataflow_tag, e.status, e.start_time, e.end_time, e.scientist, "
        f"(SELECT COUNT(*) FROM {_cat(store, S.TASK)} t WHERE t.execution_tag = e.tag) AS tasks "
        f"FROM {_cat(store, S.DATAFLOW_EXECUTION)} e ORDER BY e.start_time",
    )


class ExecutionLookupError(DLProvError, LookupError):
    """No execution, or more than one, answers to what was typed (the message lists them)."""

    status = 404


def resolve_execution(store: Store, ref: str) -> Execution:
    """The execution ``ref`` names: its tag, ``latest`` (the newest run), its name
    (``DLPROV_RUN_NAME``), or a prefix of one tag. Raises :class:`ExecutionLookupError` with one
    line: the candidates of an ambiguous name or prefix, or the known tags."""
    for tag in dict.fromkeys((str(ref), str(ref).strip())):  # the tag as given (even blanks), as typed
        if tag and (found := executions(store, tag=tag)):
            return found[0]
    ref = str(ref).strip()
    if not ref:
        raise ExecutionLookupError("no execution given: a tag, 'latest', a run name or a prefix of a tag")
    runs = executions(store, newest_first=True)
    if not runs:
        raise ExecutionLookupError(f"unknown execution {ref!r}: {store.url} has no executions yet")
    if ref.lower() == "latest":
        return runs[0]
    named, prefixed = [e for e in runs if e.name == ref], [e for e in runs if e.tag.startswith(ref)]
    for what, hits in (("name", named), ("prefix", prefixed)):
        if len(hits) == 1:
            return hits[0]
        if hits:
            shown = ", ".join(f"{e.tag!r}" + (f" ({e.name})" if e.name else "") for e in hits[:10])
            more = f", ... ({len(hits)} in all)" if len(hits) > 10 else ""
            raise ExecutionLookupError(
                f"{ref!r} is the {what} of {len(hits)} executions: {shown}{more}; give more of the tag"
            )
    oldest_first = [e.tag for e in reversed(runs)]
    known = ", ".join(map(repr, oldest_first[-20:]))
    more = f" ({len(runs)} in all, the newest shown)" if len(runs) > 20 else ""
    raise ExecutionLookupError(
        f"unknown execution {ref!r} in {store.url}; known: {known}{more}; or give 'latest', a name or a prefix"
    )


EXECUTION_LIST_COLUMNS = ["tag", "dataflow_tag", "status", "name", "start_time", "end_time", "duration_s",
                          "scientist", "tasks", "epochs", "elements"]
EPOCH_SET = "otrainmodel"  # the set whose rows are epochs in the DL dataflow


def execution_list(store: Store) -> list[dict[str, Any]]:
    """Every run, oldest first, as ``dlprov executions`` (local or ``--endpoint``) and
    ``/v1/executions`` list them: :data:`EXECUTION_LIST_COLUMNS`, with the dashboard's status (a
    RUNNING run whose processes are gone and that went quiet shows as ``KILLED``)."""
    at, runs = now(), executions(store)
    procs = processes(store)
    activity = last_activity(store, {e.trace_id for e in runs} | {p.trace_id for ps in procs.values() for p in ps})
    tasks = task_status_counts(store)
    rows_per_set: dict[str, dict[str, int]] = defaultdict(dict)  # execution -> set -> rows
    for flow in sorted({e.dataflow_tag for e in runs if e.dataflow_tag}):
        for set_tag, columns in set_tables(store, flow).items():
            table = _relation(flow, set_tag)
            if table is None or S.EXECUTION_TAG not in {c for c, _ in columns}:
                continue
            by_run = f"SELECT {S.EXECUTION_TAG}, COUNT(*) FROM {table} GROUP BY {S.EXECUTION_TAG}"
            for tag, n in store.query(by_run).rows:
                rows_per_set[tag][set_tag] = int(n)
    out = []
    for e in runs:
        ps = procs.get(e.tag, [])
        last = max((activity[t] for t in {e.trace_id, *(p.trace_id for p in ps)} if t in activity), default=None)
        state = run_state(e, ps, last, at)
        counts = rows_per_set.get(e.tag, {})
        out.append({
            "tag": e.tag, "dataflow_tag": e.dataflow_tag, "status": state["status"], "name": e.name,
            "start_time": e.start_time, "end_time": e.end_time or state["_end"], "duration_s": state["duration_s"],
            "scientist": e.scientist, "tasks": sum(tasks.get(e.tag, {}).values()), "epochs": counts.get(EPOCH_SET, 0),
            "elements": sum(counts.values()),
        })
    return out


def element_counts(store: Store, execution_tag: str) -> dict[str, int]:
    """Rows per set relation for one execution."""
    sets = store.query(
        f"SELECT d.dataflow_tag, d.tag FROM {_cat(store, S.DATA_SET)} d "
        f"JOIN {_cat(store, S.DATAFLOW_EXECUTION)} e ON e.dataflow_tag = d.dataflow_tag WHERE e.tag = ?",
        [execution_tag],
    ).rows
    counts: dict[str, int] = {}
    for df, ds in sets:
        if store.table_columns(df, ds):
            counts[ds] = count_elements(store, df, ds, execution_tag)
    return counts


def hardware(store: Store, ids: Sequence[str]) -> dict[str, Hardware]:
    """Hardware rows by id."""
    found = _select_in(store, Hardware, f"SELECT * FROM {_cat(store, S.HARDWARE)}", "id", sorted(set(ids)))
    return {h.id: h for h in found}


def processes(store: Store, tags: Sequence[str] | None = None) -> dict[str, list[Process]]:
    """The processes of executions (``tags``, or all), with their host names."""
    sql = (
        f"SELECT p.execution_tag, p.trace_id, p.rank, p.pid, p.started_at, h.host_name "
        f"FROM {_cat(store, S.EXECUTION_PROCESS)} p LEFT JOIN {_cat(store, S.HARDWARE)} h ON h.id = p.hardware_id"
    )
    found = _select_in(store, Process, sql, "p.execution_tag", tags) if tags else _select(store, Process, sql)
    out: dict[str, list[Process]] = defaultdict(list)
    for p in found:
        out[p.execution_tag].append(p)
    return out


def last_activity(store: Store, trace_ids: Iterable[str | None]) -> dict[str, dt.datetime]:
    """When the store last received a span of each trace."""
    ids = sorted({t for t in trace_ids if t})
    out: dict[str, dt.datetime] = {}
    for chunk in _chunks(ids, 400):
        for tid, last in store.query(
            f"SELECT trace_id, MAX(received_at) FROM {_cat(store, S.SPAN_LOG)} "
            f"WHERE trace_id IN ({_ph(chunk)}) GROUP BY trace_id",
            list(chunk),
        ).rows:
            if last is not None:
                out[tid] = last
    return out


# --- tasks ------------------------------------------------------------------------------------
def tasks(store: Store, execution_tags: Sequence[str]) -> list[Task]:
    """Tasks of the executions, by start time and id."""
    return _select_in(
        store, Task, f"SELECT * FROM {_cat(store, S.TASK)}", "execution_tag", execution_tags, "ORDER BY start_time, id"
    )


def task_status_counts(store: Store) -> dict[str, dict[str, int]]:
    """Tasks per execution and status (``UNKNOWN`` for none)."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for tag, status, n in store.query(
        f"SELECT execution_tag, status, COUNT(*) FROM {_cat(store, S.TASK)} GROUP BY execution_tag, status"
    ).rows:
        out[tag][status or "UNKNOWN"] += int(n)
    return out


def task_dependencies(store: Store, execution_tags: Sequence[str]) -> list[TaskDependency]:
    return _select_in(
        store, TaskDependency, f"SELECT * FROM {_cat(store, S.TASK_DEPENDENCY)}", "execution_tag", execution_tags
    )


# --- elements ---------------------------------------------------------------------------------
def _relation(dataflow_tag: str, set_tag: str) -> str | None:
    try:
        return S.qualified(dataflow_tag, set_tag)
    except SpecError:
        return None  # not a name the store would have made


def count_elements(store: Store, dataflow_tag: str, set_tag: str, execution_tag: str | None = None) -> int:
    """Rows of a set relation (of one execution, or all); 0 when it has none."""
    table = _relation(dataflow_tag, set_tag)
    if table is None:
        return 0
    if execution_tag is None:
        return int(store.query(f"SELECT COUNT(*) FROM {table}").rows[0][0])
    return int(store.query(f"SELECT COUNT(*) FROM {table} WHERE {S.EXECUTION_TAG} = ?", [execution_tag]).rows[0][0])


def elements(store: Store, dataflow_tag: str, set_tag: str, execution_tags: Sequence[str]) -> list[Element]:
    """Every row of a set relation for the executions, by emission (span, then position)."""
    table = _relation(dataflow_tag, set_tag)
    out: list[Element] = []
    if table is None:
        return out
    for chunk in _chunks(list(execution_tags)):
        res = store.query(
            f"SELECT * FROM {table} WHERE {S.EXECUTION_TAG} IN ({_ph(chunk)}) "
            f"ORDER BY {S.EMITTED_AT}, {S.SPAN_ID}, {S.IDX}",
            list(chunk),
        )
        out.extend(Element(set_tag, dict(zip(res.columns, r, strict=False))) for r in res.rows)
    return out


def element_rows(
    store: Store, dataflow_tag: str, set_tag: str, columns: Sequence[str], execution_tag: str, limit: int
) -> list[tuple]:
    """Up to ``limit`` rows (``columns`` only) of a set relation for one execution, by emission."""
    table = _relation(dataflow_tag, set_tag)
    if table is None:
        return []
    select = ", ".join(S.quote_ident(c) for c in columns)
    return store.query(
        f"SELECT {select} FROM {table} WHERE {S.EXECUTION_TAG} = ? ORDER BY {S.EMITTED_AT}, {S.IDX} LIMIT {int(limit)}",
        [execution_tag],
    ).rows


def boundary_elements(
    store: Store,
    dataflow_tag: str,
    set_tag: str,
    columns: Sequence[str],
    execution_tags: Sequence[str],
    last: bool = True,
) -> dict[str, tuple[dict[str, Any], int]]:
    """(last or first emitted row, row count) of a set relation for each execution in
    ``execution_tags``; only those rows are read, however long the runs."""
    table = _relation(dataflow_tag, set_tag)
    names = set(columns)
    if not table or not {S.EXECUTION_TAG, S.EMITTED_AT} <= names or not execution_tags:
        return {}
    res = store.query(
        f"SELECT o.*, l.dlprov_rows FROM {table} o JOIN (SELECT execution_tag AS dlprov_tag, "
        f"{'MAX' if last else 'MIN'}(emitted_at) AS dlprov_at, COUNT(*) AS dlprov_rows FROM {table} "
        f"WHERE execution_tag IN ({_ph(execution_tags)}) GROUP BY execution_tag) l "
        "ON o.execution_tag = l.dlprov_tag AND o.emitted_at = l.dlprov_at "
        # two epochs in one millisecond: the later epoch wins
        f"ORDER BY {'o.epoch, ' if 'epoch' in names else ''}o.idx",
        list(execution_tags),
    )
    out: dict[str, tuple[dict[str, Any], int]] = {}
    for r in res.as_dicts():
        n = int(r.pop("dlprov_rows"))
        if r[S.EXECUTION_TAG] not in out or last:  # rows of one span: the first, or the last, element
            out[r[S.EXECUTION_TAG]] = (r, n)
    return out


# --- what is stored (the journal reads its spans back before deleting itself) -------------
def stored_span_keys(store: Store, keys: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
    """Which of these (trace id, span id) pairs the store holds (``span_log``)."""
    wanted = {(f"{t:032x}", f"{s:016x}"): (t, s) for t, s in keys}
    found: set[tuple[int, int]] = set()
    span_ids = sorted({s for _, s in wanted})
    for chunk in _chunks(span_ids):
        res = store.query(
            f"SELECT trace_id, span_id FROM {_cat(store, S.SPAN_LOG)} WHERE span_id IN ({_ph(chunk)})", list(chunk)
        )
        for t, s in res.rows:
            if (t, s) in wanted:
                found.add(wanted[(t, s)])
    return found


__all__ = [
    "EXECUTION_LIST_COLUMNS",
    "SUMMARY_COLUMNS",
    "ExecutionLookupError",
    "attributes",
    "boundary_elements",
    "count_elements",
    "data_dependencies",
    "dataflow",
    "dataflow_tags",
    "dataflows",
    "element_counts",
    "element_rows",
    "elements",
    "execution_list",
    "execution_summaries",
    "execution_tags",
    "executions",
    "hardware",
    "last_activity",
    "latest_spec",
    "latest_specs",
    "processes",
    "resolve_execution",
    "runs_per_dataflow",
    "set_tables",
    "set_tags",
    "spec_versions",
    "stored_span_keys",
    "task_dependencies",
    "task_status_counts",
    "tasks",
]
