"""The DfAnalyzer API (``Task``, ``DataSet``, ``Element``) on OpenTelemetry spans.

The seed's code runs unchanged::

    df = Dataflow("mnist", predefined=True); df.save()
    t1 = Task(1, "mnist", exec_tag, "TrainModel")
    t1.add_dataset(DataSet("iTrainModel", [Element([opt, lr, epochs, layers])]))
    t1.begin()
    t1.add_dataset(DataSet("oTrainModel", [Element([...])]))
    t1.save()   # or t1.end() after the last epoch
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import model, semconv, tracing
from .errors import DLProvError, ElementError, SpecError
from .model import Attribute, AttributeType, Set, SetType, Transformation, known_tags, normalize_tag
from .recorder import RowPlan
from .values import coerce, infer_type

logger = logging.getLogger(__name__)


class Dataflow(model.Dataflow):
    """The prospective provenance of the DfAnalyzer API: :class:`dlprov_otel.model.Dataflow`
    (pure data) plus ``save()``, which records it as a span."""

    def save(self) -> None:
        """Record this dataflow (a new version if it changed since it was saved)."""
        tracing.emit_dataflow(self)


class Element:
    """One row of a dataset: positional values in the set's attribute order, or a mapping."""

    __slots__ = ("values",)

    def __init__(self, values: Sequence[Any] | Mapping[str, Any] | None = None, **named: Any) -> None:
        if values is None:
            values = {}
        if isinstance(values, Mapping):
            merged = dict(values)
            merged.update(named)
            self.values: Sequence[Any] | dict[str, Any] = merged
        elif named:
            raise ElementError("give an Element either positional values or named values, not both")
        elif isinstance(values, str | bytes):
            raise ElementError(f"Element expects a list of values, got the string {values!r}")
        else:
            self.values = list(values)

    def __repr__(self) -> str:
        return f"Element({self.values!r})"


class DataSet:
    """Elements of one set, as a task reads or produces them."""

    __slots__ = ("elements", "tag")

    def __init__(self, tag: str, elements: Iterable[Element | Sequence[Any] | Mapping[str, Any]] = ()) -> None:
        self.tag = normalize_tag(tag, "set tag")
        if isinstance(elements, Element):
            elements = [elements]
        self.elements = [e if isinstance(e, Element) else Element(e) for e in elements]

    def add_element(self, element: Element | Sequence[Any] | Mapping[str, Any]) -> None:
        self.elements.append(element if isinstance(element, Element) else Element(element))

    def __repr__(self) -> str:
        return f"DataSet({self.tag!r}, {len(self.elements)} elements)"


def _plan(set_def: Set) -> tuple[tuple[str, ...], dict[str, AttributeType], int, frozenset[str]]:
    """(names, types, required count, optional names) of a set, cached until it changes."""
    declared = set_def.attributes
    key = (id(declared), len(declared))
    cached = set_def.__dict__.get("_dlprov_plan")
    if cached is not None and cached[0] == key:
        return cached[1]
    plan = (
        tuple(a.name for a in declared),
        {a.name: a.type for a in declared},
        sum(1 for a in declared if not a.optional),
        frozenset(a.name for a in declared if a.optional),
    )
    set_def.__dict__["_dlprov_plan"] = (key, plan)
    return plan


def dataset_attributes(set_def: Set, role: SetType, elements: Sequence[Element]) -> dict[str, Any]:
    """Span attributes of one dataset emission: names, types and one value list per attribute."""
    names, declared_types, required, optional = _plan(set_def)
    columns: dict[str, list[Any]] = {name: [] for name in names}
    types = dict(declared_types)
    tag = set_def.tag
    for n, element in enumerate(elements):
        values = element.values
        if isinstance(values, dict):
            row: dict[str, Any] = {}
            for key, value in values.items():
                norm = known_tags.get(key)  # checked before: skip building the error context
                row[norm if norm is not None else normalize_tag(key, f"attribute name in set {tag!r}")] = value
            missing = [name for name in names if name not in optional and name not in row]
            if missing:
                raise ElementError(f"set {tag!r}: element {n} lacks required attribute(s) {missing}")
        else:
            if not required <= len(values) <= len(names):
                want = str(len(names)) if required == len(names) else f"{required} to {len(names)}"
                raise ElementError(
                    f"set {tag!r} takes {want} values ({', '.join(names)}), element {n} has {len(values)}"
                )
            row = dict(zip(names, values, strict=False))
        for name, value in row.items():
            column = columns.get(name)
            if column is None:
                if value is None:
                    continue  # an undeclared attribute gets its column (and type) from a value
                # an attribute the spec does not declare
                if name in semconv.RESERVED_COLUMNS:
                    raise SpecError(f"attribute name {name!r} is reserved")
                types[name] = infer_type(value)
                column = columns[name] = [None] * n
            column.append(coerce(value, types[name], set_tag=tag, attribute=name))
        for col in columns.values():
            if len(col) == n:
                col.append(None)
    if len(columns) > len(names):
        _declare(set_def, [(name, types[name]) for name in columns if name not in declared_types])
    attrs: dict[str, Any] = {
        semconv.KIND: semconv.KIND_DATASET,
        semconv.DATASET_TAG: tag,
        semconv.DATASET_ROLE: role.value,
        semconv.DATASET_ELEMENTS: len(elements),
        semconv.DATASET_ATTRIBUTES: list(columns),
        semconv.DATASET_TYPES: [_TYPE_VALUES[types[name]] for name in columns],
    }
    data_key = semconv.data_key
    for name, col in columns.items():
        attrs[data_key(name)] = col
    return attrs


def _declare(set_def: Set, found: list[tuple[str, AttributeType]]) -> None:
    """Add attributes found in elements to the set's specification (optional, with the type of
    their first value): a dataflow's columns change only through its specification, so the
    caller records the new version before the first row that carries them."""
    for name, attribute_type in found:
        set_def.add_attribute(Attribute(name, attribute_type, optional=True))


_TYPE_VALUES = {t: t.value for t in AttributeType}
_BIG = 2**53  # ints beyond this take the general path (exact float, or its error)
_NONE = type(None)


def _row_check(kinds: tuple[type, ...], numeric: tuple[bool, ...]) -> tuple[tuple[int, ...], tuple[int, ...]] | bool:
    """For a row whose values have these types: (positions of ints to range-check, of strings
    to check for NUL), or False when the row must take the general path."""
    ints, strs = [], []
    for i, (kind, num) in enumerate(zip(kinds, numeric, strict=True)):
        if kind is _NONE or (kind is float and num):
            continue
        if kind is int and num:
            ints.append(i)
        elif kind is str and not num:
            strs.append(i)
        else:
            return False
    return tuple(ints), tuple(strs)


_task_lock = threading.Lock()
# (execution, id) -> task, to resolve dependencies given by id; weak, so finished tasks
# that the script dropped (and their spans) are not kept alive for the whole process
_tasks_by_id: weakref.WeakValueDictionary[tuple[str, str], Task] = weakref.WeakValueDictionary()


class Task:
    """A task of a transformation in one execution: begin, save (any number of times), end."""

    def __init__(
        self,
        id: Any,
        dataflow_tag: str | Dataflow,
        exec_tag: Any = None,
        transformation_tag: str | Transformation | None = None,
        sub_id: str = "",
        dependency: Any = None,
        workspace: str = "",
        resource: str = "",
        output: str = "",
        error: str = "",
    ) -> None:
        self.dataflow = tracing.lookup_dataflow(dataflow_tag)
        if transformation_tag is None:
            raise SpecError("Task needs a transformation tag")
        dt_tag = getattr(transformation_tag, "tag", transformation_tag)
        self.transformation = self.dataflow.transformation(dt_tag)
        if self.dataflow.dirty:
            # the transformation was added after save(): record the new version now rather
            # than silently storing rows of an unknown transformation
            tracing.emit_dataflow(self.dataflow)
        self.id = f"{id}{sub_id}" if sub_id else str(id)
        if exec_tag is None:
            exec_tag = tracing.current_execution_tag(self.dataflow.tag)
        self.exec_tag = str(exec_tag)
        self.status = semconv.READY
        self.dependencies: list[Task | tuple[str, str]] = []
        for dep in _as_list(dependency):
            self.add_dependency(dep)
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._span = None
        self._ctx = None
        self._common: dict[str, Any] = {}
        self._fast: dict[str, tuple] = {}  # set tag -> plan of record_row
        self._rows: dict[str, Any] = {}  # set tag -> its row recorder (while rows may take it)
        self.error = error or None
        with _task_lock:
            _tasks_by_id[(self.exec_tag, self.id)] = self

    # -- building ---------------------------------------------------------------------------
    def add_dependency(self, dependency: Any) -> None:
        """Depend on another task (a Task, or its id within this execution)."""
        if isinstance(dependency, Task):
            self.dependencies.append(dependency)
            return
        dep_id = str(getattr(dependency, "id", dependency))
        with _task_lock:
            known = _tasks_by_id.get((self.exec_tag, dep_id))
        self.dependencies.append(known if known is not None else (dep_id, ""))

    def add_dataset(self, dataset: DataSet) -> None:
        """Queue a dataset; it is recorded at the next begin(), save() or end()."""
        self._rows.clear()  # rows wait for the queued datasets: the general path until then
        if self.status in (semconv.FINISHED, semconv.FAILED):
            raise DLProvError(f"task {self.id!r} ({self.transformation.tag}) has ended; start a new task")
        set_def = self.dataflow.set(dataset.tag)
        role = self.transformation.role_of(set_def.tag)
        if role is None:
            raise SpecError(
                f"set {set_def.tag!r} is neither an input nor an output of transformation "
                f"{self.transformation.tag!r} (inputs: {[s.tag for s in self.transformation.inputs]}, "
                f"outputs: {[s.tag for s in self.transformation.outputs]})"
            )
        # validated and converted now, so a wrong element fails where it is written and the
        # values are those of this moment
        known = len(set_def.attributes)
        self._pending.append((set_def.tag, dataset_attributes(set_def, role, dataset.elements)))
        fast = self._fast.get(set_def.tag)
        if len(set_def.attributes) != known or (fast is not None and len(fast[0]) != known):
            self._declared(set_def.tag)

    def set_datasets(self, datasets: Iterable[DataSet]) -> None:
        for d in datasets:
            self.add_dataset(d)

    # -- life cycle -------------------------------------------------------------------------
    def begin(self) -> Task:
        """Start the task (RUNNING) and record the datasets added so far."""
        if self._span is None:
            execution = tracing.execution_for(self.exec_tag, self.dataflow.tag)
            deps = []
            for d in self.dependencies:
                if isinstance(d, Task):
                    deps.append((d.id, d.transformation.tag, d._span))
                else:
                    deps.append((d[0], d[1], None))
            self._span, self._ctx, self._common = tracing.start_task_span(
                execution, self.transformation.tag, self.id, deps
            )
            self.status = semconv.RUNNING
        self._flush()
        return self

    def prepare_rows(self) -> None:
        """Bind the row recorder of each output set of a running task now (its plan journalled
        once), so that the first ``t.output`` of a set costs what the later ones do."""
        if self._pending or self.status is not semconv.RUNNING:
            return
        for set_def in self.transformation.outputs:
            if set_def.tag not in self._rows:
                try:
                    self._row_recorder(set_def.tag)
                except Exception:  # an optimisation only: the first row then binds it
                    logger.debug("DLProv: rows of %s not prepared", set_def.tag, exc_info=True)

    def record_row(self, set_tag: str, values: Mapping[str, Any]) -> bool:
        """The hot path of a running task: one element given by name, of plain values (floats,
        ints, strings, None) for attributes the set declares. Recorded at once, exactly as
        ``add_dataset`` + ``save`` would record it (the journal takes the values only; the span
        is built off this thread); False (nothing done) for anything else, which then takes
        the general path with its checks and messages."""
        record = self._rows.get(set_tag)
        if record is not None:
            done = record(values)
            if done is not None:
                return done
            del self._rows[set_tag]  # another pipeline since: bind again
        if self._pending or self.status is not semconv.RUNNING:
            return False
        record = self._row_recorder(set_tag)
        if record is None:
            return False
        done = record(values)
        return bool(done)

    def _row_recorder(self, set_tag: str) -> Any:
        """The recorder of plain rows of ``set_tag`` (``Recorder.row_recorder``), bound to the
        current pipeline; None where rows take the general path (an instrumentor's own
        provider, a set this task does not write)."""
        if self._span is None or tracing._provider_tracer is not None:
            return None
        fast = self._fast.get(set_tag)
        if fast is None:
            try:
                set_def = self.dataflow.set(set_tag)
            except SpecError:
                return None
            role = self.transformation.role_of(set_def.tag)
            if role is None or set_def.tag != set_tag:
                return None
            names, types, _, optional = _plan(set_def)
            head = {
                semconv.KIND: semconv.KIND_DATASET,
                semconv.DATASET_TAG: set_def.tag,
                semconv.DATASET_ROLE: role.value,
                semconv.DATASET_ELEMENTS: 1,
                semconv.DATASET_ATTRIBUTES: list(names),
                semconv.DATASET_TYPES: [_TYPE_VALUES[types[n]] for n in names],
                **self._common,
            }
            numeric = tuple(types[n] is AttributeType.NUMERIC for n in names)
            plan = RowPlan(set_tag, head, tuple(semconv.data_key(n) for n in names), numeric)
            fast = self._fast[set_tag] = (
                names,
                plan,
                frozenset(names),
                frozenset(n for n in names if n not in optional),
            )
        names, plan, allowed, required = fast
        recorder = tracing.telemetry().recorder
        record = recorder.row_recorder(
            self._span.get_span_context(),
            plan,
            names,
            allowed,
            required,
            _row_check,
            tracing,
            tracing._state,
            slot=(self._rows, set_tag),
        )
        self._rows[set_tag] = record
        return record

    def save(self) -> None:
        """Record the datasets added since the last call; the task keeps running."""
        if self._span is None:
            self.begin()
        else:
            self._flush()

    def end(self, error: BaseException | str | None = None) -> None:
        """Record the remaining datasets and finish the task (FAILED when ``error`` is given)."""
        if self.status in (semconv.FINISHED, semconv.FAILED):
            return
        self._rows.clear()
        if self._span is None:
            self.begin()
        else:
            self._flush()
        from opentelemetry.trace import Status, StatusCode

        error = error or self.error
        self.status = semconv.FAILED if error else semconv.FINISHED
        assert self._span is not None
        self._span.set_attribute(semconv.TASK_STATUS, self.status)
        if error:
            text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
            self._span.set_attribute(semconv.TASK_ERROR, text)
            self._span.set_status(Status(StatusCode.ERROR, text))
            if isinstance(error, BaseException):
                self._span.record_exception(error)
        self._span.end()

    def add_late_dataset(self, dataset: DataSet) -> None:
        """Record a dataset of a task that has ended (a model saved after its training
        returned): a span under the task like its other datasets; the task stays ended."""
        if self._span is None:
            raise DLProvError(f"task {self.id!r} ({self.transformation.tag}) has not begun")
        set_def = self.dataflow.set(dataset.tag)
        role = self.transformation.role_of(set_def.tag)
        if role is None:
            raise SpecError(f"set {set_def.tag!r} is not a set of transformation {self.transformation.tag!r}")
        known = len(set_def.attributes)
        attrs = dataset_attributes(set_def, role, dataset.elements)
        if len(set_def.attributes) != known:
            self._declared(set_def.tag)
        attrs.update(self._common)
        tracing.emit_dataset_span(self._ctx, set_def.tag, attrs)

    def fail(self, error: BaseException | str) -> None:
        """End the task as FAILED with ``error``."""
        self.end(error=error)

    def _declared(self, set_tag: str) -> None:
        """A set gained attributes (or this task's row plan predates that): record the new
        version of the dataflow now, before the rows that carry them."""
        self._fast.pop(set_tag, None)
        if self.dataflow.dirty:
            tracing.emit_dataflow(self.dataflow)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        for set_tag, attrs in pending:
            attrs.update(self._common)
            tracing.emit_dataset_span(self._ctx, set_tag, attrs)

    # -- context manager --------------------------------------------------------------------
    def __enter__(self) -> Task:
        return self.begin()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.end(error=exc)

    def __repr__(self) -> str:
        return (
            f"Task({self.id!r}, {self.dataflow.tag!r}, {self.exec_tag!r}, {self.transformation.tag!r}, {self.status})"
        )


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple | set):
        return list(value)
    return [value]


__all__ = [
    "Attribute",
    "AttributeType",
    "DataSet",
    "Dataflow",
    "Element",
    "Set",
    "SetType",
    "Task",
    "Transformation",
]
