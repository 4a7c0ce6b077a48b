"""Helpers of the torch tests: run a script under ``opentelemetry-instrument``, read rows."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).parent / "torch_scripts"


def run_instrumented(script: str, args: list[str], env: dict[str, str], store: Path, cwd: Path,
                     launcher: list[str] | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    """Run ``script`` unchanged under ``opentelemetry-instrument`` with ``DLPROV_STORE=store``."""
    env = {**env, "DLPROV_STORE": str(store), "PYTHONUNBUFFERED": "1"}
    env.pop("DLPROV_DATAFLOW", None)
    cmd = [*(launcher or []), "opentelemetry-instrument", "python", str(SCRIPTS / script), *args]
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def report(proc: subprocess.CompletedProcess) -> dict[str, Any]:
    """The JSON the script printed on its last line."""
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def rows(store: Any, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    return store.query(sql, params).as_dicts()


def set_rows(store: Any, set_tag: str, order: str = "emitted_at, idx", dataflow: str = "torch") -> list[dict[str, Any]]:
    return rows(store, f'SELECT * FROM "{dataflow}"."{set_tag}" ORDER BY {order}')
