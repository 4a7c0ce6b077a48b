"""A collector that answers slowly: what is in flight when the trainer exits is not lost (issue 14).

The collector process waits ``--ingest-delay`` seconds before it stores each request, so the
trainer (``scripts/chaos_kit.py``'s training-like script, OTLP/HTTP) ends while a batch is
still unanswered and its exit flush is bounded by ``DLPROV_SHUTDOWN_TIMEOUT``. The journal
keeps what was not acknowledged and the next process that talks to the endpoint stores it;
without a journal (``DLPROV_JOURNAL=0``) the exit spools it and ``dlprov replay`` sends it.
Emitted vs stored is counted by a new process through the SQL endpoint.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from scripts import chaos_kit as chaos
from tests.collector_proc import start_collector

DELAY = 8.0  # seconds the collector waits before it stores a request (past the exit flush: 1 s + 5 s)


@pytest.mark.parametrize("journal", ["journal", "no-journal"])
def test_a_slow_collector_loses_nothing_in_flight_at_exit(tmp_path, subprocess_env, journal):
    spool = Path(subprocess_env["DLPROV_SPOOL_DIR"])
    collector = start_collector(tmp_path / "collector", extra_args=["--ingest-delay", str(DELAY)])
    env = {**subprocess_env, "DLPROV_SHUTDOWN_TIMEOUT": "1"}  # exits before the last answer comes
    if journal == "no-journal":
        env["DLPROV_JOURNAL"] = "0"
    trainer = chaos.Trainer(tmp_path, collector.url, env, limit=120, pause=0.02).start()
    try:
        started = time.monotonic()
        assert trainer.wait() == 0, trainer.output()[-3000:]
        took = time.monotonic() - started
        returned = trainer.returned()
        assert returned == 120
        left_at_exit = chaos.journals(spool) if journal == "journal" else list(spool.glob("*.otlp.pb"))
        assert left_at_exit, "the trainer waited for every slow answer: nothing was in flight at its exit"
        if journal == "journal":
            left = chaos.next_process_for_endpoint(subprocess_env, tmp_path, collector.url, spool)
            assert left == 0, "the next process that talks to the endpoint did not store the journal"
        else:
            replay = [sys.executable, "-m", "dlprov_otel.cli", "replay", "--endpoint", collector.url,
                      "--spool-dir", str(spool)]
            res = subprocess.run(replay, env=subprocess_env, capture_output=True, text=True, timeout=300)
            assert res.returncode == 0, res.stderr[-3000:]
            assert not list(spool.glob("*.otlp.pb")), "dlprov replay left spooled spans"
        counted = chaos.count(subprocess_env, returned, endpoint=collector.url)
    finally:
        trainer.kill()
        collector.stop()
    assert (counted.stored, counted.rows, counted.lost, counted.duplicated) == (returned, returned, 0, 0)
    assert counted.status == "FINISHED"
    print(f"trainer ran {took:.1f} s against a collector answering after {DELAY} s; "
          f"{len(left_at_exit)} {journal} file(s) left at exit; {counted.stored} of {returned} stored after replay")
