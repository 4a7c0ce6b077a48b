"""Tasks of the data steps and of the integrations: where they go, and their
transformations (added to the dataflow when it lacks them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dlprov_otel import pythonic
from dlprov_otel.api import Dataflow, DataSet, Task
from dlprov_otel.model import Attribute, AttributeType, Set, SetType, Transformation, predefined_transformations

from .._shared.context import resolve
from .._shared.rows import timestamp

DEFAULT_DATAFLOW = "keras"
DATA_TRANSFORMATIONS = ("loaddata", "splitdata")  # besides the user's own ones


def context(dataflow: str | None = None, execution: str | None = None) -> tuple[Dataflow, str]:
    """The dataflow and execution tag a new data step belongs to (see ``_shared.context``;
    the default dataflow is ``keras``)."""
    return resolve(dataflow, execution, default_dataflow=DEFAULT_DATAFLOW)


def _data_set(tag: str, role: SetType) -> Set:
    return Set(tag, role, [Attribute("data_name", AttributeType.TEXT, optional=True)])


def ensure_transformation(df: Dataflow, tag: str) -> Transformation:
    """The transformation ``tag`` of ``df``, added (and saved) if the dataflow lacks it.

    A predefined tag (``trainmodel``...) gets its predefined sets; any other tag gets an
    input set ``i<tag>`` and an output set ``o<tag>`` for data descriptions.
    """
    if tag in df.transformations:
        return df.transformations[tag]
    known = {t.tag: t for t in predefined_transformations()}
    if tag in known:
        t = known[tag]
        # reuse the dataflow's own Set objects where it has them (same attributes)
        t.inputs = [df.sets.get(s.tag, s) for s in t.inputs]
        t.outputs = [df.sets.get(s.tag, s) for s in t.outputs]
    else:
        t = Transformation(tag, [_data_set("i" + tag, SetType.INPUT)], [_data_set("o" + tag, SetType.OUTPUT)])
    df.add_transformation(t)
    df.save()
    return t


def new_task(df: Dataflow, exec_tag: str, transformation: str, depends_on: Iterable[Task] = ()) -> Task:
    """A task (not begun yet) with a process-unique id."""
    ensure_transformation(df, transformation)
    return Task(pythonic.next_task_id(), df, exec_tag, transformation, dependency=list(depends_on))


def record_adaptation(
    train: Task,
    number: int,
    old: float | None,
    new: float,
    epoch: int | None,
    trigger: str,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """The ``number``-th learning-rate change of ``train``: an ``adaptation`` task depending
    on it, with ``iadaptation`` and ``oadaptation`` (``epoch``: the epoch whose end triggered it)."""
    adaptation_id = f"{train.id}-lr{number}"
    t = new_task(train.dataflow, train.exec_tag, "adaptation", [train])
    t.add_dataset(DataSet("iadaptation", [{"adaptation_id": adaptation_id, "trigger": trigger, "epoch": epoch}]))
    t.begin()
    row: dict[str, Any] = {
        "adaptation_id": adaptation_id,
        "new_learning_rate": new,
        "old_learning_rate": old,
        "epoch": epoch,
        "trigger": trigger,
        "timestamp": timestamp(),
    }
    row.update(extra or {})
    t.add_dataset(DataSet("oadaptation", [row]))
    t.end()


__all__ = [
    "DATA_TRANSFORMATIONS",
    "DEFAULT_DATAFLOW",
    "context",
    "ensure_transformation",
    "new_task",
    "record_adaptation",
]
