"""The peers' own environment (parent side): a Python 3.12 venv outside the repository.

``${DLPROV_CACHE:-~/.cache/dlprov}/peers-py312`` gets torch, Flowcept, W&B, MLflow (skinny, with
SQLAlchemy and Alembic for its SQLite store) and yProv4ML (with xarray), each installed by name
with pip on its own, so one that fails to install is recorded and the others go on. The
project's ``.venv`` is never touched.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

# tool -> the distributions it needs (torch is needed by all)
PACKAGES: dict[str, list[str]] = {
    "torch": ["torch"],
    "flowcept": ["flowcept"],
    "wandb": ["wandb"],
    "mlflow": ["mlflow-skinny", "sqlalchemy", "alembic"],
    "yprov4ml": ["yprov4ml", "xarray"],
}
# tool -> the distribution whose version is reported
DIST = {"torch": "torch", "flowcept": "flowcept", "wandb": "wandb", "mlflow": "mlflow-skinny", "yprov4ml": "yprov4ml"}


def env_dir() -> Path:
    return Path(os.environ.get("DLPROV_CACHE", "~/.cache/dlprov")).expanduser() / "peers-py312"


def env_python() -> Path:
    return env_dir() / "bin" / "python"


def find_python312() -> str | None:
    """``$PEERS_PYTHON``, ``python3.12`` on PATH (when it runs), or a pyenv 3.12."""
    candidates = [os.environ.get("PEERS_PYTHON"), shutil.which("python3.12")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")), reverse=True)
    for c in candidates:
        if not c:
            continue
        try:
            out = subprocess.run([c, "--version"], capture_output=True, text=True, timeout=60)
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.startswith("Python 3.12"):
            return c
    return None


def installed_versions(python: str | Path, names: list[str] | None = None) -> dict[str, str]:
    """Versions of the distributions ``names`` (default: all of PACKAGES) in ``python``'s environment."""
    names = names or sorted({d for ds in PACKAGES.values() for d in ds})
    code = (
        "import json, importlib.metadata as m\n"
        "out = {}\n"
        f"for n in {names!r}:\n"
        "    try:\n        out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError:\n        pass\n"
        "print(json.dumps(out))"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def ensure(tools: list[str], log: Callable[[str], None] = print) -> tuple[dict[str, str], dict[str, str]]:
    """Create or complete the environment for ``tools`` (peers; torch comes with any), and return
    (versions by tool, install failures by tool)."""
    failures: dict[str, str] = {}
    wanted = [t for t in PACKAGES if t in tools]
    if not wanted:
        return {}, {}
    wanted.insert(0, "torch")
    py = env_python()
    if not py.exists():
        base = find_python312()
        if base is None:
            return {}, {t: "no Python 3.12 found (set PEERS_PYTHON)" for t in wanted}
        log(f"creating {env_dir()} with {base}")
        subprocess.run([base, "-m", "venv", str(env_dir())], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=False)
    have = installed_versions(py)
    for tool in wanted:
        dists = PACKAGES[tool]
        if all(d in have for d in dists):
            continue
        log(f"installing {' '.join(dists)} into {env_dir()} (once)")
        proc = subprocess.run([str(py), "-m", "pip", "install", "-q", *dists], capture_output=True, text=True)
        if proc.returncode != 0:
            failures[tool] = (proc.stderr.strip().splitlines() or ["pip failed"])[-1][:500]
            log(f"  failed: {failures[tool]}")
        have = installed_versions(py)
    versions = {tool: have[DIST[tool]] for tool in wanted if all(d in have for d in PACKAGES[tool])}
    for tool in wanted:
        if tool not in versions and tool not in failures:
            failures[tool] = "not installed"
    return versions, failures
