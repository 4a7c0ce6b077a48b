"""The recipe of a run (dlprov_otel/recipe.py) on the in-memory exporter: what a run records
at start, in the background and at its end; secrets kept out; seeds caught; failures recorded
without breaking the run. Git itself: tests/test_recipe.py."""

from __future__ import annotations

import hashlib
import random
import sys

import numpy as np
import pytest

import dlprov_otel
from dlprov_otel import recipe, semconv


def _entries(spans) -> dict[str, tuple[str, str | None]]:
    out: dict[str, tuple[str, str | None]] = {}
    for s in spans:
        for name, value, digest in recipe.entries_of(s.attributes):
            out[name] = (value, digest)
    return out


def test_a_run_records_its_script_python_and_packages(memory, tmp_path, monkeypatch):
    script = tmp_path / "train.py"
    script.write_text("print('training')\n")
    monkeypatch.setattr(sys, "argv", [str(script), "--lr", "0.1"])
    monkeypatch.setattr(sys, "orig_argv", [sys.executable, str(script), "--lr", "0.1"])
    monkeypatch.setattr(sys.modules["__main__"], "__file__", str(script), raising=False)
    with dlprov_otel.execution("unit-recipe-run", dataflow="mnist") as ex:
        pass
    spans = memory.kind(semconv.KIND_RECIPE)
    assert {s.attributes[semconv.RECIPE_PHASE] for s in spans} >= {"start", "environment"}
    root = next(s for s in memory.spans() if s.attributes.get(semconv.KIND) == semconv.KIND_EXECUTION)
    for s in spans:
        assert s.parent.span_id == root.context.span_id  # children of the execution's root span
        assert s.attributes[semconv.EXECUTION_TAG] == ex.tag
    got = _entries(spans)
    digest = hashlib.sha256(script.read_bytes()).hexdigest()
    assert got["script.path"] == (str(script), digest)
    assert got["script.sha256"][0] == digest
    assert "--lr 0.1" in got["command"][0]
    assert got["python.version"][0] == ".".join(map(str, sys.version_info[:3]))
    assert got["package.numpy"][0] == np.__version__
    assert got["package.opentelemetry-sdk"][0]


def test_secret_looking_variables_and_arguments_are_not_kept(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("MY_API_TOKEN", "hunter2")
    monkeypatch.setenv("WANDB_API_KEY", "hunter2")
    monkeypatch.setenv("EXPERIMENT_GROUP", "ablation")
    got = dict((n, v) for n, v, _ in recipe.environment("MY_API_TOKEN, WANDB_API_KEY, EXPERIMENT_GROUP"))
    assert got["env.OMP_NUM_THREADS"] == "3"
    assert got["env.EXPERIMENT_GROUP"] == "ablation"  # named in DLPROV_RECIPE_ENV
    assert "env.MY_API_TOKEN" not in got and "env.WANDB_API_KEY" not in got
    assert "hunter2" not in repr(got)
    assert "HOME" not in {n[4:] for n in got}  # only the allow-list and the named ones
    line = recipe.masked_command(["python", "train.py", "--token", "hunter2", "--db-password=hunter2",
                                  "--data", "s3://user:hunter2@bucket/x", "--lr", "0.1"])
    assert "hunter2" not in line
    assert "--lr 0.1" in line and "--token '***'" in line


def test_seeds_set_through_random_and_numpy_are_caught():
    random.seed(1234)
    np.random.seed(99)
    assert recipe.seeds()["random"] == "1234"
    assert recipe.seeds()["numpy"] == "99"
    assert random.random() == random.Random(1234).random()  # the wrapper still seeds


def test_seeds_set_during_a_run_reach_its_end(memory):
    with dlprov_otel.execution("unit-recipe-seeds", dataflow="mnist"):
        random.seed(4321)
    assert _entries(memory.kind(semconv.KIND_RECIPE))["seed.random"][0] == "4321"


def test_an_unreadable_script_is_recorded_and_the_run_goes_on(memory, tmp_path, monkeypatch):
    missing = tmp_path / "gone.py"
    monkeypatch.setattr(sys.modules["__main__"], "__file__", str(missing), raising=False)
    with dlprov_otel.execution("unit-recipe-missing", dataflow="mnist") as ex:
        pass
    assert ex.status == semconv.FINISHED
    got = _entries(memory.kind(semconv.KIND_RECIPE))
    assert got["script.path"] == (str(missing), None)
    assert "FileNotFoundError" in got["script.error"][0]


def test_a_failing_step_never_breaks_the_run(memory, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("metadata is broken")

    monkeypatch.setattr(recipe, "package_entries", broken)
    monkeypatch.setattr(recipe, "python_entries", broken)
    with dlprov_otel.execution("unit-recipe-broken", dataflow="mnist") as ex:
        pass
    assert ex.status == semconv.FINISHED
    got = _entries(memory.kind(semconv.KIND_RECIPE))
    assert "metadata is broken" in got["package.error"][0]
    assert "metadata is broken" in got["python.error"][0]


def test_recording_can_be_turned_off(memory, monkeypatch):
    monkeypatch.setenv("DLPROV_RECIPE", "0")
    with dlprov_otel.execution("unit-recipe-off", dataflow="mnist"):
        pass
    assert memory.kind(semconv.KIND_RECIPE) == []


@pytest.mark.parametrize("text", ["", "abc", "g" * 64, "sha256:" + "0" * 63])
def test_bad_digests_are_refused(text):
    from dlprov_otel.store.artifacts import DigestError, normalize_digest

    with pytest.raises(DigestError):
        normalize_digest(text)
    assert normalize_digest("SHA256:" + "A" * 64) == "a" * 64


def test_flush_waits_for_the_background_part(memory, monkeypatch):
    import time

    from dlprov_otel import tracing

    def slow_git(directory):
        time.sleep(0.3)
        return [("git.error", "slow on purpose", None)]

    monkeypatch.setattr(recipe, "git_entries", slow_git)
    ex = tracing.execution_for("unit-recipe-flush", "mnist")  # running: its end does not wait for it
    try:
        phases = {s.attributes[semconv.RECIPE_PHASE] for s in memory.kind(semconv.KIND_RECIPE)}  # flushes
        assert "environment" in phases
        assert _entries(memory.kind(semconv.KIND_RECIPE))["git.error"][0] == "slow on purpose"
    finally:
        ex.end()


def test_every_step_that_fails_is_recorded_and_the_rest_kept(memory, monkeypatch):
    # seeds, the environment and git failing in ways nobody planned for (at start, in the
    # background and at the end): the run still ends FINISHED and keeps what could be recorded
    def broken(*a, **k):
        raise ValueError("unexpected")

    for step in ("seeds", "environment", "git_entries", "torch_initial_seed"):
        monkeypatch.setattr(recipe, step, broken)
    with dlprov_otel.execution("unit-recipe-all-broken", dataflow="mnist") as ex:
        pass
    assert ex.status == semconv.FINISHED
    got = _entries(memory.kind(semconv.KIND_RECIPE))
    assert got["python.version"][0] == ".".join(map(str, sys.version_info[:3]))
    assert got["package.numpy"][0] == np.__version__  # the background part went on without git
    for what in ("seed", "env", "git"):
        assert "ValueError: unexpected" in got[f"{what}.error"][0], what


def test_secret_looking_overrides_in_key_value_form_are_masked():
    # Hydra / OmegaConf style overrides and KEY=VALUE arguments: the name says it is a secret
    line = recipe.masked_command(["python", "train.py", "optimizer.lr=0.1", "wandb.api_key=hunter2",
                                  "+db.password=hunter2", "HF_TOKEN=hunter2", "epochs=3"])
    assert "hunter2" not in line
    assert "optimizer.lr=0.1" in line and "epochs=3" in line and "wandb.api_key=***" in line


def test_a_deleted_working_directory_keeps_the_script_and_command(memory, tmp_path, monkeypatch):
    script = tmp_path / "train.py"
    script.write_text("print('training')\n")
    monkeypatch.setattr(sys.modules["__main__"], "__file__", str(script), raising=False)

    def gone() -> str:
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(recipe.os, "getcwd", gone)
    got = dict((n, (v, d)) for n, v, d in recipe.script_entries())
    assert got["script.path"] == (str(script), hashlib.sha256(script.read_bytes()).hexdigest())
    assert got["command"][0] and "FileNotFoundError" in got["cwd.error"][0]


def test_a_seeded_numpy_generator_is_caught_and_an_unseeded_one_changes_nothing():
    # numpy's recommended API: rng = np.random.default_rng(seed)
    first = np.random.default_rng(2024).random()
    np.random.default_rng()  # no seed (a library's own generator): the seed given stays
    assert recipe.seeds()["numpy.default_rng"] == "2024"
    assert first == np.random.Generator(np.random.PCG64(2024)).random()  # the wrapper still seeds


def test_undecodable_bytes_in_arguments_or_paths_become_storable_text(memory, monkeypatch):
    # Linux hands undecodable bytes of argv and paths over as lone surrogates, which no store
    # takes: the whole start part of the recipe was refused with them
    monkeypatch.setattr(sys, "orig_argv", [sys.executable, "train.py", "--out", "caf\udce9"])
    with dlprov_otel.execution("unit-recipe-surrogates", dataflow="mnist"):
        pass
    for span in memory.kind(semconv.KIND_RECIPE):
        for value in span.attributes[semconv.RECIPE_VALUES]:
            value.encode("utf-8")
    assert "caf\ufffd" in _entries(memory.kind(semconv.KIND_RECIPE))["command"][0]


def test_a_notebook_kernel_is_not_taken_for_the_script(memory, tmp_path, monkeypatch):
    # Jupyter runs cells with argv[0] = ipykernel_launcher.py and no __main__.__file__: the
    # launcher is not the run's code; the notebook is, when Jupyter names it (JPY_SESSION_NAME)
    import types

    monkeypatch.delattr(sys.modules["__main__"], "__file__", raising=False)
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "ipykernel_launcher.py"), "-f", "kernel.json"])
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert recipe.entry_script() is None
    notebook = tmp_path / "train.ipynb"
    notebook.write_text("{}")
    monkeypatch.setenv("JPY_SESSION_NAME", str(notebook))
    assert recipe.entry_script() == str(notebook)
