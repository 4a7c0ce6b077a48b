"""The integrations' shared layer: one error guard, one patcher, one resolver, and the
``tracer_provider`` every instrumentor honours. Spans land in OpenTelemetry's in-memory
exporter; no store is opened (a store URL that cannot work is set, and strict mode turns
any swallowed failure into an error). Neither torch nor keras is imported here (the
instrumentors patch a framework when it is imported); the same checks on real PyTorch are
in ``tests/test_torch_instrumentor.py``."""

from __future__ import annotations

import logging
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import dlprov_otel
from dlprov_otel import semconv, tracing
from dlprov_otel.integrations import lineage
from dlprov_otel.integrations._shared import (
    STRICT_ENV,
    DLProvInstrumentor,
    Patcher,
    Settings,
    forget_reported,
    guarded,
    is_strict,
    resolve,
    strict,
)
from dlprov_otel.integrations.keras import KerasInstrumentor
from dlprov_otel.integrations.torch import TorchInstrumentor, finish, log_epoch


class Memory:
    """A TracerProvider of the test's own, exporting into memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def spans(self, kind: str | None = None) -> list[ReadableSpan]:
        found = self.exporter.get_finished_spans()
        return [s for s in found if kind is None or s.attributes.get(semconv.KIND) == kind]

    def datasets(self, set_tag: str) -> list[ReadableSpan]:
        return [s for s in self.spans(semconv.KIND_DATASET) if s.attributes.get(semconv.DATASET_TAG) == set_tag]


@pytest.fixture
def no_pipeline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No DLProv pipeline, and none that could be configured: a span that does not go to
    the test's provider fails (and strict mode raises it)."""
    dlprov_otel.shutdown()
    monkeypatch.setenv("DLPROV_STORE", "nosuchscheme://nowhere")
    for name in ("DLPROV_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(STRICT_ENV, raising=False)
    yield
    tracing.use_tracer_provider(None)


@pytest.fixture
def memory(no_pipeline: None) -> Iterator[Memory]:
    """Spans of the SDK go to an in-memory provider (as an instrumentor's tracer_provider)."""
    mem = Memory()
    tracing.use_tracer_provider(mem.provider)
    yield mem
    tracing.use_tracer_provider(None)


# --- the guard -----------------------------------------------------------------------------------
def _boom(message: str = "boom") -> None:
    raise ValueError(message)


def test_guard_logs_once_per_site(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STRICT_ENV, raising=False)
    forget_reported()
    caplog.set_level(logging.WARNING, logger="dlprov_otel.integrations")
    assert guarded("unit site a", _boom, "first") is None
    assert guarded("unit site a", _boom, "second") is None
    assert guarded("unit site b", _boom, "third") is None
    assert guarded("unit site a", lambda: 42) == 42
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "recording provenance (unit site a) failed" in warnings[0] and "ValueError: first" in warnings[0]
    assert "recording provenance (unit site b) failed" in warnings[1]
    forget_reported()
    guarded("unit site a", _boom, "again")
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 3


def test_strict_mode_reraises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STRICT_ENV, raising=False)
    assert not is_strict()
    with strict():
        assert is_strict()
        with pytest.raises(ValueError, match="inside"):
            guarded("unit strict", _boom, "inside")
    assert not is_strict()
    assert guarded("unit strict", _boom, "outside") is None
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(ValueError, match="by env"):
        guarded("unit strict", _boom, "by env")


# --- the patcher ---------------------------------------------------------------------------------
class Base:
    def own(self, x: int) -> int:
        return x + 1

    def inherited(self, x: int) -> int:
        return x * 2


class Child(Base):
    def own(self, x: int) -> int:
        return x + 10


def _add_100(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    return wrapped(*args, **kwargs) + 100


def test_patch_and_unpatch_are_symmetric() -> None:
    module = types.ModuleType("unit_fake_module")
    module.fn = lambda x: x - 1  # type: ignore[attr-defined]
    before = {
        "Base": dict(vars(Base)),
        "Child": dict(vars(Child)),
        "module": dict(vars(module)),
    }
    patcher = Patcher("unit")
    patcher.wrap(Child, "own", _add_100)
    patcher.wrap(Child, "inherited", _add_100)  # defined on Base: set on Child, deleted again
    patcher.wrap(module, "fn", _add_100)
    patcher.replace(Base, "own", lambda original: lambda self, x: original(self, x) * 1000)
    assert (Child().own(1), Child().inherited(1), module.fn(1), Base().own(1)) == (111, 102, 100, 2000)
    assert patcher.applied == [(Child, "own"), (Child, "inherited"), (module, "fn"), (Base, "own")]
    patcher.unpatch_all()
    assert patcher.applied == []
    assert dict(vars(Base)) == before["Base"]
    assert dict(vars(Child)) == before["Child"] and "inherited" not in vars(Child)
    assert dict(vars(module)) == before["module"]
    assert (Child().own(1), Child().inherited(1), module.fn(1), Base().own(1)) == (11, 2, 0, 2)


def test_unpatch_leaves_a_patch_laid_over_ours() -> None:
    patcher = Patcher("unit")
    patcher.wrap(Child, "own", _add_100)
    ours = vars(Child)["own"]
    theirs = lambda self, x: ours(self, x) + 5  # noqa: E731 - someone patched on top
    Child.own = theirs  # type: ignore[method-assign]
    try:
        patcher.unpatch_all()
        assert vars(Child)["own"] is theirs  # theirs would be lost with ours
    finally:
        Child.own = ours.__wrapped__  # type: ignore[method-assign]
    assert Child().own(1) == 11


def test_import_hooks_act_until_unpatched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("unit_hook_early", "unit_hook_late"):
        (tmp_path / f"{name}.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen: list[str] = []
    patcher = Patcher("unit")
    patcher.when_imported("unit_hook_early", lambda: seen.append("early"))
    patcher.when_imported("unit_hook_late", lambda: seen.append("late"))
    import unit_hook_early  # noqa: F401

    assert seen == ["early"]
    patcher.unpatch_all()
    import unit_hook_late  # noqa: F401

    assert seen == ["early"]  # wrapt keeps the hook; the patcher disarmed it
    for name in ("unit_hook_early", "unit_hook_late"):
        sys.modules.pop(name, None)


# --- the same keywords, and the tracer provider ----------------------------------------------------
def test_every_instrumentor_takes_the_same_keywords() -> None:
    assert issubclass(KerasInstrumentor, DLProvInstrumentor) and issubclass(TorchInstrumentor, DLProvInstrumentor)
    s = Settings.from_kwargs({"dataflow": "d", "execution_tag": 7, "lightning": False, "skip_dep_check": True})
    assert (s.dataflow, s.execution, dict(s.options)) == ("d", "7", {"lightning": False})
    assert Settings.from_kwargs(s.as_kwargs()) == s


def test_torch_spans_go_to_the_given_tracer_provider(no_pipeline: None) -> None:
    mem = Memory()
    inst = TorchInstrumentor()
    with strict():
        inst.instrument(tracer_provider=mem.provider, dataflow="unit_torch", execution="unit-torch-1", lightning=False)
        try:
            log_epoch(epoch=0, loss=0.5, f1=0.25)
            finish()
        finally:
            inst.uninstrument()
    (task,) = [s for s in mem.spans(semconv.KIND_TASK) if s.name == "trainmodel"]
    assert task.attributes[semconv.EXECUTION_TAG] == "unit-torch-1"
    assert task.attributes[semconv.DATAFLOW_TAG] == "unit_torch"
    assert task.attributes[semconv.TASK_STATUS] == semconv.FINISHED
    (epoch,) = mem.datasets("otrainmodel")
    assert epoch.parent is not None and epoch.parent.span_id == task.context.span_id
    assert epoch.attributes[semconv.data_key("loss")] == (0.5,)
    assert epoch.attributes[semconv.data_key("f1")] == (0.25,)


def test_keras_spans_go_to_the_given_tracer_provider(no_pipeline: None) -> None:
    mem = Memory()
    inst = KerasInstrumentor()
    x = np.arange(12, dtype="float32").reshape(6, 2)
    with strict():
        inst.instrument(tracer_provider=mem.provider, dataflow="unit_keras", execution="unit-keras-1")
        try:
            with lineage.load_data("numbers", source="unit") as step:
                step.output(x=x)
        finally:
            inst.uninstrument()
    (task,) = [s for s in mem.spans(semconv.KIND_TASK) if s.name == "loaddata"]
    assert (task.attributes[semconv.EXECUTION_TAG], task.attributes[semconv.DATAFLOW_TAG]) == (
        "unit-keras-1",
        "unit_keras",
    )
    (out,) = mem.datasets("oloaddata")
    assert out.attributes[semconv.data_key("sha256")] == (lineage.digest_array(x),)
    assert any(s.attributes.get(semconv.DATAFLOW_TAG) == "unit_keras" for s in mem.spans(semconv.KIND_DATAFLOW))


# --- the resolver and the lineage registry --------------------------------------------------------
def test_resolver_order(memory: Memory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DLPROV_DATAFLOW", raising=False)
    df, tag = resolve(default_dataflow="unit_default")
    assert df.tag == "unit_default" and tag == tracing.current_execution_tag("unit_default")
    monkeypatch.setenv("DLPROV_DATAFLOW", "unit_env")
    assert resolve(default_dataflow="unit_default")[0].tag == "unit_env"
    df, tag = resolve("unit_arg", "unit-arg-1", default_dataflow="unit_default")
    assert (df.tag, tag) == ("unit_arg", "unit-arg-1")
    with dlprov_otel.execution("unit-open-1", dataflow="unit_open"):
        df, tag = resolve("unit_arg", "unit-arg-1", default_dataflow="unit_default")
        assert (df.tag, tag) == ("unit_open", "unit-open-1")  # the open execution wins


def test_lineage_registry_forgets_ended_executions(memory: Memory) -> None:
    x = np.ones((4, 3), dtype="float32")
    with strict():
        with dlprov_otel.execution("unit-reg-1", dataflow="unit_reg"):
            with lineage.load_data("ones") as step:
                step.output(x=x)
            assert "unit-reg-1" in lineage.registry.tracked_executions()
            assert lineage.producers("unit-reg-1", lineage.describe(x, "x"))
        with dlprov_otel.execution("unit-reg-2", dataflow="unit_reg"):
            with lineage.load_data("ones again") as step:
                step.output(x=x)
    tracked = lineage.registry.tracked_executions()
    assert "unit-reg-1" not in tracked and "unit-reg-2" in tracked
    assert lineage.producers("unit-reg-1", lineage.describe(x, "x")) == []


def test_a_load_steps_data_file_is_digested_and_a_large_folder_is_not_walked_whole(tmp_path, monkeypatch) -> None:
    import hashlib

    from dlprov_otel.integrations.lineage import steps

    data = tmp_path / "points.npz"
    data.write_bytes(b"\x00" * 100)
    assert steps.data_file_facts(str(data)) == {
        "dataset_sha256": hashlib.sha256(b"\x00" * 100).hexdigest(), "dataset_size_bytes": 100}
    assert steps.data_file_facts("sklearn.datasets.load_digits") == {}  # not a path
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(5):
        (folder / f"{i}.png").write_bytes(b"x")
    monkeypatch.setattr(steps, "DATA_DIGEST_FILES", 3)  # an image folder of a million files: no walk to the end
    assert steps.data_file_facts(str(folder)) == {}
    monkeypatch.setattr(steps, "DATA_DIGEST_FILES", 10)
    assert steps.data_file_facts(str(folder))["dataset_size_bytes"] == 5
