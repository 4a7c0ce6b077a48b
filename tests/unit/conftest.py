"""The unit tier: the SDK on OpenTelemetry's in-memory exporter, no store, no subprocess.

``memory`` configures DLProv-OTel with ``configure(exporter=InMemorySpanExporter())``: spans
pass through the real :class:`~dlprov_otel.processor.LosslessSpanProcessor` and land in memory.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import settings
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import dlprov_otel
from dlprov_otel import semconv
from dlprov_otel.tracing import Telemetry

# Property tests draw 30 examples here (seconds on a loaded 2-core machine); for a deeper
# search, `pytest tests/unit --hypothesis-profile=thorough`. No deadline: a loaded machine
# is slow, and speed is measured in bench/, not here.
settings.register_profile("unit", max_examples=30, deadline=None)
settings.register_profile("thorough", max_examples=1000, deadline=None)
if settings.get_current_profile_name() == "default":
    settings.load_profile("unit")


@pytest.fixture(scope="session")
def load_bench() -> Callable[[str], ModuleType]:
    """A script of ``bench/`` loaded as a module, as when it runs: with ``bench/`` first on
    ``sys.path`` for its own imports (``report``, ``peers/*``), the path restored after."""
    bench = Path(__file__).resolve().parents[2] / "bench"

    def load(script: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(f"bench_{Path(script).stem}", bench / script)
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        saved = list(sys.path)
        sys.path.insert(0, str(bench))
        try:
            spec.loader.exec_module(mod)
        finally:
            sys.path[:] = saved
        return mod

    return load


@dataclass
class Recorded:
    """The configured pipeline and the spans it exported."""

    telemetry: Telemetry
    exporter: InMemorySpanExporter

    def spans(self) -> tuple[ReadableSpan, ...]:
        """Every span exported so far (flushes first)."""
        assert self.telemetry.flush(30), "the lossless processor did not flush in 30 s"
        return self.exporter.get_finished_spans()

    def kind(self, kind: str) -> list[ReadableSpan]:
        """The exported spans of one ``dlprov.span.kind``, in the order they ended."""
        return [s for s in self.spans() if s.attributes.get(semconv.KIND) == kind]

    def close(self) -> tuple[ReadableSpan, ...]:
        """Shut the pipeline down (open executions end) and return every span."""
        dlprov_otel.shutdown()
        return self.exporter.get_finished_spans()


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[Recorded]:
    exporter = InMemorySpanExporter()
    tel = dlprov_otel.configure(exporter=exporter, spool_dir=tmp_path / "spool", schedule_delay=0.01, set_global=False)
    yield Recorded(tel, exporter)
    dlprov_otel.shutdown()


@pytest.fixture
def exec_tag(request: pytest.FixtureRequest) -> str:
    """An execution tag of this test alone (tasks are found by (execution, id) in a process)."""
    return f"unit-{request.node.name}"


NO_SERVICES = ("monetdbe", "pymonetdb", "neo4j")  # what the unit tier must never load


@pytest.fixture(autouse=True, scope="session")
def _the_unit_tier_opens_no_database(request: pytest.FixtureRequest) -> Iterator[None]:
    """When only unit tests run, no database driver may have been imported by the end."""
    yield
    if all(item.get_closest_marker("unit") for item in request.session.items):
        loaded = [m for m in NO_SERVICES if m in sys.modules]
        assert not loaded, f"the unit tier imported {loaded}: such a test belongs in tests/integration"
