"""Shared fixtures: a fresh embedded store and pipeline per test."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

# TensorFlow and torch's triton abort the process (an LLVM error) when TensorFlow is imported
# first and a torch optimizer then loads triton; loading triton first works. Keras tests import
# TensorFlow at collection, so torch's compiler stack goes first.
if importlib.util.find_spec("torch") is not None:
    import torch._dynamo  # noqa: F401

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
def subprocess_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a child Python that uses this venv."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["DLPROV_SPOOL_DIR"] = str(tmp_path / "child-spool")
    env.pop("DLPROV_ENDPOINT", None)
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    return env
