"""The dashboard's JSON documents, read from the provenance store with SQL.

Everything here is a read: catalog tables (``dataflow``, ``dataflow_version``,
``dataflow_execution``, ``task``, ...) and the per-dataflow set relations. Values come back
JSON-ready (ISO datetimes in UTC without a zone, NaN as null).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import socket
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from dlprov_otel import semconv
from dlprov_otel.errors import DLProvError, SpecError
from dlprov_otel.store import Store
from dlprov_otel.store.ddl import quote_ident

# The predefined DL dataflow's sets the dashboard gives a meaning to.
HYPERPARAMETER_SET = "itrainmodel"
METRIC_SET = "otrainmodel"
TEST_SET = "otestmodel"
ADAPTATION_SET = "oadaptation"
# Provenance columns of every set relation that a person does not need to see per row.
HIDDEN_COLUMNS = frozenset({"execution_tag", "trace_id", "span_id", "element_id", "idx"})
MAX_SET_ROWS = 5000  # per set and execution in one answer
LONG_TEXT = 160  # hyperparameter values longer than this (model JSON) stay out of the list
KILLED = "KILLED"
# A RUNNING execution is shown as killed when no span arrived for this long and none of its
# processes is alive on this host.
DEFAULT_KILLED_AFTER_S = 60.0


class NotFound(DLProvError, LookupError):
    """The dataflow or execution named is not in the store."""

    status = 404


def killed_after_s() -> float:
    """Seconds without spans before a RUNNING run whose process is gone counts as killed."""
    raw = os.environ.get("DLPROV_UI_KILLED_AFTER")
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_KILLED_AFTER_S
    except ValueError:
        return DEFAULT_KILLED_AFTER_S


# --- small helpers ----------------------------------------------------------------------------
def _rows(store: Store, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
    return store.query(sql, params).as_dicts()


def _now() -> dt.datetime:
    # the store keeps naive UTC timestamps
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _seconds(a: Any, b: Any) -> float | None:
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return max(0.0, (b - a).total_seconds())
    return None


def _in(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


def _spec(raw: str | None) -> dict[str, Any]:
    try:
        doc = json.loads(raw or "{}")
    except ValueError:
        return {"transformations": [], "sets": []}
    return doc if isinstance(doc, dict) else {"transformations": [], "sets": []}


def _table(schema: str, table: str) -> str | None:
    try:
        return f"{quote_ident(schema)}.{quote_ident(table)}"
    except SpecError:
        return None  # not a name the store would have made


def schema_tables(store: Store, schema: str) -> dict[str, list[tuple[str, str]]]:
    """Set relations of a dataflow's schema: table -> [(column, SQL type)], in column order."""
    res = store.query(
        "SELECT t.name, c.name, c.type FROM sys.columns c JOIN sys.tables t ON c.table_id = t.id "
        "JOIN sys.schemas s ON t.schema_id = s.id WHERE s.name = ? AND NOT t.system ORDER BY t.name, c.number",
        [schema],
    )
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for table, column, ctype in res.rows:
        out[table].append((column, ctype))
    return dict(out)


def _is_numeric(sql_type: str) -> bool:
    from dlprov_otel.store.backends import NUMERIC_TYPES

    return sql_type.lower() in NUMERIC_TYPES


def latest_specs(store: Store) -> dict[str, dict[str, Any]]:
    """The newest specification of every dataflow."""
    rows = _rows(
        store,
        f"SELECT v.dataflow_tag, v.spec FROM {store.cat('dataflow_version')} v "
        f"JOIN (SELECT dataflow_tag, MAX(version) AS version FROM {store.cat('dataflow_version')} "
        "GROUP BY dataflow_tag) m ON m.dataflow_tag = v.dataflow_tag AND m.version = v.version",
    )
    return {r["dataflow_tag"]: _spec(r["spec"]) for r in rows}


# --- liveness -------------------------------------------------------------------------------
def _process_alive(pid: int, started_at: dt.datetime | None) -> bool:
    """Whether ``pid`` still runs here and is the process that started the execution."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    except OSError:
        return True  # cannot tell: do not call it dead
    if started_at is None:
        return True
    try:  # a reused pid belongs to a process that started after the run did
        with open(f"/proc/{pid}/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            boot = next(float(line.split()[1]) for line in f if line.startswith("btime"))
        began = boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return True
    return began <= started_at.replace(tzinfo=dt.UTC).timestamp() + 60


def effective_status(status: str | None, idle_s: float | None, processes: list[dict[str, Any]]) -> str:
    """The recorded status, or ``KILLED`` for a RUNNING run that went quiet and whose processes
    (all on this host) are gone. Runs on other hosts stay RUNNING: we cannot look there."""
    status = status or semconv.RUNNING
    if status != semconv.RUNNING or idle_s is None or idle_s < killed_after_s() or not processes:
        return status
    here = socket.gethostname()
    if any(p.get("host_name") != here or not p.get("pid") for p in processes):
        return status
    if any(_process_alive(int(p["pid"]), p.get("started_at")) for p in processes):
        return status
    return KILLED


def _run_state(e: dict[str, Any], processes: list[dict[str, Any]], last: dt.datetime | None,
               now: dt.datetime) -> dict[str, Any]:
    """Status (killed detected), times and idleness of an execution row."""
    idle = _seconds(last, now)
    status = effective_status(e["status"], idle, processes)
    running = (e["status"] or semconv.RUNNING) == semconv.RUNNING
    # a killed run ended with its last span; a running one lasts until now
    end = e["end_time"] if not running else (last if status == KILLED else None)
    return {
        "status": status,
        "recorded_status": e["status"],
        "start_time": e["start_time"],
        "end_time": e["end_time"],
        "last_activity": last,
        "duration_s": _seconds(e["start_time"], end or now),
        "idle_s": idle,
        "_end": end,
    }


# --- dataflows ------------------------------------------------------------------------------
def list_dataflows(store: Store) -> list[dict[str, Any]]:
    """Every dataflow with its version, sizes and how many runs it has."""
    flows = _rows(store, f"SELECT tag, version, created_at, updated_at FROM {store.cat('dataflow')} ORDER BY tag")
    specs = latest_specs(store)
    counts = {
        r["dataflow_tag"]: r
        for r in _rows(
            store,
            "SELECT dataflow_tag, COUNT(*) AS executions, MAX(start_time) AS last_run "
            f"FROM {store.cat('dataflow_execution')} GROUP BY dataflow_tag",
        )
    }
    out = []
    for f in flows:
        spec = specs.get(f["tag"], {})
        c = counts.get(f["tag"], {})
        out.append(
            {
                **f,
                "transformations": [t.get("tag") for t in spec.get("transformations", [])],
                "sets": len(spec.get("sets", [])),
                "executions": int(c.get("executions") or 0),
                "last_run": c.get("last_run"),
            }
        )
    return out


def dataflow_detail(store: Store, tag: str, version: int | None = None) -> dict[str, Any]:
    """The prospective graph of one dataflow version: transformations, sets with attributes,
    data dependencies, plus the element count of each set."""
    versions = _rows(
        store,
        f"SELECT version, spec_hash, created_at, spec FROM {store.cat('dataflow_version')} "
        "WHERE dataflow_tag = ? ORDER BY version",
        [tag],
    )
    if not versions:
        known = [f["tag"] for f in _rows(store, f"SELECT tag FROM {store.cat('dataflow')} ORDER BY tag")]
        raise NotFound(f"no dataflow {tag!r} in the store (known: {', '.join(known) or 'none'})")
    chosen = versions[-1]
    if version is not None:
        match = [v for v in versions if v["version"] == version]
        if not match:
            raise NotFound(f"dataflow {tag!r} has no version {version} (versions: {[v['version'] for v in versions]})")
        chosen = match[0]
    spec = _spec(chosen["spec"])
    observed = _rows(
        store,
        f"SELECT ds_tag, name, type, ordinal, optional, declared FROM {store.cat('attribute')} "
        "WHERE dataflow_tag = ? ORDER BY ds_tag, ordinal",
        [tag],
    )
    by_set: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in observed:
        by_set[a["ds_tag"]].append(a)
    tables = schema_tables(store, tag)
    sets = []
    for s in spec.get("sets", []):
        declared = [
            {"name": a.get("name"), "type": a.get("type", "TEXT"), "optional": bool(a.get("optional")),
             "declared": True}
            for a in s.get("attributes", [])
        ]
        names = {a["name"] for a in declared}
        extra = [
            {"name": a["name"], "type": a["type"], "optional": True, "declared": False}
            for a in by_set.get(s.get("tag"), [])
            if a["name"] not in names and not a["declared"]
        ]
        elements = 0
        qualified = _table(tag, s.get("tag", ""))
        if qualified and s.get("tag") in tables:
            elements = int(store.query(f"SELECT COUNT(*) FROM {qualified}").rows[0][0])
        sets.append({"tag": s.get("tag"), "attributes": declared + extra, "elements": elements})
    deps = _rows(
        store,
        f"SELECT ds_tag, previous_dt_tag, next_dt_tag FROM {store.cat('data_dependency')} "
        "WHERE dataflow_tag = ? AND version_added <= ? ORDER BY ds_tag",
        [tag, chosen["version"]],
    )
    executions = _rows(
        store,
        f"SELECT tag, status, start_time FROM {store.cat('dataflow_execution')} WHERE dataflow_tag = ? "
        "ORDER BY start_time DESC",
        [tag],
    )
    return {
        "tag": tag,
        "version": chosen["version"],
        "spec_hash": chosen["spec_hash"],
        "created_at": chosen["created_at"],
        "versions": [{k: v[k] for k in ("version", "spec_hash", "created_at")} for v in versions],
        "transformations": [
            {
                "tag": t.get("tag"),
                "input": list(t.get("input", [])),
                "output": list(t.get("output", [])),
                "dependencies": list(t.get("dependencies", [])),
            }
            for t in spec.get("transformations", [])
        ],
        "sets": sets,
        "dependencies": deps,
        "executions": executions,
    }


# --- executions -----------------------------------------------------------------------------
_EXEC_SELECT = (
    "SELECT e.tag, e.dataflow_tag, e.status, e.start_time, e.end_time, e.scientist, e.service_name, "
    "e.trace_id, e.world_size, e.error, e.hardware_id, h.host_name, h.arch, h.os, h.cpu_model, h.cpu_count, "
    "h.memory_bytes, h.gpus, h.container FROM {execs} e LEFT JOIN {hw} h ON h.id = e.hardware_id"
)
_HARDWARE = ("host_name", "arch", "os", "cpu_model", "cpu_count", "memory_bytes", "gpus", "container")


def _hardware(row: dict[str, Any]) -> dict[str, Any]:
    hw = {k: row.get(k) for k in _HARDWARE}
    try:
        hw["gpus"] = json.loads(hw["gpus"]) if hw["gpus"] else []
    except (TypeError, ValueError):
        hw["gpus"] = [hw["gpus"]]
    return hw


def _processes(store: Store, tags: Sequence[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    where = f" WHERE p.execution_tag IN ({_in(tags)})" if tags else ""
    rows = _rows(
        store,
        f"SELECT p.execution_tag, p.trace_id, p.rank, p.pid, p.started_at, h.host_name "
        f"FROM {store.cat('execution_process')} p LEFT JOIN {store.cat('hardware')} h ON h.id = p.hardware_id"
        + where,
        list(tags or []),
    )
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        out[r["execution_tag"]].append(r)
    return out


def _last_activity(store: Store, trace_ids: Sequence[str]) -> dict[str, dt.datetime]:
    ids = [t for t in trace_ids if t]
    if not ids:
        return {}
    out: dict[str, dt.datetime] = {}
    for start in range(0, len(ids), 400):
        chunk = ids[start : start + 400]
        for tid, last in store.query(
            f"SELECT trace_id, MAX(received_at) FROM {store.cat('span_log')} "
            f"WHERE trace_id IN ({_in(chunk)}) GROUP BY trace_id",
            chunk,
        ).rows:
            if last is not None:
                out[tid] = last
    return out


def _attributes(row: dict[str, Any], long_text: int | None = None) -> dict[str, Any]:
    """The attribute values of a set row: provenance columns and (optionally) long texts left out."""
    out = {}
    for k, v in row.items():
        if k in semconv.RESERVED_COLUMNS or v is None or (isinstance(v, float) and math.isnan(v)):
            continue  # monetdbe reads a NULL double back as NaN
        if long_text is not None and isinstance(v, str) and len(v) > long_text:
            continue
        out[k] = v
    return out


def _per_execution(store: Store, schema: str, table: str, columns: list[tuple[str, str]],
                   tags: Sequence[str], last: bool = True) -> dict[str, tuple[dict[str, Any], int]]:
    """(last or first emitted row, row count) of a set relation for each execution in ``tags``;
    only those rows are read, however long the runs."""
    qualified = _table(schema, table)
    names = {c for c, _ in columns}
    if not qualified or not {"execution_tag", "emitted_at"} <= names or not tags:
        return {}
    rows = _rows(
        store,
        f"SELECT o.*, l.dlprov_rows FROM {qualified} o JOIN (SELECT execution_tag AS dlprov_tag, "
        f"{'MAX' if last else 'MIN'}(emitted_at) AS dlprov_at, COUNT(*) AS dlprov_rows FROM {qualified} "
        f"WHERE execution_tag IN ({_in(tags)}) GROUP BY execution_tag) l "
        "ON o.execution_tag = l.dlprov_tag AND o.emitted_at = l.dlprov_at "
        # two epochs in one millisecond: the later epoch wins
        f"ORDER BY {'o.epoch, ' if 'epoch' in names else ''}o.idx",
        list(tags),
    )
    out: dict[str, tuple[dict[str, Any], int]] = {}
    for r in rows:
        n = int(r.pop("dlprov_rows"))
        if r["execution_tag"] not in out or last:  # rows of one span: the first, or the last, element
            out[r["execution_tag"]] = (r, n)
    return out


def list_executions(store: Store) -> dict[str, Any]:
    """Every run, newest first: status (killed detected), times, hardware, hyperparameters
    (``itrainmodel``), last epoch metrics (``otrainmodel``) and test metrics (``otestmodel``)."""
    now = _now()
    execs = _rows(store, _EXEC_SELECT.format(execs=store.cat("dataflow_execution"), hw=store.cat("hardware"))
                  + " ORDER BY e.start_time DESC")
    tasks: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for tag, status, n in store.query(
        f"SELECT execution_tag, status, COUNT(*) FROM {store.cat('task')} GROUP BY execution_tag, status"
    ).rows:
        tasks[tag][status or "UNKNOWN"] += int(n)
    processes = _processes(store)
    trace_ids = {e["trace_id"] for e in execs} | {p["trace_id"] for ps in processes.values() for p in ps}
    activity = _last_activity(store, sorted(t for t in trace_ids if t))
    by_flow: dict[str, list[str]] = defaultdict(list)
    for e in execs:
        if e["dataflow_tag"]:
            by_flow[e["dataflow_tag"]].append(e["tag"])
    hparams: dict[str, tuple[dict[str, Any], int]] = {}
    metrics: dict[str, tuple[dict[str, Any], int]] = {}
    tests: dict[str, tuple[dict[str, Any], int]] = {}
    for flow, tags in by_flow.items():
        tables = schema_tables(store, flow)
        for start in range(0, len(tags), 200):
            chunk = tags[start : start + 200]
            if HYPERPARAMETER_SET in tables:
                hparams.update(_per_execution(store, flow, HYPERPARAMETER_SET, tables[HYPERPARAMETER_SET], chunk,
                                              last=False))
            if METRIC_SET in tables:
                metrics.update(_per_execution(store, flow, METRIC_SET, tables[METRIC_SET], chunk))
            if TEST_SET in tables:
                tests.update(_per_execution(store, flow, TEST_SET, tables[TEST_SET], chunk))
    items = []
    for e in execs:
        tag = e["tag"]
        procs = processes.get(tag, [])
        traces = {e["trace_id"], *(p["trace_id"] for p in procs)}
        last = max((activity[t] for t in traces if t in activity), default=None)
        state = _run_state(e, procs, last, now)
        state.pop("_end")
        counts = tasks.get(tag, {})
        items.append(
            {
                "tag": tag,
                "dataflow": e["dataflow_tag"],
                **state,
                "scientist": e["scientist"],
                "service": e["service_name"],
                "world_size": e["world_size"],
                "error": e["error"],
                "hardware": _hardware(e),
                "tasks": {"total": sum(counts.values()), **counts},
                "epochs": metrics[tag][1] if tag in metrics else 0,
                "hyperparameters": _attributes(hparams[tag][0], LONG_TEXT) if tag in hparams else {},
                "metrics": _attributes(metrics[tag][0]) if tag in metrics else {},
                "test": _attributes(tests[tag][0]) if tag in tests else {},
            }
        )
    return {"now": now, "killed_after_s": killed_after_s(), "host": socket.gethostname(), "executions": items}


def execution_detail(store: Store, tag: str) -> dict[str, Any]:
    """One run: its record, hardware, tasks with dependencies, every set's rows and the lineage."""
    now = _now()
    found = _rows(
        store,
        _EXEC_SELECT.format(execs=store.cat("dataflow_execution"), hw=store.cat("hardware")) + " WHERE e.tag = ?",
        [tag],
    )
    if not found:
        raise NotFound(f"no execution {tag!r} in the store")
    e = found[0]
    flow = e["dataflow_tag"]
    tasks = _rows(
        store,
        f"SELECT id, dt_tag, status, start_time, end_time, duration, rank, error FROM {store.cat('task')} "
        "WHERE execution_tag = ? ORDER BY start_time, id",
        [tag],
    )
    deps = _rows(
        store,
        f"SELECT task_id, depends_on_task_id FROM {store.cat('task_dependency')} WHERE execution_tag = ?",
        [tag],
    )
    procs = _processes(store, [tag]).get(tag, [])
    activity = _last_activity(store, sorted({e["trace_id"], *(p["trace_id"] for p in procs)} - {None}))
    state = _run_state(e, procs, max(activity.values(), default=None), now)
    end = state.pop("_end")
    spec = latest_specs(store).get(flow or "", {"transformations": [], "sets": []})
    sets = _set_rows(store, flow, tag, spec) if flow else {}
    for t in tasks:
        if t["end_time"] is None and t["start_time"] is not None:
            t["elapsed_s"] = _seconds(t["start_time"], end or now)
    from .lineage import build_lineage

    return {
        "now": now,
        "tag": tag,
        "dataflow": flow,
        **state,
        "killed_after_s": killed_after_s(),
        "scientist": e["scientist"],
        "service": e["service_name"],
        "trace_id": e["trace_id"],
        "world_size": e["world_size"],
        "error": e["error"],
        "hardware": _hardware(e),
        "processes": [{k: p[k] for k in ("rank", "pid", "host_name", "started_at")} for p in procs],
        "tasks": tasks,
        "task_dependencies": deps,
        "transformations": spec.get("transformations", []),
        "sets": sets,
        "lineage": build_lineage(tasks, deps, spec, sets),
    }


def _set_rows(store: Store, flow: str, tag: str, spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    tables = schema_tables(store, flow)
    order = [s.get("tag") for s in spec.get("sets", [])]
    order += sorted(t for t in tables if t not in order)
    out: dict[str, dict[str, Any]] = {}
    for set_tag in order:
        columns = tables.get(set_tag)
        qualified = _table(flow, set_tag) if columns else None
        if not qualified or "execution_tag" not in {c for c, _ in columns}:
            continue
        shown = [(c, t) for c, t in columns if c not in HIDDEN_COLUMNS]
        select = ", ".join(quote_ident(c) for c, _ in shown)
        res = store.query(
            f"SELECT {select} FROM {qualified} WHERE execution_tag = ? "
            f"ORDER BY emitted_at, idx LIMIT {MAX_SET_ROWS + 1}",
            [tag],
        )
        if not res.rows:
            continue
        out[set_tag] = {
            "columns": [c for c, _ in shown],
            "numeric": [_is_numeric(t) for _, t in shown],
            "rows": [list(r) for r in res.rows[:MAX_SET_ROWS]],
            "truncated": len(res.rows) > MAX_SET_ROWS,
        }
    return out


__all__ = [
    "KILLED",
    "NotFound",
    "dataflow_detail",
    "effective_status",
    "execution_detail",
    "list_dataflows",
    "list_executions",
    "schema_tables",
]
