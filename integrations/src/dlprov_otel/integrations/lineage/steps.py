"""Your own data steps as tasks: ``load_data``, ``split_data`` and ``transform``, each a
decorator or a context manager. A failing step ends its task FAILED and the exception
propagates unchanged; a failure of the provenance itself never reaches your code."""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from dlprov_otel.api import DataSet, Task
from dlprov_otel.model import predefined_transformations

from .._shared.guard import guarded, report
from .describe import describe, file_digest, is_array, is_tf_dataset
from .registry import dependencies, emit, mark_data_task
from .tasks import DATA_TRANSFORMATIONS, context, new_task

F = TypeVar("F", bound=Callable[..., Any])


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
                        if is_array(v) or is_tf_dataset(v) or (isinstance(v, list | tuple) and v and is_array(v[0]))
                    }
                    step.inputs = arrays or None
                except TypeError:
                    pass
            with step:
                result = fn(*args, **kwargs)
                step._record_result(result)
                return result

        return inner  # type: ignore[return-value]


DATA_DIGEST_MAX = 1 << 30  # bytes: a larger data file or folder gets its size, not its digest
DATA_DIGEST_FILES = 10_000  # a folder of more files (an image dataset) is not walked to its end


def data_file_facts(path: str | None) -> dict[str, Any]:
    """``dataset_sha256`` and ``dataset_size_bytes`` of the file (or folder) a load step reads,
    so that ``dlprov lineage`` finds the runs that read it; ``{}`` when it is not a local path."""
    try:
        if not path or not os.path.exists(path):
            return {}
        if os.path.isfile(path):
            size = os.path.getsize(path)
            if size > DATA_DIGEST_MAX:
                return {"dataset_size_bytes": size}
        else:
            count = size = 0
            for folder, _, names in os.walk(path):
                count += len(names)
                size += sum(os.path.getsize(os.path.join(folder, f)) for f in names)
                if count > DATA_DIGEST_FILES or size > DATA_DIGEST_MAX:
                    return {}  # too large to digest at the step's start; its size is unknown too
        size, digest = file_digest(path)
        return {"dataset_sha256": digest, "dataset_size_bytes": size}
    except OSError as exc:
        report("loaddata digest", exc)
        return {}


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
        row: dict[str, Any] = {"dataset_name": self.name, "dataset_source": self.source or self.name}
        source = self.source if self.source and os.path.isfile(self.source) else None
        row.update(data_file_facts(self.dataset_dir or source))
        return [row]

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
            report(
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


__all__ = ["DataStep", "LoadData", "SplitData", "load_data", "split_data", "transform"]
