"""The plain objects the read model (:mod:`.readmodel`) returns: rows of the catalog and of
set relations, as dataclasses."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..model import DataflowSpec
from . import schema as S


@dataclass(frozen=True)
class Dataflow:
    """A row of ``dataflow``: a dataflow and its newest version."""

    tag: str
    version: int
    spec_hash: str | None
    created_at: dt.datetime | None
    updated_at: dt.datetime | None


@dataclass(frozen=True)
class DataflowVersion:
    """One stored version of a dataflow's specification."""

    dataflow_tag: str
    version: int
    spec_hash: str
    created_at: dt.datetime | None
    spec: DataflowSpec | None  # None when the stored text cannot be read


@dataclass(frozen=True)
class DataflowRuns:
    """How often a dataflow ran, and when last."""

    executions: int
    last_run: dt.datetime | None


@dataclass(frozen=True)
class Attribute:
    """An attribute of a set as stored (declared in the spec, or observed in data)."""

    ds_tag: str
    name: str
    type: str
    ordinal: int
    optional: bool | None
    declared: bool | None


@dataclass(frozen=True)
class DataDependency:
    ds_tag: str
    previous_dt_tag: str | None
    next_dt_tag: str | None


@dataclass(frozen=True)
class Execution:
    """An execution (one run) as the catalog records it."""

    tag: str
    dataflow_tag: str | None
    status: str | None
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    scientist: str | None
    hardware_id: str | None
    service_name: str | None
    trace_id: str | None
    span_id: str | None
    world_size: int | None
    error: str | None
    name: str | None = None  # DLPROV_RUN_NAME / execution(name=...); a store made before has no column


@dataclass(frozen=True)
class ExecutionSummary:
    """What ``dlprov executions`` and the collector's ``/v1/executions`` list per run."""

    tag: str
    dataflow_tag: str | None
    status: str | None
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    scientist: str | None
    tasks: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


SUMMARY_COLUMNS = [f.name for f in fields(ExecutionSummary)]


@dataclass(frozen=True)
class Hardware:
    """A machine an execution (or one of its processes) ran on."""

    id: str | None
    host_name: str | None = None
    arch: str | None = None
    os: str | None = None
    cpu_model: str | None = None
    cpu_count: int | None = None
    memory_bytes: int | None = None
    gpus: str | None = None  # JSON list
    container: str | None = None

    def gpu_list(self) -> list[Any]:
        try:
            return json.loads(self.gpus) if self.gpus else []
        except (TypeError, ValueError):
            return [self.gpus]


@dataclass(frozen=True)
class Process:
    """One process (rank) of an execution, with the host it ran on."""

    execution_tag: str
    trace_id: str | None
    rank: int | None
    pid: int | None
    started_at: dt.datetime | None
    host_name: str | None


@dataclass(frozen=True)
class Task:
    """A row of ``task``."""

    id: str
    execution_tag: str
    dataflow_tag: str | None
    dt_tag: str
    status: str | None
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    duration: float | None
    rank: int | None
    trace_id: str | None
    span_id: str | None
    error: str | None


@dataclass(frozen=True)
class TaskDependency:
    execution_tag: str
    task_id: str
    dt_tag: str | None
    depends_on_task_id: str
    depends_on_dt_tag: str | None


@dataclass(eq=False)
class Element:
    """A row of a set relation: its provenance columns and attribute values."""

    set_tag: str
    values: dict[str, Any] = field(default_factory=dict)

    def get(self, column: str) -> Any:
        return self.values.get(column)

    @property
    def execution_tag(self) -> str | None:
        return self.values.get(S.EXECUTION_TAG)

    @property
    def producer_task_id(self) -> Any:
        return self.values.get(S.PRODUCER_TASK_ID)

    @property
    def consumer_task_id(self) -> Any:
        return self.values.get(S.CONSUMER_TASK_ID)

    @property
    def task_id(self) -> Any:
        return self.values.get(S.TASK_ID)

    @property
    def emitted_at(self) -> dt.datetime | None:
        return self.values.get(S.EMITTED_AT)

    def attributes(self) -> list[tuple[str, Any]]:
        """The attribute values, in column order, without the provenance columns."""
        return [(c, v) for c, v in self.values.items() if c not in S.RESERVED_COLUMNS]


__all__ = [
    "SUMMARY_COLUMNS",
    "Attribute",
    "DataDependency",
    "Dataflow",
    "DataflowRuns",
    "DataflowVersion",
    "Element",
    "Execution",
    "ExecutionSummary",
    "Hardware",
    "Process",
    "Task",
    "TaskDependency",
]
