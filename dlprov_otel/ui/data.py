"""The dashboard's JSON documents, read from the provenance store through its read model
(:mod:`dlprov_otel.store.readmodel`). Values come back JSON-ready (ISO datetimes in UTC
without a zone, NaN as null) once the web layer has passed them through ``jsonable``.
"""

from __future__ import annotations

import math
import re
import socket
from collections import defaultdict
from typing import Any

from dlprov_otel.errors import DLProvError
from dlprov_otel.model import DataflowSpec
from dlprov_otel.store import Store, readmodel, schema
from dlprov_otel.store.liveness import KILLED, effective_status, killed_after_s, now, run_state, seconds
from dlprov_otel.store.readmodel import Execution, Hardware
from dlprov_otel.store.schema import INTERNAL_COLUMNS, RESERVED_COLUMNS, is_numeric

from .lineage import build_lineage

# The predefined DL dataflow's sets the dashboard gives a meaning to.
HYPERPARAMETER_SET = "itrainmodel"
METRIC_SET = "otrainmodel"
TEST_SET = "otestmodel"
ADAPTATION_SET = "oadaptation"
MODEL_SET = "otrainedmodel"
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Provenance columns of every set relation that a person does not need to see per row.
HIDDEN_COLUMNS = INTERNAL_COLUMNS
MAX_SET_ROWS = 5000  # per set and execution in one answer
LONG_TEXT = 160  # hyperparameter values longer than this (model JSON) stay out of the list


class NotFound(DLProvError, LookupError):
    """The dataflow or execution named is not in the store."""

    status = 404


def _hardware(hw: Hardware | None) -> dict[str, Any]:
    hw = hw or Hardware(None)
    return {
        "host_name": hw.host_name,
        "arch": hw.arch,
        "os": hw.os,
        "cpu_model": hw.cpu_model,
        "cpu_count": hw.cpu_count,
        "memory_bytes": hw.memory_bytes,
        "gpus": hw.gpu_list(),
        "container": hw.container,
    }


def _transformations(spec: DataflowSpec | None) -> list[dict[str, Any]]:
    return spec.transformations if spec else []


def _sets(spec: DataflowSpec | None) -> list[dict[str, Any]]:
    return list(spec.sets.values()) if spec else []


# --- dataflows ------------------------------------------------------------------------------
def list_dataflows(store: Store) -> list[dict[str, Any]]:
    """Every dataflow with its version, sizes and how many runs it has."""
    specs = readmodel.latest_specs(store)
    runs = readmodel.runs_per_dataflow(store)
    out = []
    for f in readmodel.dataflows(store):
        spec = specs.get(f.tag)
        r = runs.get(f.tag)
        out.append(
            {
                "tag": f.tag,
                "version": f.version,
                "created_at": f.created_at,
                "updated_at": f.updated_at,
                "transformations": [t.get("tag") for t in _transformations(spec)],
                "sets": len(_sets(spec)),
                "executions": r.executions if r else 0,
                "last_run": r.last_run if r else None,
            }
        )
    return out


def dataflow_detail(store: Store, tag: str, version: int | None = None) -> dict[str, Any]:
    """The prospective graph of one dataflow version: transformations, sets with attributes,
    data dependencies, plus the element count of each set."""
    versions = readmodel.spec_versions(store, tag)
    if not versions:
        known = readmodel.dataflow_tags(store)
        raise NotFound(f"no dataflow {tag!r} in the store (known: {', '.join(known) or 'none'})")
    chosen = versions[-1]
    if version is not None:
        match = [v for v in versions if v.version == version]
        if not match:
            raise NotFound(f"dataflow {tag!r} has no version {version} (versions: {[v.version for v in versions]})")
        chosen = match[0]
    by_set: dict[str, list[readmodel.Attribute]] = defaultdict(list)
    for a in readmodel.attributes(store, tag):
        by_set[a.ds_tag].append(a)
    tables = readmodel.set_tables(store, tag)
    sets = []
    for s in _sets(chosen.spec):
        declared = [
            {
                "name": a.get("name"),
                "type": a.get("type", "TEXT"),
                "optional": bool(a.get("optional")),
                "declared": True,
            }
            for a in s.get("attributes", [])
        ]
        names = {a["name"] for a in declared}
        extra = [
            {"name": a.name, "type": a.type, "optional": True, "declared": False}
            for a in by_set.get(s.get("tag"), [])
            if a.name not in names and not a.declared
        ]
        set_tag = s.get("tag", "")
        elements = readmodel.count_elements(store, tag, set_tag) if set_tag in tables else 0
        sets.append({"tag": s.get("tag"), "attributes": declared + extra, "elements": elements})
    return {
        "tag": tag,
        "version": chosen.version,
        "spec_hash": chosen.spec_hash,
        "created_at": chosen.created_at,
        "versions": [{"version": v.version, "spec_hash": v.spec_hash, "created_at": v.created_at} for v in versions],
        "transformations": [
            {
                "tag": t.get("tag"),
                "input": list(t.get("input", [])),
                "output": list(t.get("output", [])),
                "dependencies": list(t.get("dependencies", [])),
            }
            for t in _transformations(chosen.spec)
        ],
        "sets": sets,
        "dependencies": [
            {"ds_tag": d.ds_tag, "previous_dt_tag": d.previous_dt_tag, "next_dt_tag": d.next_dt_tag}
            for d in readmodel.data_dependencies(store, tag, chosen.version)
        ],
        "executions": [
            {"tag": e.tag, "status": e.status, "start_time": e.start_time}
            for e in readmodel.executions(store, dataflow_tag=tag, newest_first=True)
        ],
    }


# --- executions -----------------------------------------------------------------------------
def _attributes(row: dict[str, Any], long_text: int | None = None) -> dict[str, Any]:
    """The attribute values of a set row: provenance columns and (optionally) long texts left out."""
    out = {}
    for k, v in row.items():
        if k in RESERVED_COLUMNS or v is None or (isinstance(v, float) and math.isnan(v)):
            continue  # monetdbe reads a NULL double back as NaN
        if long_text is not None and isinstance(v, str) and len(v) > long_text:
            continue
        out[k] = v
    return out


def _execution_items(store: Store, execs: list[Execution]) -> dict[str, dict[str, tuple[dict[str, Any], int]]]:
    """Per set role (hyperparameters, metrics, test): execution tag -> (row, row count)."""
    by_flow: dict[str, list[str]] = defaultdict(list)
    for e in execs:
        if e.dataflow_tag:
            by_flow[e.dataflow_tag].append(e.tag)
    found: dict[str, dict[str, tuple[dict[str, Any], int]]] = {"hyperparameters": {}, "metrics": {}, "test": {}}
    wanted = (("hyperparameters", HYPERPARAMETER_SET, False), ("metrics", METRIC_SET, True), ("test", TEST_SET, True))
    for flow, tags in by_flow.items():
        tables = readmodel.set_tables(store, flow)
        for start in range(0, len(tags), 200):
            chunk = tags[start : start + 200]
            for key, set_tag, last in wanted:
                if set_tag in tables:
                    found[key].update(
                        readmodel.boundary_elements(
                            store, flow, set_tag, [c for c, _ in tables[set_tag]], chunk, last=last
                        )
                    )
    return found


def list_executions(store: Store) -> dict[str, Any]:
    """Every run, newest first: status (killed detected), times, hardware, hyperparameters
    (``itrainmodel``), last epoch metrics (``otrainmodel``) and test metrics (``otestmodel``)."""
    at = now()
    execs = readmodel.executions(store, newest_first=True)
    hardware = readmodel.hardware(store, [e.hardware_id for e in execs if e.hardware_id])
    tasks = readmodel.task_status_counts(store)
    processes = readmodel.processes(store)
    trace_ids = {e.trace_id for e in execs} | {p.trace_id for ps in processes.values() for p in ps}
    activity = readmodel.last_activity(store, trace_ids)
    items = _execution_items(store, execs)
    hparams, metrics, tests = items["hyperparameters"], items["metrics"], items["test"]
    out = []
    for e in execs:
        tag = e.tag
        procs = processes.get(tag, [])
        traces = {e.trace_id, *(p.trace_id for p in procs)}
        last = max((activity[t] for t in traces if t in activity), default=None)
        state = run_state(e, procs, last, at)
        state.pop("_end")
        counts = tasks.get(tag, {})
        out.append(
            {
                "tag": tag,
                "dataflow": e.dataflow_tag,
                **state,
                "scientist": e.scientist,
                "service": e.service_name,
                "world_size": e.world_size,
                "error": e.error,
                "hardware": _hardware(hardware.get(e.hardware_id or "")),
                "tasks": {"total": sum(counts.values()), **counts},
                "epochs": metrics[tag][1] if tag in metrics else 0,
                "hyperparameters": _attributes(hparams[tag][0], LONG_TEXT) if tag in hparams else {},
                "metrics": _attributes(metrics[tag][0]) if tag in metrics else {},
                "test": _attributes(tests[tag][0]) if tag in tests else {},
            }
        )
    return {"now": at, "killed_after_s": killed_after_s(), "host": socket.gethostname(), "executions": out}


_TASK_FIELDS = ("id", "dt_tag", "status", "start_time", "end_time", "duration", "rank", "error")


def execution_detail(store: Store, tag: str) -> dict[str, Any]:
    """One run: its record, hardware, tasks with dependencies, every set's rows and the lineage."""
    at = now()
    try:  # a tag, `latest`, a run name or a unique prefix
        e = readmodel.resolve_execution(store, tag)
    except readmodel.ExecutionLookupError as exc:
        raise NotFound(str(exc)) from None
    tag = e.tag
    flow = e.dataflow_tag
    hardware = readmodel.hardware(store, [e.hardware_id] if e.hardware_id else [])
    task_objs = readmodel.tasks(store, [tag])
    dep_objs = readmodel.task_dependencies(store, [tag])
    procs = readmodel.processes(store, [tag]).get(tag, [])
    activity = readmodel.last_activity(store, {e.trace_id, *(p.trace_id for p in procs)})
    state = run_state(e, procs, max(activity.values(), default=None), at)
    end = state.pop("_end")
    spec = readmodel.latest_spec(store, flow) if flow else None
    sets = _set_rows(store, flow, tag, spec) if flow else {}
    tasks = []
    for t in task_objs:
        row = {k: getattr(t, k) for k in _TASK_FIELDS}
        if t.end_time is None and t.start_time is not None:
            row["elapsed_s"] = seconds(t.start_time, end or at)
        tasks.append(row)
    return {
        "now": at,
        "tag": tag,
        "dataflow": flow,
        **state,
        "killed_after_s": killed_after_s(),
        "scientist": e.scientist,
        "service": e.service_name,
        "trace_id": e.trace_id,
        "world_size": e.world_size,
        "error": e.error,
        "hardware": _hardware(hardware.get(e.hardware_id or "")),
        "processes": [
            {"rank": p.rank, "pid": p.pid, "host_name": p.host_name, "started_at": p.started_at} for p in procs
        ],
        "tasks": tasks,
        "task_dependencies": [{"task_id": d.task_id, "depends_on_task_id": d.depends_on_task_id} for d in dep_objs],
        "transformations": _transformations(spec),
        "sets": sets,
        "lineage": build_lineage(task_objs, dep_objs, spec, sets),
    }


def _set_rows(store: Store, flow: str, tag: str, spec: DataflowSpec | None) -> dict[str, dict[str, Any]]:
    tables = readmodel.set_tables(store, flow)
    order = [s.get("tag") for s in _sets(spec)]
    order += sorted(t for t in tables if t not in order)
    out: dict[str, dict[str, Any]] = {}
    for set_tag in order:
        columns = tables.get(set_tag)
        if not columns or "execution_tag" not in {c for c, _ in columns}:
            continue
        shown = [(c, t) for c, t in columns if c not in HIDDEN_COLUMNS]
        rows = readmodel.element_rows(store, flow, set_tag, [c for c, _ in shown], tag, MAX_SET_ROWS + 1)
        if not rows:
            continue
        out[set_tag] = {
            "columns": [c for c, _ in shown],
            "numeric": [is_numeric(t) for _, t in shown],
            "provenance": [c in RESERVED_COLUMNS for c, _ in shown],
            "rows": [list(r) for r in rows[:MAX_SET_ROWS]],
            "truncated": len(rows) > MAX_SET_ROWS,
        }
    return out


def stored_models(store: Store, tag: str) -> dict[str, str]:
    """The model files an execution recorded in ``otrainedmodel`` with a sha256: digest -> path.

    The only paths the dashboard ever serves come from here: the ``model_dir`` the training
    itself recorded, chosen by its digest (a request never names a path).
    """
    try:  # a tag, `latest`, a run name or a unique prefix, as the execution page
        e = readmodel.resolve_execution(store, tag)
    except readmodel.ExecutionLookupError as exc:
        raise NotFound(str(exc)) from None
    flow, tag = e.dataflow_tag, e.tag
    if not flow:
        return {}
    columns = {c for c, _ in readmodel.set_tables(store, flow).get(MODEL_SET, [])}
    if not {"model_dir", "sha256"} <= columns:
        return {}
    out: dict[str, str] = {}
    for path, digest in readmodel.element_rows(store, flow, MODEL_SET, ["model_dir", "sha256"], tag, MAX_SET_ROWS):
        if isinstance(path, str) and isinstance(digest, str) and SHA256_HEX.fullmatch(digest.lower()):
            out[digest.lower()] = path
    return out


def example_queries(dataflow: str) -> list[dict[str, str]]:
    """The SQL console's example queries over ``dataflow``, as it shows them."""
    queries = schema.example_queries(dataflow)
    return [{"label": label, "sql": "; ".join(statements) + ";"} for label, statements in queries]


__all__ = [
    "KILLED",
    "NotFound",
    "dataflow_detail",
    "effective_status",
    "example_queries",
    "execution_detail",
    "list_dataflows",
    "list_executions",
    "stored_models",
]
