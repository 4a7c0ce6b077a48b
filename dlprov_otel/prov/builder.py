"""Build a W3C PROV document from the provenance store.

Everything is read through the store's read model (:mod:`dlprov_otel.store.readmodel`) and
linked with its lineage rule (:mod:`dlprov_otel.store.lineage`); the PROV records are made with
the ``prov`` library. Identifiers are derived from what the store already keys on (trace and
span ids, element ids, tags), so building the same execution twice gives the same document.

Mapping (vocabulary ``dlprov:`` = ``https://w3id.org/dlprov/ns#``, instances ``dlid:`` =
``https://w3id.org/dlprov/id/``):

===========================  ===============================================================
store                        PROV
===========================  ===============================================================
dataflow (+ spec)            entity ``dlid:dataflow/<tag>``, ``prov:type prov:Plan``
execution                    activity ``dlid:execution/<trace id>`` (start, end), used the plan
scientist                    agent ``dlid:scientist/<name>``, ``prov:Person``
hardware                     agent ``dlid:hardware/<id>``, ``dlprov:Hardware``
(execution, agent, plan)     wasAssociatedWith(execution, agent, plan)
recipe (execution_recipe)    entity ``dlid:recipe/<trace id>``, ``prov:Plan`` + ``dlprov:Recipe`` (script,
                             git, python, packages, seeds, env; digests); the script as agent
                             ``dlid:software/<sha256>`` (``prov:SoftwareAgent``);
                             wasAssociatedWith(execution and each task, software, recipe)
task                         activity ``dlid:task/<trace>-<span>`` (start, end widened to cover its
                             late outputs, ``dlprov:span_end``), ``dlprov:dt_tag``,
                             wasInformedBy(task, execution), wasInformedBy(task, dependency)
set relation row             entity ``dlid:element/<trace>-<element id>``, ``dlprov:ds_tag`` and
                             the row's attributes (numbers ``xsd:double``, NULL/NaN left out)
consumer_task_id             used(task, element, emitted at)
producer_task_id             wasGeneratedBy(element, task, emitted at)
dependency outputs           used(task, element) for elements of the task's input sets that its
                             stored dependencies produced (the lineage rule) before it ended
outputs x inputs of a task   wasDerivedFrom(output, input, task)
otrainedmodel                ``dlprov:TrainedModel``, wasAttributedTo(model, scientist)
===========================  ===============================================================
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from prov.constants import PROV
from prov.model import ProvActivity, ProvDocument, ProvEntity

from ..model import DataflowSpec
from ..store import Store, artifacts, readmodel
from ..store.artifacts import RecipeEntry
from ..store.lineage import Links, TaskNode, link
from ..store.readmodel import Element, Execution, Hardware
from ..store.schema import EMITTED_AT
from .document import DocumentBuilder, typed_attributes
from .errors import UnknownTagError
from .namespaces import MODEL_SETS
from .values import clean_text, number_text, typed, utc

__all__ = ["build", "clean_text", "select_executions"]

_FAR = dt.datetime.max


def _listing(tags: Sequence[str], limit: int = 20) -> str:
    if not tags:
        return "none"
    shown = ", ".join(repr(t) for t in tags[:limit])
    return shown + (f", ... ({len(tags)} in all)" if len(tags) > limit else "")


def select_executions(store: Store, execution: str | None, dataflow: str | None) -> list[Execution]:
    """The executions to export; raises ``UnknownTagError`` naming the known tags."""
    if dataflow is not None:
        known_df = readmodel.dataflow_tags(store)
        if dataflow not in known_df:
            raise UnknownTagError(f"unknown dataflow {dataflow!r} in {store.url}; known: {_listing(known_df)}")
    if execution is not None:
        try:  # a tag, `latest`, a run name or a unique prefix
            rows = [readmodel.resolve_execution(store, execution)]
        except readmodel.ExecutionLookupError as exc:
            raise UnknownTagError(str(exc)) from None
        if dataflow is not None and rows[0].dataflow_tag != dataflow:
            raise UnknownTagError(
                f"execution {execution!r} belongs to dataflow {rows[0].dataflow_tag!r}, not {dataflow!r}"
            )
        return rows
    return readmodel.executions(store, dataflow_tag=dataflow)


def _epoch_key(value: Any) -> float:
    number = typed(value)
    return number if isinstance(number, float) else math.inf


def _label_for(el: Element, numbered: bool, position: int) -> str:
    epoch = dict(typed_attributes(el)).get("epoch")
    if isinstance(epoch, float):
        return f"{el.set_tag} · epoch {number_text(epoch)}"
    if numbered:
        return f"{el.set_tag} #{position + 1}"
    return el.set_tag


def _read_elements(store: Store, dataflow: str, spec: DataflowSpec | None, tags: list[str]) -> list[Element]:
    out: list[Element] = []
    for set_tag in readmodel.set_tags(store, dataflow, spec):
        rows = readmodel.elements(store, dataflow, set_tag, tags)
        if rows and "epoch" in rows[0].values:
            # Emission times tie within a millisecond; the epoch keeps them in order.
            rows.sort(key=lambda r: (r.get(EMITTED_AT) or _FAR, _epoch_key(r.get("epoch"))))
        out.extend(rows)
    return out


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
    b = DocumentBuilder(store, progress or (lambda n: None))
    dataflows: list[str] = []
    if dataflow is not None:
        dataflows.append(dataflow)
    for ex in executions:
        if ex.dataflow_tag and ex.dataflow_tag not in dataflows:
            dataflows.append(ex.dataflow_tag)
    for df in dataflows:
        b.plan(df)

    hardware = readmodel.hardware(store, [ex.hardware_id for ex in executions if ex.hardware_id])
    recipe_of = artifacts.recipes(store, [ex.tag for ex in executions])

    # Read everything first (a few queries per set), then emit records in a fixed order.
    by_df: dict[str | None, list[Execution]] = defaultdict(list)
    for ex in executions:
        by_df[ex.dataflow_tag].append(ex)
    specs = {df: readmodel.latest_spec(store, df) if df else None for df in by_df}
    tags = [ex.tag for ex in executions]
    tasks = readmodel.tasks(store, tags)
    deps = readmodel.task_dependencies(store, tags)
    elements: dict[str, list[Element]] = defaultdict(list)  # exec tag -> elements
    total = 0
    for df, exs in by_df.items():
        if df is None:
            continue
        for el in _read_elements(store, df, specs[df], [ex.tag for ex in exs]):
            elements[str(el.execution_tag)].append(el)
            total += 1
    if on_total is not None:
        on_total(total)

    tasks_of: dict[str, list[readmodel.Task]] = defaultdict(list)
    for t in tasks:
        tasks_of[t.execution_tag].append(t)
    deps_of: dict[str, list[readmodel.TaskDependency]] = defaultdict(list)
    for d in deps:
        deps_of[d.execution_tag].append(d)
    for ex in executions:
        _emit_execution(
            b, ex, specs.get(ex.dataflow_tag), tasks_of[ex.tag], deps_of[ex.tag], elements.get(ex.tag, []), hardware,
            recipe_of.get(ex.tag, []),
        )
    return b.doc


def _emit_execution(
    b: DocumentBuilder,
    ex: Execution,
    spec: DataflowSpec | None,
    tasks: list[readmodel.Task],
    deps: list[readmodel.TaskDependency],
    elements: list[Element],
    hardware: dict[str, Hardware],
    recipe: list[RecipeEntry],
) -> None:
    doc = b.doc
    tag = ex.tag
    exec_id = b.ident("execution", ex.trace_id or tag)
    activity: ProvActivity = doc.activity(
        exec_id,
        utc(ex.start_time),
        utc(ex.end_time),
        [
            (PROV["type"], b.vocab("Execution")),
            (PROV["label"], clean_text(f"execution {tag}")),
            *b.attrs(
                [
                    ("exec_tag", tag),
                    ("dataflow_tag", ex.dataflow_tag),
                    ("status", ex.status),
                    ("scientist", ex.scientist),
                    ("service_name", ex.service_name),
                    ("world_size", int(ex.world_size) if ex.world_size is not None else None),
                    ("trace_id", ex.trace_id),
                    ("error", ex.error),
                ]
            ),
        ],
    )
    plan = b.plans.get(ex.dataflow_tag) if ex.dataflow_tag else None
    if plan is not None:
        doc.used(activity, plan)
    scientist = b.scientist(ex.scientist)
    machine = b.hardware(ex.hardware_id, hardware)
    for agent in (scientist, machine):
        if agent is not None:
            doc.wasAssociatedWith(activity, agent, plan)
    recipe_plan, software = b.recipe(ex.trace_id or tag, recipe) or (None, None)
    if software is not None:
        doc.wasAssociatedWith(activity, software, recipe_plan)
    elif recipe_plan is not None:  # no entry script (a notebook): the run still followed it
        doc.used(activity, recipe_plan)

    links = link(spec, tasks, deps, elements)
    ordered = links.tasks
    intervals = _intervals(links)
    idents = _emit_tasks(b, ex, ordered, intervals)
    for t in ordered:
        doc.wasInformedBy(idents[t], exec_id)
        if software is not None:
            doc.wasAssociatedWith(idents[t], software, recipe_plan)
        for d in t.deps:
            if d in idents:
                doc.wasInformedBy(idents[t], idents[d])

    # Labels say what an element is: "otrainmodel · epoch 3", or "otrainset #2" when a task
    # recorded several elements of one set.
    groups: dict[tuple[int, str, str], list[Element]] = defaultdict(list)
    for el in elements:
        node, role = links.owner.get(id(el), (None, ""))
        groups[(id(node) if node is not None else 0, role, el.set_tag)].append(el)
    for group in groups.values():
        for i, el in enumerate(group):
            b.labels[id(el)] = _label_for(el, len(group) > 1, i)

    for t in ordered:
        used: list[ProvEntity] = []
        used_ids: set[int] = set()
        for el in links.given.get(t, []):
            entity = b.element(el)
            doc.used(idents[t], entity, utc(el.emitted_at))
            used.append(entity)
            used_ids.add(id(entity))
        end = intervals.get(t, (None, None))[1]
        for _set_tag, found in links.used.get(t, []):
            for el in found:
                if end is not None and el.emitted_at is not None and el.emitted_at > end:
                    continue  # made after this task ended (fit, evaluate, then save): not what it used
                entity = b.element(el)
                if id(entity) not in used_ids:
                    doc.used(idents[t], entity)
                    used.append(entity)
                    used_ids.add(id(entity))
        for el in links.made.get(t, []):
            entity = b.element(el)
            doc.wasGeneratedBy(entity, idents[t], utc(el.emitted_at))
            for source in used:
                doc.wasDerivedFrom(entity, source, idents[t])
            if el.set_tag in MODEL_SETS and scientist is not None:
                doc.wasAttributedTo(entity, scientist)
    for el in links.orphans:
        b.element(el)


def _intervals(links: Links) -> dict[TaskNode, tuple[dt.datetime | None, dt.datetime | None]]:
    """Each task's PROV interval: its span's start and end, widened to cover the times of the
    elements it generated or was given. PROV-CONSTRAINTS wants a generation or usage within its
    activity; a task records some outputs after its span ended (a model saved once ``fit`` has
    returned is still the training's output), so its activity lasts until its last output."""
    out: dict[TaskNode, tuple[dt.datetime | None, dt.datetime | None]] = {}
    for t in links.tasks:
        start, end = t.start, t.end
        times = [el.emitted_at for el in (*links.made.get(t, []), *links.given.get(t, [])) if el.emitted_at]
        if times:
            if start is not None and min(times) < start:
                start = min(times)
            if end is not None and max(times) > end:
                end = max(times)
        out[t] = (start, end)
    return out


def _emit_tasks(
    b: DocumentBuilder,
    ex: Execution,
    ordered: list[TaskNode],
    intervals: dict[TaskNode, tuple[dt.datetime | None, dt.datetime | None]],
) -> dict[TaskNode, Any]:
    per_dt: dict[str, int] = defaultdict(int)
    for t in ordered:
        per_dt[t.dt_tag] += 1
    idents: dict[TaskNode, Any] = {}
    for t in ordered:
        r = t.task
        trace = r.trace_id or ex.trace_id or ex.tag
        idents[t] = ident = b.ident("task", trace, r.span_id or f"{t.dt_tag}.{t.id}")
        label = t.dt_tag if per_dt[t.dt_tag] == 1 else f"{t.dt_tag} · task {t.id}"
        start, end = intervals.get(t, (t.start, t.end))
        b.doc.activity(
            ident,
            utc(start),
            utc(end),
            [
                (PROV["type"], b.vocab("Task")),
                (PROV["label"], clean_text(label)),
                *b.attrs(
                    [
                        ("dt_tag", t.dt_tag),
                        ("task_id", t.id),
                        ("status", r.status),
                        ("duration", typed(r.duration)),
                        ("rank", int(r.rank) if r.rank is not None else None),
                        ("error", r.error),
                        # the span's own end, when outputs recorded after it widened the activity
                        ("span_end", utc(t.end) if end != t.end else None),
                    ]
                ),
            ],
        )
    return idents
