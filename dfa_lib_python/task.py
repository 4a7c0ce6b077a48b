"""``Task``: a task of a transformation in one execution (begin, save, end).

Both published forms work::

    Task(1, dataflow_tag, "TrainModel")                       # DfAnalyzer: (id, dataflow, transformation)
    Task(1, dataflow_tag, exec_tag, "TrainModel", dependency=t0)   # DLProv: (id, dataflow, execution, transformation)

The third argument is the transformation when it names one of the dataflow's transformations
and the fourth does not (the fourth is then the original's ``sub_id``); otherwise it is the
execution tag. Without an execution tag, the task joins the execution in scope, or the one this
process runs for the dataflow.
"""

from __future__ import annotations

from typing import Any

from dlprov_otel import api, model, tracing
from dlprov_otel.errors import DLProvError

from .dataset import DataSet
from .dependency import Dependency
from .element import Element
from .task_status import TaskStatus

_UNSET: Any = object()


def _names_transformation(df: model.Dataflow | None, value: Any) -> bool:
    if isinstance(value, model.Transformation):
        return True
    if df is None or not isinstance(value, str):
        return False
    try:
        df.transformation(value)
    except DLProvError:
        return False
    return True


class Task(api.Task):
    """A task: ``begin()``, ``save()`` after each batch of datasets, ``end()`` at the end."""

    def __init__(
        self,
        id: Any,
        dataflow_tag: Any,
        exec_tag: Any = _UNSET,
        transformation_tag: Any = _UNSET,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        try:
            df: model.Dataflow | None = tracing.lookup_dataflow(dataflow_tag)
        except DLProvError:
            df = None  # api.Task says what is missing
        if transformation_tag is _UNSET:  # Task(id, dataflow, transformation[, sub_id=..., dependency=...])
            exec_tag, transformation_tag = kwargs.pop("exec_tag", None), exec_tag
        elif exec_tag is not _UNSET and _names_transformation(df, exec_tag) and not _names_transformation(
            df, transformation_tag
        ):  # the original's Task(id, dataflow, transformation, sub_id, ...)
            args = (transformation_tag, *args)
            exec_tag, transformation_tag = kwargs.pop("exec_tag", None), exec_tag
        if transformation_tag is _UNSET:
            raise TypeError("Task needs a transformation tag: Task(id, dataflow_tag, [exec_tag,] transformation_tag)")
        self._requested: TaskStatus | None = None
        super().__init__(id, dataflow_tag, exec_tag, transformation_tag, *args, **kwargs)

    def add_dependency(self, dependency: Any) -> None:
        """Depend on a Task, a task id, or a :class:`Dependency` (transformation tags and ids)."""
        if not isinstance(dependency, Dependency):
            super().add_dependency(dependency)
            return
        for task_id, tag in dependency.pairs():
            super().add_dependency(task_id)
            last = self.dependencies[-1]
            if isinstance(last, tuple) and tag:  # a task of another process: keep its transformation
                self.dependencies[-1] = (last[0], model.normalize_tag(tag, "transformation tag"))

    def set_status(self, status: TaskStatus) -> None:
        """Set the status the next ``save()`` records: FINISHED or FAILED ends the task there."""
        if not isinstance(status, TaskStatus):
            raise TypeError(f"set_status takes a TaskStatus, got {status!r}")
        self._requested = status

    def save(self) -> None:
        requested, self._requested = self._requested, None
        if requested is TaskStatus.FINISHED:
            self.end()
        elif requested is TaskStatus.FAILED:
            self.end(error=self.error or "FAILED")
        else:
            super().save()


def start_task(task_id: Any, dataflow_tag: str, label: str, in_elements: list[Any]) -> tuple[Task, DataSet]:
    """The original's helper: a task of ``label`` begun with one-value elements of ``i<label>``."""
    t = Task(task_id, dataflow_tag, label)
    t_input = DataSet(f"i{label}", [Element([v]) for v in in_elements])
    t.add_dataset(t_input)
    t.begin()
    return t, t_input


def end_task(task: Task, label: str, out_elements: list[Any]) -> DataSet:
    """The original's helper: end ``task`` with one-value elements of ``o<label>``."""
    t_output = DataSet(f"o{label}", [Element([v]) for v in out_elements])
    task.add_dataset(t_output)
    task.end()
    return t_output


__all__ = ["Task", "end_task", "start_task"]
