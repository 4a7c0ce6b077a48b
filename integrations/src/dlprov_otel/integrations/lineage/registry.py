"""Which task of an execution produced which data (by content digest).

Entries are kept for the executions still open: when a task of a new execution is
registered, those of ended executions are dropped, so the registry does not grow with the
number of runs in a process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from dlprov_otel import tracing
from dlprov_otel.api import DataSet, Task
from dlprov_otel.model import SetType

from .describe import ref

_lock = threading.Lock()
_producers: dict[tuple[str, str], Task] = {}  # (execution, digest) -> task that output it
_outputs: set[tuple[str, str, str]] = set()  # (execution, set, digest) already emitted as output
_last_data_task: dict[str, Task] = {}  # execution -> latest load/split/transform task
_executions: set[str] = set()  # executions with entries


def _key(row: Mapping[str, Any]) -> str | None:
    return row.get("sha256") or row.get("fingerprint")


def _track(exec_tag: str) -> None:
    """Note an execution with entries; forget those of executions that have ended (lock held)."""
    if exec_tag in _executions:
        return
    open_tags = {ex.tag for ex in tracing.open_executions()} | {exec_tag}
    ended = _executions - open_tags
    if ended:
        for key in [k for k in _producers if k[0] in ended]:
            del _producers[key]
        _outputs.difference_update({k for k in _outputs if k[0] in ended})
        for tag in ended:
            _last_data_task.pop(tag, None)
        _executions.difference_update(ended)
    _executions.add(exec_tag)


def producers(exec_tag: str, rows: Iterable[Mapping[str, Any]]) -> list[Task]:
    """Tasks of this execution that output the data described by ``rows``."""
    found: list[Task] = []
    with _lock:
        for row in rows:
            t = _producers.get((exec_tag, _key(row) or ""))
            if t is not None and t not in found:
                found.append(t)
    return found


def last_data_task(exec_tag: str) -> Task | None:
    with _lock:
        return _last_data_task.get(exec_tag)


def dependencies(exec_tag: str, rows: Iterable[Mapping[str, Any]]) -> list[Task]:
    """Producers of the data, else the latest data task of the execution."""
    deps = producers(exec_tag, rows)
    if not deps:
        last = last_data_task(exec_tag)
        deps = [last] if last is not None else []
    return deps


def was_output(exec_tag: str, set_tag: str, row: Mapping[str, Any]) -> bool:
    """True when these very data were already emitted as an output of ``set_tag``."""
    key = _key(row)
    with _lock:
        return key is not None and (exec_tag, set_tag, key) in _outputs


def emit(task: Task, set_tag: str, rows: list[dict[str, Any]], file_attr: str | None = None) -> None:
    """Add ``rows`` (data descriptions) to ``task`` as elements of ``set_tag`` and save.

    ``file_attr`` names the set's FILE attribute, filled with :func:`ref`. Outputs are
    registered, so later steps that receive these data depend on ``task``.
    """
    if not rows:
        return
    elements = []
    for row in rows:
        values = {k: v for k, v in row.items() if k != "path"}
        if file_attr:
            values[file_attr] = ref(row)
        elements.append(values)
    task.add_dataset(DataSet(set_tag, elements))
    task.save()
    if task.transformation.role_of(set_tag) is SetType.OUTPUT:
        with _lock:
            _track(task.exec_tag)
            for row in rows:
                key = _key(row)
                if key:
                    _producers[(task.exec_tag, key)] = task
                    _outputs.add((task.exec_tag, set_tag, key))


def mark_data_task(task: Task) -> None:
    """``task`` is the latest data step of its execution."""
    with _lock:
        _track(task.exec_tag)
        _last_data_task[task.exec_tag] = task


def tracked_executions() -> set[str]:
    """Executions the registry holds entries for."""
    with _lock:
        return set(_executions)


__all__ = ["dependencies", "emit", "last_data_task", "mark_data_task", "producers", "tracked_executions", "was_output"]
