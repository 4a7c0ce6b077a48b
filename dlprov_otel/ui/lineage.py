"""The data lineage of one execution as a graph: tasks and the data sets they used and made.

A data node is the group of elements of one set that one task produced (``producer_task_id``)
or was given as input (``consumer_task_id``). A task used another task's output when its
transformation takes that set as input and the producer is its nearest dependency
(transitively, through ``task_dependency``) whose transformation makes that set: the rule the
PROV builder follows, so the drawing and the PROV document agree.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from dlprov_otel.semconv import RESERVED_COLUMNS


def _key(value: Any) -> str:
    return "" if value is None else str(value)


def build_lineage(
    tasks: list[dict[str, Any]],
    dependencies: list[dict[str, Any]],
    spec: dict[str, Any],
    sets: dict[str, dict[str, Any]],
) -> dict[str, list[dict[str, Any]]]:
    """``{"nodes": [...], "edges": [...]}`` for the dashboard's lineage drawing."""
    task_by = {_key(t["id"]): t for t in tasks}
    deps: dict[str, list[str]] = defaultdict(list)
    for d in dependencies:
        deps[_key(d["task_id"])].append(_key(d["depends_on_task_id"]))
    inputs_of = {t.get("tag"): list(t.get("input", [])) for t in spec.get("transformations", [])}
    producers: dict[str, set[str]] = defaultdict(set)
    for t in spec.get("transformations", []):
        for s in t.get("output", []):
            producers[s].add(t.get("tag"))

    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for set_tag, doc in sets.items():
        ix = {c: i for i, c in enumerate(doc["columns"])}
        for row in doc["rows"]:
            prod = row[ix["producer_task_id"]] if "producer_task_id" in ix else None
            cons = row[ix["consumer_task_id"]] if "consumer_task_id" in ix else None
            if prod is not None:
                role, owner = "output", _key(prod)
            elif cons is not None:
                role, owner = "input", _key(cons)
            else:
                role, owner = "output", _key(row[ix["task_id"]]) if "task_id" in ix else ""
            attrs = {c: row[i] for c, i in ix.items() if c not in RESERVED_COLUMNS and row[i] is not None}
            g = groups.setdefault((set_tag, role, owner), {"count": 0, "first": attrs})
            g["count"] += 1
            g["last"] = attrs

    def data_id(key: tuple[str, str, str]) -> str:
        return f"d:{key[0]}:{key[1]}:{key[2]}"

    nodes: list[dict[str, Any]] = [
        {
            "id": f"t:{tid}",
            "kind": "task",
            "label": t["dt_tag"],
            "task_id": tid,
            "status": t["status"],
            "duration": t.get("duration"),
        }
        for tid, t in task_by.items()
    ]
    edges: list[dict[str, Any]] = []
    for key, g in groups.items():
        set_tag, role, owner = key
        nodes.append(
            {
                "id": data_id(key),
                "kind": "data",
                "label": set_tag,
                "role": role,
                "task_id": owner,
                "count": g["count"],
                "first": g["first"],
                "last": g["last"],
            }
        )
        if owner in task_by:
            if role == "input":
                edges.append({"from": data_id(key), "to": f"t:{owner}", "kind": "used"})
            else:
                edges.append({"from": f"t:{owner}", "to": data_id(key), "kind": "generated"})

    linked: set[tuple[str, str]] = set()  # (producer task, consumer task) joined by data
    for tid, t in task_by.items():
        for set_tag in inputs_of.get(t["dt_tag"], []):
            if (set_tag, "input", tid) in groups:
                continue  # given to the task directly (hyperparameters, split ratio)
            if tid in deps:
                found = _nearest_producers(tid, set_tag, deps, task_by, producers, groups)
            else:  # dependencies are stored when a task ends: a running task gets the latest producer
                found = _latest_producer(tid, set_tag, task_by, producers, groups)
            for producer in found:
                edges.append({"from": data_id((set_tag, "output", producer)), "to": f"t:{tid}", "kind": "used"})
                linked.add((producer, tid))
    for tid, ds in deps.items():
        for dep in ds:
            if tid in task_by and dep in task_by and (dep, tid) not in linked:
                edges.append({"from": f"t:{dep}", "to": f"t:{tid}", "kind": "informed"})
    return {"nodes": nodes, "edges": edges}


def _nearest_producers(
    tid: str,
    set_tag: str,
    deps: dict[str, list[str]],
    task_by: dict[str, dict[str, Any]],
    producers: dict[str, set[str]],
    groups: dict[tuple[str, str, str], dict[str, Any]],
) -> list[str]:
    seen = {tid}
    level = [d for d in deps.get(tid, []) if d in task_by]
    while level:
        found = [
            d for d in level
            if task_by[d]["dt_tag"] in producers.get(set_tag, ()) and (set_tag, "output", d) in groups
        ]
        if found:
            return sorted(set(found))
        seen.update(level)
        level = sorted({n for d in level for n in deps.get(d, []) if n in task_by and n not in seen})
    return []


def _latest_producer(
    tid: str,
    set_tag: str,
    task_by: dict[str, dict[str, Any]],
    producers: dict[str, set[str]],
    groups: dict[tuple[str, str, str], dict[str, Any]],
) -> list[str]:
    start = task_by[tid].get("start_time")
    candidates = [
        (t.get("start_time"), d) for d, t in task_by.items()
        if d != tid and t["dt_tag"] in producers.get(set_tag, ()) and (set_tag, "output", d) in groups
        and (start is None or t.get("start_time") is None or t["start_time"] <= start)
    ]
    if not candidates:
        return []
    return [max(candidates, key=lambda c: (c[0] is not None, c[0] or 0))[1]]
