"""The data lineage of one execution as a graph: tasks and the data sets they used and made.

A data node is the group of elements of one set that one task produced (``producer_task_id``)
or was given as input (``consumer_task_id``). Which task used which other task's output is the
store's lineage rule (:func:`dlprov_otel.store.lineage.link`), the one the PROV builder
follows, so the drawing and the PROV document agree.
"""

from __future__ import annotations

from typing import Any

from dlprov_otel.model import DataflowSpec
from dlprov_otel.store.lineage import link
from dlprov_otel.store.readmodel import Element, Task, TaskDependency
from dlprov_otel.store.schema import CONSUMER_TASK_ID, EXECUTION_TAG, PRODUCER_TASK_ID, RESERVED_COLUMNS, TASK_ID


def _key(value: Any) -> str:
    return "" if value is None else str(value)


def _data_id(key: tuple[str, str, str]) -> str:
    return f"d:{key[0]}:{key[1]}:{key[2]}"


def build_lineage(
    tasks: list[Task],
    dependencies: list[TaskDependency],
    spec: DataflowSpec | None,
    sets: dict[str, dict[str, Any]],
) -> dict[str, list[dict[str, Any]]]:
    """``{"nodes": [...], "edges": [...]}`` for the dashboard's lineage drawing; ``sets`` are
    the execution's set rows as the dashboard shows them (``columns`` and ``rows``)."""
    task_by = {_key(t.id): t for t in tasks}
    execution = tasks[0].execution_tag if tasks else None  # the rows shown leave it out
    elements: list[Element] = []
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for set_tag, doc in sets.items():
        columns = doc["columns"]
        for row in doc["rows"]:
            values = dict(zip(columns, row, strict=False))
            values.setdefault(EXECUTION_TAG, execution)
            elements.append(Element(set_tag, values))
            if values.get(PRODUCER_TASK_ID) is not None:
                role, owner = "output", _key(values[PRODUCER_TASK_ID])
            elif values.get(CONSUMER_TASK_ID) is not None:
                role, owner = "input", _key(values[CONSUMER_TASK_ID])
            else:
                role, owner = "output", _key(values.get(TASK_ID))
            attrs = {c: v for c, v in values.items() if c not in RESERVED_COLUMNS and v is not None}
            g = groups.setdefault((set_tag, role, owner), {"count": 0, "first": attrs})
            g["count"] += 1
            g["last"] = attrs

    nodes: list[dict[str, Any]] = [
        {
            "id": f"t:{tid}",
            "kind": "task",
            "label": t.dt_tag,
            "task_id": tid,
            "status": t.status,
            "duration": t.duration,
        }
        for tid, t in task_by.items()
    ]
    edges: list[dict[str, Any]] = []
    for key, g in groups.items():
        set_tag, role, owner = key
        nodes.append(
            {
                "id": _data_id(key),
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
                edges.append({"from": _data_id(key), "to": f"t:{owner}", "kind": "used"})
            else:
                edges.append({"from": f"t:{owner}", "to": _data_id(key), "kind": "generated"})

    links = link(spec, tasks, dependencies, elements)
    used = {node.id: node for node in links.tasks}
    linked: set[tuple[str, str]] = set()  # (producer task, consumer task) joined by data
    for tid in task_by:
        node = used.get(tid)
        for set_tag, found in links.used.get(node, []) if node is not None else []:
            producers = sorted({links.owner[id(el)][0].id for el in found})
            for producer in producers:
                edges.append({"from": _data_id((set_tag, "output", producer)), "to": f"t:{tid}", "kind": "used"})
                linked.add((producer, tid))
    for node in links.tasks:
        for dep in node.deps:
            if (dep.id, node.id) not in linked:
                edges.append({"from": f"t:{dep.id}", "to": f"t:{node.id}", "kind": "informed"})
    return {"nodes": nodes, "edges": edges}
