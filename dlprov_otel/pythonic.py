"""A Pythonic API over the same model: context managers and a decorator.

::

    with dlprov_otel.execution("run-1", dataflow="mnist"):
        with dlprov_otel.task("trainmodel", inputs={"itrainmodel": {...}}) as t:
            t.output("otrainmodel", loss=0.3, epoch=1)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from . import tracing
from .api import Dataflow, DataSet, Element, Task
from .recorder import _WARM_CALLS

_task_counter = 0
_WARM_SET = "\x00"  # no set is named so
F = TypeVar("F", bound=Callable[..., Any])
default_execution_tag = tracing.default_execution_tag
current_execution_tag = tracing.current_execution_tag
current_execution = tracing.current_execution


def dataflow(tag: str, predefined: bool = True) -> Dataflow:
    """The dataflow ``tag`` defined in this process, or a new one (saved)."""
    try:
        df = tracing.lookup_dataflow(tag)
    except Exception:
        df = Dataflow(tag, predefined=predefined)
    if df.dirty:
        df.save()
    return df


# `execution()` and `task()` take a parameter named `dataflow`, which hides the function
_dataflow = dataflow


@contextmanager
def execution(
    tag: str | None = None, dataflow: str | Dataflow = "mnist", predefined: bool = True, name: str | None = None
) -> Iterator[tracing.Execution]:
    """Run the block as one execution (a trace); FAILED if it raises. ``tag`` defaults to
    ``<dataflow>-<date>-<time>-<hex>``; ``name`` (default ``$DLPROV_RUN_NAME``) names the run
    for ``--execution NAME``."""
    df = dataflow if isinstance(dataflow, Dataflow) else _dataflow(dataflow, predefined)
    if df.dirty:
        df.save()
    ex = tracing.execution_for(tag or default_execution_tag(df.tag), df.tag, name)
    token = tracing.CURRENT_EXECUTION.set(ex)
    try:
        yield ex
    except BaseException as exc:
        ex.end(error=exc)
        raise
    finally:
        tracing.CURRENT_EXECUTION.reset(token)
        ex.end()


class TaskScope:
    """A task opened by :func:`task`: record inputs and outputs as they happen."""

    def __init__(self, task: Task) -> None:
        self.task = task

    def _emit(self, set_tag: str, rows: Any, values: Mapping[str, Any]) -> None:
        if rows is None and values and self.task.record_row(set_tag, values):
            return  # one plain row of a running task: the hot path
        if rows is None:
            rows = [dict(values)]
        elif isinstance(rows, Mapping | Element) or (
            isinstance(rows, list | tuple) and rows and not isinstance(rows[0], list | tuple | Mapping | Element)
        ):
            rows = [rows]
        self.task.add_dataset(DataSet(set_tag, rows))
        self.task.save()

    def input(self, set_tag: str, rows: Any = None, **values: Any) -> None:
        """Record elements of an input set (a mapping, a list of values, or keywords)."""
        self._emit(set_tag, rows, values)

    def output(self, set_tag: str, rows: Any = None, **values: Any) -> None:
        """Record elements of an output set."""
        if rows is None and values:  # one plain row of a running task: the hot path
            record = self.task._rows.get(set_tag)
            if (record is not None and record(values)) or self.task.record_row(set_tag, values):
                return
        self._emit(set_tag, rows, values)

    @property
    def id(self) -> str:
        return self.task.id


_warm = False


def _warm_output(scope: TaskScope) -> None:
    """Call ``scope.output`` as many times as CPython 3.11 waits before it specializes a
    function's bytecode (see ``recorder._WARM_CALLS``), for a set no dataflow has, whose rows a
    recorder that does nothing takes: a training loop may call it only once per epoch."""
    global _warm
    _warm = True
    rows = scope.task._rows
    rows[_WARM_SET] = _accept
    try:
        for _ in range(_WARM_CALLS):
            scope.output(_WARM_SET, w=None)
    finally:
        del rows[_WARM_SET]


def _accept(values: Mapping[str, Any]) -> bool:
    return True


def next_task_id() -> int:
    global _task_counter
    _task_counter += 1
    return _task_counter


@contextmanager
def task(
    transformation: str,
    *,
    dataflow: str | Dataflow | None = None,
    execution_tag: str | None = None,
    id: Any = None,
    depends_on: Any = None,
    inputs: Mapping[str, Any] | None = None,
) -> Iterator[TaskScope]:
    """Run the block as a task of ``transformation``; FAILED if it raises."""
    ex = tracing.CURRENT_EXECUTION.get()
    df_tag = dataflow if dataflow is not None else (ex.dataflow if ex else "mnist")
    df = _dataflow(getattr(df_tag, "tag", df_tag)) if not isinstance(df_tag, Dataflow) else df_tag
    t = Task(
        id if id is not None else next_task_id(),
        df,
        execution_tag or (ex.tag if ex else None),
        transformation,
        dependency=depends_on,
    )
    for set_tag, rows in (inputs or {}).items():
        t.add_dataset(DataSet(set_tag, [rows] if isinstance(rows, Mapping) else rows))
    t.begin()
    t.prepare_rows()
    scope = TaskScope(t)
    if not _warm:
        _warm_output(scope)
    try:
        yield scope
    except BaseException as exc:
        t.end(error=exc)
        raise
    t.end()


def step(transformation: str, *, dataflow: str | Dataflow | None = None) -> Callable[[F], F]:
    """Decorator: each call of the function is a task of ``transformation``."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            with task(transformation, dataflow=dataflow):
                return fn(*args, **kwargs)

        return inner  # type: ignore[return-value]

    return wrap
