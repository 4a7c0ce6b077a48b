"""The lineage rule: which task made, was given, and used which elements of one execution.

Both the PROV builder and the dashboard's lineage drawing link tasks and elements with
:func:`link`, so the document and the drawing agree:

- an element belongs to the task named by its ``producer_task_id`` (it generated it) or else
  by its ``consumer_task_id`` (it was given it); when several tasks share the id, the one
  whose transformation makes (or takes) the element's set;
- a task whose transformation takes a set it was not given itself used the outputs of that
  set made by its *nearest* dependencies (transitively, through the stored task
  dependencies) whose transformation makes the set;
- of those outputs, a task that started after its dependency ended used all of them; a task
  that ran while its dependency was still producing (an adaptation during training) used the
  state at its start: the latest element emitted by then (or, if none, the first one emitted
  before it ended).

Task dependencies are stored when a task ends, so a running task has none yet.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..model import DataflowSpec
from .readmodel import Element, Task, TaskDependency

_FAR = dt.datetime.max


def order_key(value: object) -> tuple:
    """Task ids are strings; "10" must sort after "9"."""
    text = str(value)
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


@dataclass(eq=False)
class TaskNode:
    """A task of the execution with its resolved dependencies (identity-hashed)."""

    task: Task
    deps: list[TaskNode] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.task.id)

    @property
    def dt_tag(self) -> str:
        return self.task.dt_tag

    @property
    def start(self) -> dt.datetime | None:
        return self.task.start_time

    @property
    def end(self) -> dt.datetime | None:
        return self.task.end_time


@dataclass
class Links:
    """The tasks of executions and how their elements link to them (see :func:`link`)."""

    tasks: list[TaskNode]  # in a fixed order: start, spec order, id
    given: dict[TaskNode, list[Element]]  # inputs a task recorded itself (consumer_task_id)
    made: dict[TaskNode, list[Element]]  # outputs of a task (producer_task_id)
    orphans: list[Element]  # elements of no known task
    owner: dict[int, tuple[TaskNode, str]]  # id(element) -> (task, "input" | "output")
    used: dict[TaskNode, list[tuple[str, list[Element]]]]  # (set, outputs of dependencies) per task

    def outputs(self, task: TaskNode, set_tag: str) -> list[Element]:
        return [e for e in self.made.get(task, []) if e.set_tag == set_tag]


def link(
    spec: DataflowSpec | None,
    tasks: Iterable[Task],
    dependencies: Iterable[TaskDependency],
    elements: Iterable[Element],
) -> Links:
    """Apply the lineage rule to the tasks, dependencies and elements of executions."""
    spec_order = {t["tag"]: i for i, t in enumerate(spec.transformations)} if spec else {}
    nodes = sorted(
        (TaskNode(t) for t in tasks),
        key=lambda n: (n.start or _FAR, spec_order.get(n.dt_tag, 1 << 20), order_key(n.id), n.dt_tag),
    )
    by_id: dict[tuple[str, str], list[TaskNode]] = defaultdict(list)
    for n in nodes:
        by_id[(n.task.execution_tag, n.id)].append(n)
    for d in sorted(dependencies, key=lambda d: (order_key(d.depends_on_task_id), str(d.depends_on_dt_tag))):
        for n in by_id.get((d.execution_tag, str(d.task_id)), []):
            if d.dt_tag and n.dt_tag != d.dt_tag:
                continue
            for dep in by_id.get((d.execution_tag, str(d.depends_on_task_id)), []):
                if (not d.depends_on_dt_tag or dep.dt_tag == d.depends_on_dt_tag) and dep not in n.deps:
                    n.deps.append(dep)

    def owner(el: Element, task_id: object, role: str) -> TaskNode | None:
        if task_id is None:
            return None
        candidates = by_id.get((str(el.execution_tag), str(task_id)), [])
        for n in candidates:
            tr = spec.transformation(n.dt_tag) if spec else None
            if tr and el.set_tag in tr.get(role, []):
                return n
        return candidates[0] if candidates else None

    given: dict[TaskNode, list[Element]] = defaultdict(list)
    made: dict[TaskNode, list[Element]] = defaultdict(list)
    outputs: dict[tuple[TaskNode, str], list[Element]] = defaultdict(list)
    orphans: list[Element] = []
    owners: dict[int, tuple[TaskNode, str]] = {}
    for el in elements:
        producer = owner(el, el.producer_task_id, "output")
        consumer = owner(el, el.consumer_task_id, "input")
        if producer is not None:
            made[producer].append(el)
            outputs[(producer, el.set_tag)].append(el)
            owners[id(el)] = (producer, "output")
        elif consumer is not None:
            given[consumer].append(el)
            owners[id(el)] = (consumer, "input")
        else:
            orphans.append(el)
    _same_files(given, made)

    used: dict[TaskNode, list[tuple[str, list[Element]]]] = {}
    for n in nodes:
        tr = spec.transformation(n.dt_tag) if spec else None
        own_sets = {el.set_tag for el in given.get(n, [])}
        found = []
        for set_tag in tr.get("input", []) if tr else []:
            if set_tag in own_sets:
                continue  # the task recorded this input itself
            producers = set(spec.producers_of(set_tag)) if spec else set()
            found.append((set_tag, nearest_outputs(n, set_tag, producers, outputs)))
        used[n] = found
    return Links(nodes, given, made, orphans, owners, used)


def _same_files(given: dict[TaskNode, list[Element]], made: dict[TaskNode, list[Element]]) -> None:
    """A task given a file (its ``sha256``) that a task of these executions output in the
    same set used that very output (a model loaded after its training saved it)."""
    outputs = {(el.set_tag, el.get("sha256")): el for els in made.values() for el in els if el.get("sha256")}
    if not outputs:
        return
    for els in given.values():
        for i, el in enumerate(els):
            digest = el.get("sha256")
            if digest and (el.set_tag, digest) in outputs:
                els[i] = outputs[(el.set_tag, digest)]


def nearest_outputs(
    task: TaskNode,
    set_tag: str,
    producers: set[str],
    outputs: dict[tuple[TaskNode, str], list[Element]],
) -> list[Element]:
    """Output elements of ``set_tag`` made by the nearest dependencies (transitively) of
    ``task`` whose transformation produces that set, as far as ``task`` saw them."""
    seen = {id(task)}
    level = list(task.deps)
    while level:
        found: list[Element] = []
        for dep in level:
            if dep.dt_tag in producers:
                found.extend(visible(task, dep, outputs.get((dep, set_tag), [])))
        if found:
            return found
        nxt: list[TaskNode] = []
        for dep in level:
            if id(dep) in seen:
                continue
            seen.add(id(dep))
            nxt.extend(d for d in dep.deps if id(d) not in seen)
        level = nxt
    return []


def visible(task: TaskNode, dep: TaskNode, rows: Sequence[Element]) -> list[Element]:
    """What ``task`` can have used of ``dep``'s outputs ``rows`` (in emission order).

    A task that starts after its dependency ended used all of them. A task that ran while its
    dependency was still producing used the state at its start: the latest element emitted by
    then. This also keeps a 10,000-epoch run with many adaptations linear instead of
    epochs x adaptations.
    """
    if not rows or task.start is None or dep.end is None or task.start >= dep.end:
        return list(rows)
    before = [r for r in rows if r.emitted_at is not None and r.emitted_at <= task.start]
    if before:
        return [before[-1]]
    if task.end is not None:
        during = [r for r in rows if r.emitted_at is not None and r.emitted_at <= task.end]
        return during[:1]
    return list(rows[:1])


__all__ = ["Links", "TaskNode", "link", "nearest_outputs", "order_key", "visible"]
