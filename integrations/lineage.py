"""Data lineage for the integrations: describe the data a step reads or writes, and record
your own load, split and preprocessing steps as tasks of the dataflow.

::

    @load_data("digits", source="sklearn.datasets.load_digits")
    def load():
        d = load_digits()
        return d.images, d.target

    with split_data(ratio=0.25, inputs={"x": x, "y": y}) as s:
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25)
        s.train(x=x_tr, y=y_tr)
        s.test(x=x_te, y=y_te)

    @transform("normalize")          # a transformation of your own: inormalize -> onormalize
    def normalize(x):
        return x / 16.0

Each piece of data becomes one element with its shape, dtype, sample count and content
digest (sha256 of the array bytes; a cheap description for ``tf.data`` pipelines, which are
never iterated). Tasks are linked by those digests: a training that receives the arrays a
split produced depends on that split task. Provenance failures are logged once and never
reach the user's code.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from dlprov_otel import pythonic
from dlprov_otel.api import DataSet, Task
from dlprov_otel.model import (
    Attribute,
    AttributeType,
    Dataflow,
    Set,
    SetType,
    Transformation,
    predefined_transformations,
)

logger = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

DATAFLOW_ENV = "DLPROV_DATAFLOW"
DEFAULT_DATAFLOW = "keras"
DATA_TRANSFORMATIONS = ("loaddata", "splitdata")  # besides the user's own ones
_MAX_ITEMS = 64  # leaves described per structure (a list of 10,000 files is not 10,000 rows)


# --- logging once --------------------------------------------------------------------------
_logged: set[str] = set()


def log_once(where: str, exc: BaseException) -> None:
    """Log a provenance failure once per place; the training goes on."""
    if where in _logged:
        logger.debug("DLProv: %s failed again: %s", where, exc)
        return
    _logged.add(where)
    logger.warning(
        "DLProv: recording provenance (%s) failed; training is not affected: %s: %s",
        where,
        type(exc).__name__,
        exc,
        exc_info=logger.isEnabledFor(logging.DEBUG),
    )


def guarded(where: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``; on any error log it once and return ``None``."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        log_once(where, exc)
        return None


# --- where tasks go ------------------------------------------------------------------------
_defaults: dict[str, str | None] = {"dataflow": None, "execution": None}


def set_defaults(dataflow: str | None = None, execution: str | None = None) -> None:
    """Dataflow and execution for tasks recorded outside ``dlprov_otel.execution(...)``."""
    _defaults["dataflow"] = dataflow
    _defaults["execution"] = execution


def context(dataflow: str | None = None, execution: str | None = None) -> tuple[Dataflow, str]:
    """The dataflow and execution tag a new task belongs to.

    The execution opened with ``dlprov_otel.execution(...)`` wins; then the arguments; then
    the instrumentor's settings; then ``DLPROV_DATAFLOW`` (default ``keras``) and one
    execution per process.
    """
    ex = pythonic.current_execution()
    if ex is not None:
        return pythonic.dataflow(ex.dataflow), ex.tag
    tag = dataflow or _defaults["dataflow"] or os.environ.get(DATAFLOW_ENV) or DEFAULT_DATAFLOW
    df = pythonic.dataflow(tag)
    exec_tag = execution or _defaults["execution"] or pythonic.current_execution_tag(df.tag)
    return df, exec_tag


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
    return Task(pythonic._next_id(), df, exec_tag, transformation, dependency=list(depends_on))


# --- describing data -----------------------------------------------------------------------
def _is_tf_dataset(obj: Any) -> bool:
    return hasattr(obj, "element_spec") and type(obj).__module__.startswith("tensorflow")


def is_array(obj: Any) -> bool:
    """An array or tensor (has shape and dtype), not a ``tf.data`` pipeline."""
    return hasattr(obj, "shape") and hasattr(obj, "dtype") and not _is_tf_dataset(obj)


def _as_numpy(obj: Any) -> Any:
    import numpy as np

    if hasattr(obj, "to_numpy"):  # pandas
        return obj.to_numpy()
    if hasattr(obj, "detach"):  # torch
        return obj.detach().cpu().numpy()
    return np.asarray(obj)


def digest_array(arr: Any) -> str | None:
    """sha256 of an array's bytes in C order (``None`` for object arrays)."""
    import numpy as np

    a = np.ascontiguousarray(_as_numpy(arr))
    if a.dtype.hasobject:
        return None
    return hashlib.sha256(memoryview(a.reshape(-1)).cast("B")).hexdigest()


def _describe_array(name: str, obj: Any, digest: str | None = None, shape: Any = None) -> dict[str, Any]:
    shape = tuple(int(d) if d is not None else None for d in (obj.shape if shape is None else shape))
    row: dict[str, Any] = {
        "data_name": name,
        "kind": type(obj).__module__.split(".")[0] + "." + type(obj).__name__,
        "shape": str(shape),
        "dtype": str(getattr(obj.dtype, "name", obj.dtype)),
        "samples": shape[0] if shape else 1,
        "sha256": digest,
    }
    if digest is None:
        try:
            row["sha256"] = digest_array(obj)
        except Exception as exc:  # a symbolic tensor has no bytes: keep the description
            logger.debug("DLProv: no digest for %s: %s", name, exc)
    return row


def _describe_tf_dataset(name: str, ds: Any) -> dict[str, Any]:
    # Never iterate: the description comes from the static element spec and cardinality.
    spec = str(ds.element_spec)
    try:
        cardinality = int(ds.cardinality())
    except Exception:
        cardinality = -2
    return {
        "data_name": name,
        "kind": "tf.data." + type(ds).__name__,
        "shape": spec,
        "dtype": None,
        "samples": None,
        "sha256": None,
        "cardinality": float(cardinality) if cardinality >= 0 else None,
        "fingerprint": hashlib.sha256(f"{spec}|{cardinality}".encode()).hexdigest(),
    }


def leaves(obj: Any, name: str = "data") -> list[tuple[str, Any]]:
    """(name, piece) for each array, ``tf.data`` pipeline or other data object in a
    structure of tuples, lists and dicts (a list of plain numbers is one array)."""
    out: list[tuple[str, Any]] = []

    def walk(o: Any, n: str) -> None:
        if o is None or len(out) >= _MAX_ITEMS:
            return
        if _is_tf_dataset(o) or is_array(o):
            out.append((n, o))
        elif isinstance(o, Mapping):
            for k, v in o.items():
                walk(v, f"{n}.{k}")
        elif isinstance(o, list | tuple) and o:
            if all(x is None or is_array(x) or _is_tf_dataset(x) or isinstance(x, list | tuple | Mapping) for x in o):
                for i, v in enumerate(o):
                    walk(v, f"{n}[{i}]")
            else:
                import numpy as np

                out.append((n, np.asarray(o)))
        else:  # a generator, a PyDataset, a DataLoader
            out.append((n, o))

    walk(obj, name)
    return out


def _describe_other(name: str, obj: Any) -> dict[str, Any]:
    # a generator, a PyDataset, a DataLoader: its type and length, never its contents
    length = None
    try:
        length = len(obj)
    except Exception:
        pass
    kind = type(obj).__module__.split(".")[0] + "." + type(obj).__name__
    return {"data_name": name, "kind": kind, "shape": None, "dtype": None, "samples": length, "sha256": None}


def describe(obj: Any, name: str = "data") -> list[dict[str, Any]]:
    """Rows describing ``obj`` (an array, a tensor, a ``tf.data`` pipeline, or a tuple, list
    or dict of them): data_name, kind, shape, dtype, samples, sha256."""
    rows = []
    for n, piece in leaves(obj, name):
        if _is_tf_dataset(piece):
            rows.append(_describe_tf_dataset(n, piece))
        elif is_array(piece):
            rows.append(_describe_array(n, piece))
        else:
            rows.append(_describe_other(n, piece))
    return rows


def describe_split(
    obj: Any, name: str, split_at: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows for the arrays of ``obj`` whole and for their parts ``[:split_at]`` and
    ``[split_at:]``.

    Hashes every byte once: sha256 is sequential, so the digest of the first part continues
    into the digest of the whole.
    """
    import numpy as np

    whole: list[dict[str, Any]] = []
    first: list[dict[str, Any]] = []
    second: list[dict[str, Any]] = []
    for n, arr in leaves(obj, name):
        a = np.ascontiguousarray(_as_numpy(arr))
        head, tail = a[:split_at], a[split_at:]
        if a.dtype.hasobject:
            d_head = d_tail = d_all = None
        else:
            h = hashlib.sha256(memoryview(head.reshape(-1)).cast("B"))
            d_head = h.hexdigest()
            h.update(memoryview(tail.reshape(-1)).cast("B"))
            d_all = h.hexdigest()
            d_tail = hashlib.sha256(memoryview(tail.reshape(-1)).cast("B")).hexdigest()
        whole.append(_describe_array(n, arr, d_all))
        first.append(_describe_array(n, arr, d_head, shape=head.shape))
        second.append(_describe_array(n, arr, d_tail, shape=tail.shape))
    return whole, first, second


def ref(row: Mapping[str, Any]) -> str:
    """What the set's FILE attribute holds: a path when known, else a content address."""
    if row.get("path"):
        return str(row["path"])
    if row.get("sha256"):
        return "sha256:" + row["sha256"]
    if row.get("fingerprint"):
        return "spec-sha256:" + row["fingerprint"]
    return str(row.get("kind") or "data") + ":" + str(row.get("data_name"))


def file_digest(path: str | os.PathLike[str]) -> tuple[int, str]:
    """Size in bytes and sha256 of a file (or of a directory's files, in sorted order)."""
    p = Path(path)
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
    h = hashlib.sha256()
    size = 0
    for f in files:
        if p.is_dir():
            h.update(str(f.relative_to(p)).encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
                size += len(chunk)
    return size, h.hexdigest()


# --- lineage registry ----------------------------------------------------------------------
_lock = threading.Lock()
_producers: dict[tuple[str, str], Task] = {}  # (execution, digest) -> task that output it
_outputs: set[tuple[str, str, str]] = set()  # (execution, set, digest) already emitted as output
_last_data_task: dict[str, Task] = {}  # execution -> latest load/split/transform task


def _key(row: Mapping[str, Any]) -> str | None:
    return row.get("sha256") or row.get("fingerprint")


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
            for row in rows:
                key = _key(row)
                if key:
                    _producers[(task.exec_tag, key)] = task
                    _outputs.add((task.exec_tag, set_tag, key))


def mark_data_task(task: Task) -> None:
    with _lock:
        _last_data_task[task.exec_tag] = task


# --- user steps: load, split, transform ----------------------------------------------------
class DataStep:
    """A data step of your pipeline, used as a decorator or as a context manager.

    As a context manager it yields itself: call :meth:`output` (and, for a split,
    :meth:`train` / :meth:`test`) with the data the step produced. As a decorator, each call
    of the function is one task: array arguments are its inputs, the return value its
    outputs. A failing step ends its task FAILED and the exception propagates unchanged.
    """

    def __init__(
        self,
        transformation: str,
        *,
        config: Mapping[str, Any] | None = None,
        inputs: Any = None,
        dataflow: str | None = None,
        execution: str | None = None,
    ) -> None:
        self.transformation = transformation
        self.config = dict(config or {})
        self.inputs = inputs
        self.dataflow = dataflow
        self.execution = execution
        self.task: Task | None = None

    # -- set tags: the first input and output sets of the transformation ---------------------
    def _input_set(self) -> str:
        assert self.task is not None
        return self.task.transformation.inputs[0].tag

    def _output_set(self) -> str:
        assert self.task is not None
        return self.task.transformation.outputs[0].tag

    def _file_attr(self, set_tag: str) -> str | None:
        return None

    def _config_rows(self) -> list[dict[str, Any]]:
        return []

    def _copy(self) -> DataStep:
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.task = None
        return new

    # -- life cycle -------------------------------------------------------------------------
    def _begin(self, inputs: Any) -> None:
        df, exec_tag = context(self.dataflow, self.execution)
        input_rows = describe(inputs, "input") if inputs is not None else []
        deps = dependencies(exec_tag, input_rows)
        self.task = task = new_task(df, exec_tag, self.transformation, deps)
        for row in self._config_rows():
            task.add_dataset(DataSet(self._input_set(), [row]))
        task.begin()
        mark_data_task(task)
        self._emit_inputs(input_rows)

    def _emit_inputs(self, rows: list[dict[str, Any]]) -> None:
        # custom transformations record what they read; predefined ones read sets that an
        # earlier task produced, which the dependency already links
        if self.transformation not in DATA_TRANSFORMATIONS and self.task is not None:
            emit(self.task, self._input_set(), rows)

    def __enter__(self) -> DataStep:
        guarded(f"{self.transformation} begin", self._begin, self.inputs)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self.task is not None:
            guarded(f"{self.transformation} end", self.task.end, exc)

    def output(self, data: Any = None, **named: Any) -> None:
        """Record data the step produced (positional structure and/or named pieces)."""
        if self.task is not None:
            self._output(self._output_set(), data, named)

    def _output(
        self, set_tag: str, data: Any, named: Mapping[str, Any], extra: Mapping[str, Any] | None = None
    ) -> None:
        if self.task is None:
            return

        def go() -> None:
            rows = describe(data, "output") if data is not None else []
            for k, v in named.items():
                rows += describe(v, k)
            for r in rows:
                r.update(extra or {})
            emit(self.task, set_tag, rows, self._file_attr(set_tag))

        guarded(f"{self.transformation} output", go)

    # -- decorator ----------------------------------------------------------------------------
    def _record_result(self, result: Any) -> None:
        self.output(result)

    def __call__(self, fn: F) -> F:
        import inspect

        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):
            signature = None

        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            step = self._copy()
            if step.inputs is None and signature is not None:
                try:
                    bound = signature.bind(*args, **kwargs)
                    arrays = {
                        k: v
                        for k, v in bound.arguments.items()
                        if is_array(v) or _is_tf_dataset(v) or (isinstance(v, list | tuple) and v and is_array(v[0]))
                    }
                    step.inputs = arrays or None
                except TypeError:
                    pass
            with step:
                result = fn(*args, **kwargs)
                step._record_result(result)
                return result

        return inner  # type: ignore[return-value]


class LoadData(DataStep):
    """A ``loaddata`` task: ``iinputdataset`` (name, source) -> ``oloaddata`` (the data)."""

    def __init__(
        self, name: str, source: str | None = None, dataset_dir: str | os.PathLike[str] | None = None, **kw: Any
    ) -> None:
        super().__init__("loaddata", **kw)
        self.name = name
        self.source = source
        self.dataset_dir = os.fspath(dataset_dir) if dataset_dir is not None else None

    def _file_attr(self, set_tag: str) -> str | None:
        return "dataset_dir"

    def _config_rows(self) -> list[dict[str, Any]]:
        return [{"dataset_name": self.name, "dataset_source": self.source or self.name}]

    def _output(
        self, set_tag: str, data: Any, named: Mapping[str, Any], extra: Mapping[str, Any] | None = None
    ) -> None:
        extra = dict(extra or {})
        if self.dataset_dir:
            extra["path"] = self.dataset_dir
        super()._output(set_tag, data, named, extra)

    def __call__(self, fn: F) -> F:
        if self.source is None:
            self.source = f"{fn.__module__}.{fn.__qualname__}"
        return super().__call__(fn)


class SplitData(DataStep):
    """A ``splitdata`` task: ``isplitconfig`` (ratio) -> ``otrainset`` and ``otestset``.

    ``ratio`` is the fraction held out for testing (as you pass it to your split function).
    """

    def __init__(self, ratio: float, *, method: str | None = None, **kw: Any) -> None:
        super().__init__("splitdata", **kw)
        self.ratio = ratio
        self.method = method

    def _config_rows(self) -> list[dict[str, Any]]:
        row: dict[str, Any] = {"ratio": self.ratio}
        if self.method:
            row["method"] = self.method
        return [row]

    def _file_attr(self, set_tag: str) -> str | None:
        return {"otrainset": "trainset", "otestset": "testset"}.get(set_tag)

    def train(self, data: Any = None, **named: Any) -> None:
        """Record the training part."""
        self._output("otrainset", data, named, {"subset": "train"})

    def test(self, data: Any = None, **named: Any) -> None:
        """Record the test part."""
        self._output("otestset", data, named, {"subset": "test"})

    def output(self, data: Any = None, **named: Any) -> None:
        raise TypeError("a split records its parts with .train(...) and .test(...)")

    def _record_result(self, result: Any) -> None:
        # (train, test) or scikit-learn's (x_train, x_test, y_train, y_test)
        if isinstance(result, tuple) and len(result) == 2:
            self.train(train=result[0])
            self.test(test=result[1])
        elif isinstance(result, tuple) and len(result) == 4:
            self.train(x=result[0], y=result[2])
            self.test(x=result[1], y=result[3])
        else:
            log_once(
                "splitdata result",
                TypeError(
                    "a function decorated with split_data must return (train, test) or "
                    f"(x_train, x_test, y_train, y_test), not {type(result).__name__}"
                ),
            )


def load_data(
    name: str,
    source: str | None = None,
    dataset_dir: str | os.PathLike[str] | None = None,
    *,
    dataflow: str | None = None,
    execution: str | None = None,
) -> LoadData:
    """Mark a data-loading step (decorator or context manager): a ``loaddata`` task."""
    return LoadData(name, source, dataset_dir, dataflow=dataflow, execution=execution)


def split_data(
    ratio: float,
    *,
    inputs: Any = None,
    method: str | None = None,
    dataflow: str | None = None,
    execution: str | None = None,
) -> SplitData:
    """Mark a train/test split (decorator or context manager): a ``splitdata`` task."""
    return SplitData(ratio, method=method, inputs=inputs, dataflow=dataflow, execution=execution)


def transform(tag: str, *, inputs: Any = None, dataflow: str | None = None, execution: str | None = None) -> DataStep:
    """Mark a preprocessing step of your own (decorator or context manager).

    The dataflow gains a transformation ``tag`` with sets ``i<tag>`` and ``o<tag>`` (unless
    it defines one already).
    """
    if tag in {t.tag for t in predefined_transformations()}:
        raise ValueError(f"{tag!r} is a predefined transformation; use load_data/split_data or a new tag")
    return DataStep(tag, inputs=inputs, dataflow=dataflow, execution=execution)


__all__ = [
    "DataStep",
    "LoadData",
    "SplitData",
    "context",
    "describe",
    "describe_split",
    "ensure_transformation",
    "file_digest",
    "is_array",
    "leaves",
    "load_data",
    "set_defaults",
    "split_data",
    "transform",
]
