"""A 2-process torchrun job (gloo, CPU) is one execution, with both ranks and no duplicate lineage."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from dlprov_otel.integrations._shared import STRICT_ENV
from dlprov_otel.store import open_store
from tests.torch_helpers import rows, run_instrumented, set_rows

pytestmark = pytest.mark.torch


@pytest.fixture
def subprocess_env(subprocess_env: dict[str, str]) -> dict[str, str]:
    """Strict mode in the child: a provenance failure raises instead of being logged."""
    return {**subprocess_env, STRICT_ENV: "1"}


def test_torchrun_job_is_one_execution(tmp_path: Path, subprocess_env):
    torchrun = shutil.which("torchrun", path=subprocess_env["PATH"])
    assert torchrun, "torchrun comes with torch"
    out = tmp_path / "out"
    out.mkdir()
    store_path = tmp_path / "store"
    # torchrun starts each rank as `opentelemetry-instrument python train_ddp.py ...`
    launcher = [torchrun, "--standalone", "--nproc_per_node=2", "--no-python"]
    proc = run_instrumented("train_ddp.py", ["--out", str(out)], subprocess_env, store_path, tmp_path, launcher)
    assert proc.returncode == 0, proc.stderr[-4000:]
    own = {r: json.loads((out / f"rank-{r}.json").read_text()) for r in (0, 1)}

    st = open_store(store_path)
    try:
        (ex,) = rows(st, "SELECT * FROM dataflow_execution")
        assert ex["status"] == "FINISHED" and ex["world_size"] == 2
        assert ex["tag"].startswith("torch-train_ddp-")
        procs = rows(st, "SELECT rank, pid, trace_id FROM execution_process ORDER BY rank")
        assert [(p["rank"], p["pid"]) for p in procs] == [(0, own[0]["pid"]), (1, own[1]["pid"])]
        # one trace for the whole job (dataflow specs are spans of their own)
        traces = rows(st, "SELECT DISTINCT trace_id FROM span_log WHERE kind <> 'dataflow'")
        assert traces == [{"trace_id": ex["trace_id"]}]

        trains = rows(st, "SELECT id, rank, status FROM task WHERE dt_tag = 'trainmodel' ORDER BY rank")
        assert [(t["id"], t["rank"], t["status"]) for t in trains] == [
            ("trainmodel-1", 0, "FINISHED"),
            ("trainmodel-1-rank1", 1, "FINISHED"),
        ]
        # per-rank epochs, each with that rank's own mean loss
        for rank in (0, 1):
            epochs = rows(st, 'SELECT epoch, loss FROM "torch".otrainmodel WHERE rank = ? ORDER BY epoch', [rank])
            assert [e["epoch"] for e in epochs] == [0, 1]
            for e, mine in zip(epochs, own[rank]["losses"], strict=True):
                assert math.isclose(e["loss"], mine, abs_tol=1e-6)
        # lineage and hyperparameters once, from rank 0
        for set_tag in ("iinputdataset", "oloaddata", "isplitconfig", "otrainset", "otestset", "itrainmodel"):
            recorded = set_rows(st, set_tag)
            assert [r["rank"] for r in recorded] == [0], set_tag
        (hp,) = set_rows(st, "itrainmodel")
        assert hp["world_size"] == 2 and hp["optimizer_name"] == "Adam" and hp["sampler"] == "DistributedSampler"
        deps = rows(st, "SELECT task_id, depends_on_task_id FROM task_dependency WHERE dt_tag = 'trainmodel'")
        assert sorted((d["task_id"], d["depends_on_task_id"]) for d in deps) == [
            ("trainmodel-1", "splitdata-1"),
            ("trainmodel-1-rank1", "splitdata-1"),
        ]
        (saved,) = set_rows(st, "otrainedmodel")
        assert saved["rank"] == 0 and saved["model_dir"] == str((out / "model.pt").resolve())
    finally:
        st.close()
    # rank 1's span files were all ingested by rank 0
    assert not list((tmp_path / "child-spool").rglob("*.otlp.pb"))


def test_ranks_of_a_job_derive_the_same_tag_and_trace(monkeypatch):
    from opentelemetry import trace

    from dlprov_otel import ranks

    monkeypatch.setattr("sys.argv", ["/jobs/train_ddp.py"])
    for var in ("SLURM_JOB_ID", "OMPI_MCA_orte_hnp_uri", "PMIX_NAMESPACE", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    assert ranks.current_job() is None and ranks.job_execution_tag("torch") is None
    assert not trace.get_current_span(ranks.root_context("t")).get_span_context().is_valid

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "abc")
    seen = set()
    for rank in ("0", "1"):
        monkeypatch.setenv("RANK", rank)
        tag = ranks.job_execution_tag("torch")
        parent = trace.get_current_span(ranks.root_context(tag)).get_span_context()
        seen.add((tag, parent.trace_id, parent.span_id, parent.is_remote))
    ((tag, trace_id, span_id, remote),) = seen  # the same for both ranks
    assert tag == "torch-train_ddp-abc-0" and trace_id and span_id and remote

    # torchrun's default run id is "none": another job must not get the same tag
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")
    monkeypatch.setenv("MASTER_PORT", "29500")
    first = ranks.job_execution_tag("torch")
    monkeypatch.setenv("MASTER_PORT", "29501")
    assert first != ranks.job_execution_tag("torch") and "none" not in first

    assert ranks.uses_rank_spool("/tmp/some-store") is not None  # embedded: ranks > 0 spool
    assert ranks.uses_rank_spool("monetdb://u:p@host:50000/db") is None  # a server takes every rank
    monkeypatch.setattr("sys.argv", ["/venv/bin/torchrun", "--nproc_per_node=2", "train.py"])
    assert ranks.is_launcher()
