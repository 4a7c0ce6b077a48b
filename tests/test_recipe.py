"""The recipe of a run with real git, a real store and a real collector: a clean and a dirty tree,
a large diff, no git at all, a folder that is no repository; a user's script whose recipe lands
in ``execution_recipe`` in-process and through the collector (and ``dlprov lineage --endpoint``).
What a run records and when, without git: tests/unit/test_recipe.py."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dlprov_otel import recipe


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(recipe, "GIT_CACHE_SECONDS", 0.0)  # each call looks at git again
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q", "-b", "work")
    git(root, "config", "user.email", "ada@example.org")
    git(root, "config", "user.name", "Ada")
    (root / "train.py").write_text("print('v1')\n")
    git(root, "add", "train.py")
    git(root, "commit", "-q", "-m", "first")
    return root


def entries(directory: Path) -> dict[str, tuple[str, str | None]]:
    return {n: (v, d) for n, v, d in recipe.git_entries(str(directory))}


def test_a_clean_tree(repo: Path) -> None:
    got = entries(repo)
    assert got["git.commit"][0] == git(repo, "rev-parse", "HEAD").strip()
    assert got["git.branch"][0] == "work"
    assert got["git.dirty"][0] == "false"
    assert "git.diff" not in got and "git.error" not in got


def test_a_dirty_tree_keeps_its_diff_and_digest(repo: Path) -> None:
    (repo / "train.py").write_text("print('v2: lr=0.01')\n")
    got = entries(repo)
    diff = git(repo, "diff", "HEAD")
    assert got["git.dirty"][0] == "true"
    assert got["git.diff"] == (diff, hashlib.sha256(diff.encode()).hexdigest())
    assert "lr=0.01" in got["git.diff"][0]


def test_a_large_diff_is_kept_as_its_digest(repo: Path) -> None:
    (repo / "train.py").write_text("".join(f"line {i} {'x' * 60}\n" for i in range(2000)))
    got = entries(repo)
    diff = git(repo, "diff", "HEAD")
    assert len(diff) > recipe.DIFF_LIMIT
    value, digest = got["git.diff"]
    assert digest == hashlib.sha256(diff.encode()).hexdigest()
    assert "not stored" in value and len(value) < 100


def test_a_diff_that_is_not_utf8_is_kept_as_text_the_store_takes(repo: Path) -> None:
    # a Latin-1 file changed: the diff's bytes are not UTF-8; the value must be storable text
    # (else the whole environment part of the recipe, git and packages, was refused by the store)
    (repo / "notes.txt").write_bytes(b"caf\xe9 = 1\n")
    git(repo, "add", "notes.txt")
    git(repo, "commit", "-q", "-m", "latin-1")
    (repo / "notes.txt").write_bytes(b"caf\xe9 = 2\n")
    raw = subprocess.run(["git", "-C", str(repo), "diff", "HEAD"], capture_output=True, check=True).stdout
    value, digest = entries(repo)["git.diff"]
    value.encode("utf-8")  # no lone surrogates
    assert "caf\ufffd = 2" in value
    assert digest == hashlib.sha256(raw).hexdigest()  # the digest is of git's own bytes


def test_no_git_and_no_repository_are_recorded(repo: Path, tmp_path: Path, monkeypatch) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert "not a git repository" in entries(plain)["git.error"][0]
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert entries(repo) == {"git.error": ("git is not installed", None)}


SCRIPT = """
    import hashlib, os, random, sys
    import dlprov_otel
    from dlprov_otel import DataSet, Task

    where = sys.argv[1]
    if where.startswith("http"):
        dlprov_otel.configure(endpoint=where)
    else:
        dlprov_otel.configure(store=where)
    random.seed(2024)
    with dlprov_otel.execution(dataflow="mnist") as ex:
        train = Task(1, "mnist", ex.tag, "trainmodel")
        train.begin()
        with open(sys.argv[2], "wb") as f:
            f.write(b"weights " + sys.argv[2].encode())
        digest = hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest()
        train.add_dataset(DataSet("otrainedmodel", [{"model_name": "m", "model_dir": sys.argv[2], "sha256": digest}]))
        train.end()
    dlprov_otel.shutdown()
    print(ex.tag)
"""


def run_user_script(repo: Path, target: str, model: Path, env: dict[str, str]) -> str:
    script = repo / "train.py"
    script.write_text(textwrap.dedent(SCRIPT))  # a change against the commit: a dirty tree
    env = {**env, "OMP_NUM_THREADS": "2", "MY_SERVICE_TOKEN": "hunter2", "DLPROV_RECIPE_ENV": "MY_SERVICE_TOKEN"}
    out = subprocess.run([sys.executable, str(script), target, str(model)], capture_output=True, text=True, env=env,
                         cwd=repo, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def check_recipe(rows: list[tuple], repo: Path) -> None:
    got = {name: (value, digest) for name, value, digest in rows}
    script = repo / "train.py"
    assert got["script.path"] == (str(script), hashlib.sha256(script.read_bytes()).hexdigest())
    assert got["git.commit"][0] == git(repo, "rev-parse", "HEAD").strip()
    assert got["git.branch"][0] == "work" and got["git.dirty"][0] == "true"
    assert got["git.diff"][1] == hashlib.sha256(git(repo, "diff", "HEAD").encode()).hexdigest()
    assert got["seed.random"][0] == "2024"
    assert got["env.OMP_NUM_THREADS"][0] == "2"
    assert not [n for n in got if "TOKEN" in n] and "hunter2" not in repr(got)
    assert got["python.version"][0] == ".".join(map(str, sys.version_info[:3]))
    assert any(n.startswith("package.opentelemetry-sdk") for n in got)


RECIPE_SQL = "SELECT name, value, digest FROM execution_recipe WHERE execution_tag = '{tag}'"


def test_a_scripts_recipe_lands_in_the_store(repo: Path, tmp_path: Path, subprocess_env, store_url) -> None:
    from dlprov_otel.store import open_store

    tag = run_user_script(repo, store_url, tmp_path / "model.bin", subprocess_env)  # a diff, through COPY INTO too
    store = open_store(store_url)
    try:
        rows = store.query(RECIPE_SQL.format(tag=tag)).rows
    finally:
        store.close()
    check_recipe(rows, repo)


@pytest.mark.collector
def test_the_recipe_and_the_lineage_through_the_collector(repo: Path, tmp_path: Path, subprocess_env) -> None:
    from dlprov_otel import client
    from tests.collector_proc import start_collector

    col = start_collector(tmp_path / "collector")
    try:
        model = tmp_path / "model.bin"
        tag = run_user_script(repo, col.url, model, subprocess_env)
        _, rows = client.query(col.url, RECIPE_SQL.format(tag=tag))
        check_recipe(rows, repo)
        out = subprocess.run(
            [sys.executable, "-m", "dlprov_otel.cli", "lineage", str(model), "--endpoint", col.url, "--json",
             "--format", "provn", "--out", str(tmp_path / "prov")],
            capture_output=True, text=True, env=subprocess_env, timeout=300,
        )
        assert out.returncode == 0, out.stderr
        digest = hashlib.sha256(model.read_bytes()).hexdigest()
        provn = (tmp_path / "prov" / f"lineage-{digest[:12]}.provn").read_text()
        assert provn.startswith("document") and digest in provn and "prov:SoftwareAgent" in provn
        (run,) = json.loads(out.stdout)["runs"]
        assert run["execution"]["tag"] == tag
        assert {e["name"]: e["value"] for e in run["recipe"]}["git.branch"] == "work"
        unknown = subprocess.run(
            [sys.executable, "-m", "dlprov_otel.cli", "lineage", "--digest", "0" * 64, "--endpoint", col.url],
            capture_output=True, text=True, env=subprocess_env, timeout=300,
        )
        assert unknown.returncode != 0 and "0" * 64 in unknown.stderr
    finally:
        assert col.stop() == 0, col.log_tail()


@pytest.mark.torch
def test_torch_seeds_are_caught_when_torch_comes_after_dlprov(subprocess_env) -> None:
    code = (
        "import dlprov_otel, torch, json\n"
        "from dlprov_otel import recipe\n"
        "torch.manual_seed(77)\n"
        "g = torch.rand(1).item(); torch.manual_seed(77)\n"
        "assert torch.rand(1).item() == g  # the wrapped call still seeds\n"
        "print(json.dumps([recipe.seeds(), recipe.torch_initial_seed()]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env, timeout=300)
    assert out.returncode == 0, out.stderr
    seeds, initial = json.loads(out.stdout.strip().splitlines()[-1])
    assert seeds["torch"] == "77"
    assert initial == [["seed.torch.initial", "77", None]]


def test_git_runs_at_a_lower_priority_than_the_training(tmp_path: Path, monkeypatch) -> None:
    """A large diff costs git tenths of a second, on a core the training may need: git runs
    under ``nice -n 10``. A stand-in ``git`` reports the priority it was given as its commit."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "git"
    fake.write_text('#!/bin/sh\necho "# branch.oid nice-$(nice)"\necho "# branch.head main"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(recipe, "_git_cache", {})
    mine = int(subprocess.run(["nice"], capture_output=True, text=True, check=True).stdout)
    assert entries(tmp_path)["git.commit"][0] == f"nice-{min(mine + 10, 19)}"
