"""Disk full, then freed: nothing that returned is lost, the error says "disk full", the
training is not broken (issue 12).

Real tmpfs mounts (root only: ``mount -t tmpfs -o size=...``) that are filled to the last
byte by a file, and freed by removing it; a real training-like script (``scripts/chaos_kit.py``'s
trainer) on a real embedded store; rows counted afterwards by a new process.

- the journal's directory (``DLPROV_SPOOL_DIR``) full: spans still reach the store through
  the in-memory path;
- the embedded store's disk full: every span stays in the journal (elsewhere), and once
  space is back they are stored with no command (the next process that opens the store).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from scripts import chaos_kit as chaos


@pytest.fixture(autouse=True)
def _tmpfs_allowed() -> None:
    """These tests mount a small tmpfs: that needs root (CI runs as root). Elsewhere they fail
    with this line rather than skip."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.fail("the disk-full tests mount a small tmpfs: run them as root")


def test_journal_disk_full_then_freed_loses_nothing(tmp_path, subprocess_env):
    store = tmp_path / "store"
    with chaos.tmpfs(tmp_path / "spoolfs", "1m") as mount:
        spool = mount / "spool"
        (spool / "journal").mkdir(parents=True)
        env = {**subprocess_env, "DLPROV_SPOOL_DIR": str(spool)}
        filler = chaos.fill(mount)
        assert shutil.disk_usage(mount).free == 0
        trainer = chaos.Trainer(tmp_path, str(store), env).start()
        try:
            full_until = trainer.wait_returned(60)
            filler.unlink()  # space is back while the training runs
            trainer.wait_returned(full_until + 60)
            assert trainer.stop() == 0, trainer.output()[-3000:]  # the training was not broken
        finally:
            trainer.kill()
        log = trainer.output()
        disk_full = [line for line in log.splitlines() if "disk full" in line]
        assert disk_full, log[-3000:]
        assert "No space left on device" in disk_full[0]
        assert log.count("disk full") == 1, "the error is said once, not once per span"
        assert not chaos.journals(spool), "the run stored everything: its journal should be gone"
        counted = chaos.count(env, trainer.returned(), store=store)
    assert counted.emitted > 120
    assert (counted.stored, counted.rows, counted.lost) == (counted.emitted, counted.emitted, 0)
    assert counted.status == "FINISHED"


def _fill_after_first_commit(trainer: chaos.Trainer, spool: Path, mount: Path) -> int:
    """Fill the store's disk once the store is open and has committed; returns the epochs
    returned by then."""
    chaos.wait_until(lambda: any(spool.glob("journal/*/*.ckpt")), 300, "a first commit", trainer.proc)
    n = trainer.returned()
    chaos.fill(mount)
    return n


def test_store_disk_full_keeps_everything_and_stores_it_once_freed(tmp_path, subprocess_env):
    env = {**subprocess_env, "DLPROV_STORE_DELAY": "0"}  # the run opens its store at once
    spool = Path(env["DLPROV_SPOOL_DIR"])
    with chaos.tmpfs(tmp_path / "storefs", "24m") as mount:
        trainer = chaos.Trainer(tmp_path, str(mount / "store"), env, pause=0.002).start()
        try:
            full_at = _fill_after_first_commit(trainer, spool, mount)
            trainer.wait_returned(full_at + 1500)  # enough to need more space than is left
            assert trainer.stop() == 0, trainer.output()[-3000:]
            log = trainer.output()
            assert "disk full" in log and "No space left on device" in log, log[-3000:]
            # nothing could be stored since the disk filled up: all of it is in the journal
            assert chaos.journals(spool), "the spans that could not be stored left no journal"
        finally:
            trainer.kill()
            (mount / "filler").unlink(missing_ok=True)  # space is back
        counted = chaos.count(env, trainer.returned(), store=mount / "store")  # a new process, no command
        assert not chaos.journals(spool), "the journal was stored but not removed"
    assert counted.emitted > full_at + 1500 - 1
    assert (counted.stored, counted.rows, counted.lost) == (counted.emitted, counted.emitted, 0)
    assert counted.status == "FINISHED"


@pytest.mark.xfail(
    strict=True,
    reason="embedded MonetDB (monetdbe 0.11) cannot reopen a database in a process where a write failed "
    "on a full disk: the connection reads 'The connection has been closed' and every reopen "
    "'Catalogue not available', also after space is back (dlprov_otel/store/backends.py). The "
    "next process stores it all: the run's drainer at its exit (test below), or the next run.",
)
def test_store_disk_freed_during_the_run_is_stored_by_the_running_process(tmp_path, subprocess_env):
    env = {**subprocess_env, "DLPROV_STORE_DELAY": "0", "DLPROV_HANDOFF": "0"}  # the run's own process only
    spool = Path(env["DLPROV_SPOOL_DIR"])
    with chaos.tmpfs(tmp_path / "storefs", "24m") as mount:
        trainer = chaos.Trainer(tmp_path, str(mount / "store"), env, pause=0.002).start()
        try:
            full_at = _fill_after_first_commit(trainer, spool, mount)
            n = trainer.wait_returned(full_at + 1500)
            (mount / "filler").unlink()
            trainer.wait_returned(n + 300)
            assert trainer.stop() == 0, trainer.output()[-3000:]
            left = chaos.journals(spool)
        finally:
            trainer.kill()
        counted = chaos.count(env, trainer.returned(), store=mount / "store")
    assert (counted.stored, counted.lost) == (counted.emitted, 0)
    assert not left, "the running process did not store what it recorded after space came back"


def test_store_disk_freed_during_the_run_is_stored_at_its_exit_with_no_command(tmp_path, subprocess_env):
    """The run's process cannot write its embedded store again after the disk filled; at exit it
    hands its journal to a drainer (a new process), which stores it: no command, 0 lost."""
    env = {**subprocess_env, "DLPROV_STORE_DELAY": "0"}
    spool = Path(env["DLPROV_SPOOL_DIR"])
    with chaos.tmpfs(tmp_path / "storefs", "24m") as mount:
        trainer = chaos.Trainer(tmp_path, str(mount / "store"), env, pause=0.002).start()
        try:
            full_at = _fill_after_first_commit(trainer, spool, mount)
            n = trainer.wait_returned(full_at + 1500)
            (mount / "filler").unlink()  # space is back while the training runs
            trainer.wait_returned(n + 300)
            assert trainer.stop() == 0, trainer.output()[-3000:]
            assert "a drainer stores the" in trainer.output(), trainer.output()[-3000:]
        finally:
            trainer.kill()
        counted = chaos.count(env, trainer.returned(), store=mount / "store")  # waits for the drainer
        left = chaos.journals(spool)
        drained = (spool / "journal" / "drain.log").read_text()
    assert (counted.stored, counted.rows, counted.lost) == (counted.emitted, counted.emitted, 0)
    assert counted.status == "FINISHED"
    assert not left, drained
    assert "stored" in drained
