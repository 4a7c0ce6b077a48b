"""A collector that is down: nothing that returned is lost, and no command is needed (issue 12).

A real training-like script (``scripts/chaos_kit.py``'s trainer) sends OTLP/HTTP to a DLProv
collector process (loopback) that is not running yet:

- it comes up while the trainer runs: the running trainer stores everything by itself;
- it comes up only after the trainer ended (normally, or killed with SIGKILL): the next
  DLProv process that talks to that endpoint (a short ``configure(endpoint=...)`` process)
  stores what the trainer journalled.

Rows are counted through the collector's SQL endpoint by a new process (``dlprov sql
--endpoint``), which stores nothing itself.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dlprov_otel.config import free_port
from scripts import chaos_kit as chaos
from tests.collector_proc import CollectorProcess


def _collector_not_started(directory: Path) -> CollectorProcess:
    """A collector on fresh free ports with its own store, not started yet."""
    directory.mkdir(parents=True, exist_ok=True)
    http_port = free_port()
    grpc_port = free_port()
    while grpc_port == http_port:
        grpc_port = free_port()
    return CollectorProcess(
        store=directory / "store", log=directory / "collector.log", http_port=http_port, grpc_port=grpc_port
    )


def test_collector_up_during_the_run_gets_everything_from_the_running_trainer(tmp_path, subprocess_env):
    spool = Path(subprocess_env["DLPROV_SPOOL_DIR"])
    collector = _collector_not_started(tmp_path / "collector")
    trainer = chaos.Trainer(tmp_path, collector.url, subprocess_env).start()
    try:
        down_until = trainer.wait_returned(150)  # recording while nothing listens
        assert not any(spool.glob("journal/*/*.ckpt")), "nothing can have been committed yet"
        collector.start()
        # the running trainer's retries reach the collector: its journal gets a checkpoint
        chaos.wait_until(lambda: any(spool.glob("journal/*/*.ckpt")), 300, "a first commit", trainer.proc)
        trainer.wait_returned(trainer.returned() + 50)
        assert trainer.stop() == 0, trainer.output()[-3000:]
        assert not chaos.journals(spool), "the running trainer left spans unstored"
        counted = chaos.count(subprocess_env, trainer.returned(), endpoint=collector.url)
    finally:
        trainer.kill()
        collector.stop()
    assert counted.emitted >= down_until + 50
    assert (counted.stored, counted.rows, counted.lost) == (counted.emitted, counted.emitted, 0)
    assert counted.status == "FINISHED"


@pytest.mark.parametrize("end", ["exit", "sigkill"])
def test_collector_up_after_the_run_gets_everything_from_the_next_process(tmp_path, subprocess_env, end):
    spool = Path(subprocess_env["DLPROV_SPOOL_DIR"])
    collector = _collector_not_started(tmp_path / "collector")
    trainer = chaos.Trainer(tmp_path, collector.url, subprocess_env, limit=0 if end == "sigkill" else 150).start()
    try:
        if end == "sigkill":
            trainer.wait_returned(120)
            assert trainer.signal(signal.SIGKILL) == -signal.SIGKILL
        else:
            assert trainer.wait() == 0, trainer.output()[-3000:]  # the training was not broken
        returned = trainer.returned()
        assert chaos.journals(spool), "a run that could not send anything left no journal"
        collector.start()
        left = chaos.next_process_for_endpoint(subprocess_env, tmp_path, collector.url, spool)
        assert left == 0, "the next process that talks to the endpoint did not store the journal"
        assert not chaos.journals(spool)
        counted = chaos.count(subprocess_env, returned, endpoint=collector.url)
    finally:
        trainer.kill()
        collector.stop()
    assert returned >= 120
    assert counted.lost == 0 and counted.stored == returned
    assert counted.duplicated == 0
    assert counted.in_flight <= 1  # the call in flight at the kill may be stored too
    assert counted.status == ("RUNNING" if end == "sigkill" else "FINISHED")


SHORT = "import sys, dlprov_otel; dlprov_otel.configure(endpoint=sys.argv[1])"


def test_a_short_next_process_stores_the_journal(tmp_path, subprocess_env):
    """Two dead runs' journals: one stored by a process that only calls configure(endpoint=...),
    one by `dlprov replay --endpoint`."""
    collector = _collector_not_started(tmp_path / "collector")
    ways = {
        "configure": [sys.executable, "-c", SHORT, collector.url],
        "replay": [sys.executable, "-m", "dlprov_otel.cli", "replay", "--endpoint", collector.url],
    }
    envs = {way: {**subprocess_env, "DLPROV_SPOOL_DIR": str(tmp_path / way / "spool")} for way in ways}
    trainers = {
        way: chaos.Trainer(tmp_path / way, collector.url, envs[way], limit=60, run=way).start() for way in ways
    }
    counted = {}
    try:
        for way, trainer in trainers.items():
            assert trainer.wait() == 0, trainer.output()[-3000:]
            assert chaos.journals(Path(envs[way]["DLPROV_SPOOL_DIR"]))
        collector.start()
        for way, command in ways.items():
            res = subprocess.run(command, env=envs[way], capture_output=True, text=True, timeout=300)
            assert res.returncode == 0, res.stderr[-3000:]
            counted[way] = chaos.count(envs[way], 60, endpoint=collector.url, run=way)
    finally:
        for trainer in trainers.values():
            trainer.kill()
        collector.stop()
    for way in ways:
        assert (counted[way].stored, counted[way].lost) == (60, 0), way
        assert not chaos.journals(Path(envs[way]["DLPROV_SPOOL_DIR"])), way
