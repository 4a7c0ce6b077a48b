"""Multi-process jobs (torchrun, SLURM, MPI) as one execution: ranks, job ids, one shared trace.
The environment is a launcher's; no process is started."""

from __future__ import annotations

import logging

import pytest
from opentelemetry import trace

import dlprov_otel
from dlprov_otel import config, ranks, semconv

LAUNCHER_VARS = (
    *("RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_JOB_ID", "SLURM_STEP_ID"),
    *("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_MCA_orte_hnp_uri", "PMIX_NAMESPACE"),
    *("TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT", "MASTER_ADDR", "MASTER_PORT", "DLPROV_RANK_DIR"),
)


@pytest.fixture
def launcher(monkeypatch: pytest.MonkeyPatch):
    """Set a launcher's environment: ``launcher(RANK="0", WORLD_SIZE="2", ...)``."""
    for name in LAUNCHER_VARS:
        monkeypatch.delenv(name, raising=False)

    def set_env(**env: str) -> None:
        for name in LAUNCHER_VARS:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)

    return set_env


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, {}),
        ({"RANK": "1", "WORLD_SIZE": "4"}, {semconv.RANK: 1, semconv.WORLD_SIZE: 4}),
        ({"SLURM_PROCID": "3", "SLURM_NTASKS": "8"}, {semconv.RANK: 3, semconv.WORLD_SIZE: 8}),
        ({"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "2"}, {semconv.RANK: 0, semconv.WORLD_SIZE: 2}),
        ({"RANK": "1"}, {}),  # no world size: not a job
        ({"RANK": "one", "WORLD_SIZE": "2"}, {}),
    ],
)
def test_rank_attributes(launcher, env, expected):
    launcher(**env)
    assert ranks.rank_attributes() == expected


def test_a_single_process_is_no_job(launcher):
    launcher(RANK="0", WORLD_SIZE="1")
    assert ranks.current_job() is None and ranks.job_execution_tag("mnist") is None


def test_every_rank_derives_the_same_execution_and_trace(launcher):
    tags, traces = [], []
    for rank in ("0", "1"):
        launcher(RANK=rank, WORLD_SIZE="2", TORCHELASTIC_RUN_ID="abc", TORCHELASTIC_RESTART_COUNT="1")
        job = ranks.current_job()
        assert job is not None and job.rank == int(rank) and job.run_id == "abc-1"
        tags.append(ranks.job_execution_tag("mnist"))
        traces.append(trace.get_current_span(ranks.root_context(tags[-1])).get_span_context().trace_id)
    assert tags[0] == tags[1] and tags[0].startswith("mnist-") and tags[0].endswith("-abc-1")
    assert traces[0] == traces[1] != 0


@pytest.mark.parametrize(
    ("env", "run_id"),
    [
        ({"SLURM_JOB_ID": "77", "SLURM_STEP_ID": "2"}, "slurm-77-2"),
        ({"PMIX_NAMESPACE": "mpi-ns-1"}, "mpi-ns-1"),
        ({"TORCHELASTIC_RUN_ID": "none", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}, None),
    ],
)
def test_run_ids_of_each_launcher(launcher, env, run_id):
    launcher(RANK="1", WORLD_SIZE="2", **env)
    job = ranks.current_job()
    assert job is not None
    if run_id is None:  # torchrun's default id "none": the rendezvous address tells jobs apart
        assert job.run_id.startswith("job-") and job.run_id == ranks.current_job().run_id
    else:
        assert job.run_id == run_id


def test_the_job_key_is_a_safe_directory_name():
    assert ranks.Job(0, 2, "a/b c:d").key == "a_b_c_d"
    assert ranks.Job(0, 2, "").key == "job"


def test_only_an_embedded_store_uses_the_rank_spool(launcher, tmp_path):
    launcher(RANK="1", WORLD_SIZE="2", TORCHELASTIC_RUN_ID="r")
    assert ranks.uses_rank_spool(tmp_path / "store") == ranks.current_job()
    assert ranks.uses_rank_spool("monetdbe::memory:") is None
    assert ranks.uses_rank_spool("monetdb://u:p@host:50000/db") is None
    launcher()
    assert ranks.uses_rank_spool(tmp_path / "store") is None


def test_spans_of_a_rank_carry_its_rank_and_the_jobs_trace(launcher, memory):
    launcher(RANK="1", WORLD_SIZE="2", TORCHELASTIC_RUN_ID="job7")
    tag = ranks.job_execution_tag("mnist")
    with dlprov_otel.execution(tag, dataflow="mnist"), dlprov_otel.task("testmodel") as t:
        t.output("otestmodel", loss=0.1, accuracy=0.9)
    job_trace = trace.get_current_span(ranks.root_context(tag)).get_span_context().trace_id
    spans = [s for s in memory.spans() if s.attributes[semconv.KIND] != semconv.KIND_DATAFLOW]
    assert {s.attributes[semconv.KIND] for s in spans} >= {"execution", "task", "dataset"}
    for s in spans:
        assert s.attributes[semconv.RANK] == 1 and s.attributes[semconv.WORLD_SIZE] == 2
        assert s.context.trace_id == job_trace


def test_env_float(monkeypatch, caplog):
    monkeypatch.delenv("DLPROV_TEST_NUMBER", raising=False)
    assert config.env_float("DLPROV_TEST_NUMBER", 1.5) == 1.5
    monkeypatch.setenv("DLPROV_TEST_NUMBER", "")
    assert config.env_float("DLPROV_TEST_NUMBER", 1.5) == 1.5
    monkeypatch.setenv("DLPROV_TEST_NUMBER", "0.25")
    assert config.env_float("DLPROV_TEST_NUMBER", 1.5) == 0.25
    monkeypatch.setenv("DLPROV_TEST_NUMBER", "soon")
    with caplog.at_level(logging.WARNING):
        assert config.env_float("DLPROV_TEST_NUMBER", 1.5) == 1.5
    assert "DLPROV_TEST_NUMBER='soon' is not a number" in caplog.text
