"""Shared fixtures (a fresh embedded store and pipeline per test) and the test tiers.

Tiers, as markers set from where a test lives (``pytest -m unit`` or ``pytest tests/unit``):

- ``unit``: ``tests/unit/``, the SDK on an in-memory exporter; no MonetDB, no subprocess, no
  server; seconds in all.
- ``integration``: ``tests/integration/`` and the top-level tests that are not ``e2e``: real
  MonetDB (embedded or server), Neo4j, the CLI in a subprocess.
- ``e2e``: ``tests/e2e/`` and the top-level tests that train a real model or start the collector
  (markers ``keras``, ``torch``, ``collector``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

# a real MonetDB server (built once by scripts/monetdb.sh) and stores on both backends
from tests.fixtures_monetdb import monetdb_server, monetdb_url, store_url  # noqa: F401

# TensorFlow and torch's triton abort the process (an LLVM error) when TensorFlow is imported
# first and a torch optimizer then loads triton; loading triton first works. Keras tests import
# TensorFlow at collection, so torch's compiler stack goes first: before the first test module
# outside tests/unit is imported (the unit tier does not pay its seconds of import).
TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "integration", "e2e")
E2E_MARKERS = ("keras", "torch", "collector")


def _torch_compiler_first() -> None:
    if "torch._dynamo" not in sys.modules and importlib.util.find_spec("torch") is not None:
        import torch._dynamo  # noqa: F401


def _tier_dir(path: Path) -> str | None:
    try:
        first = path.resolve().relative_to(TESTS).parts[0]
    except (ValueError, IndexError):
        return None
    return first if first in TIERS else None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "unit: fast tier, in-memory exporter only (tests/unit)")
    config.addinivalue_line("markers", "integration: real MonetDB / Neo4j / CLI subprocesses")
    config.addinivalue_line("markers", "e2e: real trainings, collector processes (tests/e2e)")


def pytest_collectstart(collector: pytest.Collector) -> None:
    # a test module is imported when it is collected, which starts here
    if isinstance(collector, pytest.Module) and _tier_dir(collector.path) != "unit":
        _torch_compiler_first()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        tier = _tier_dir(item.path)
        if tier is None:
            tier = "e2e" if any(item.get_closest_marker(m) for m in E2E_MARKERS) else "integration"
        item.add_marker(getattr(pytest.mark, tier))


# Tests never write into the user's spool.
os.environ.setdefault("DLPROV_SPOOL_DIR", str(Path(__file__).parent / "artifacts" / "spool"))

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def dlprov(store_dir: Path, tmp_path: Path):
    """A configured pipeline writing into a fresh embedded store; shut down afterwards."""
    import dlprov_otel

    tel = dlprov_otel.configure(store=store_dir, spool_dir=tmp_path / "spool", schedule_delay=0.05)
    yield tel
    dlprov_otel.shutdown()


@pytest.fixture
def dlprov_both(store_url: str, tmp_path: Path):  # noqa: F811  (the fixture imported above)
    """A configured pipeline on a fresh store, once per backend (embedded, MonetDB server): a
    test module runs on both by defining its ``dlprov`` fixture as this one."""
    import dlprov_otel

    tel = dlprov_otel.configure(store=store_url, spool_dir=tmp_path / "spool", schedule_delay=0.05)
    yield tel
    dlprov_otel.shutdown()


@pytest.fixture
def subprocess_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a child Python that uses this venv."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["DLPROV_SPOOL_DIR"] = str(tmp_path / "child-spool")
    env.pop("DLPROV_ENDPOINT", None)
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    return env
