"""The hand-off of an embedded store at exit (``dlprov_otel.drain``), counted: a run that ends
before it needed its store never loads MonetDB; a detached drainer stores its journal after it
exits, and whoever opens the store next waits for that drainer and finds every row.

Each test runs a user's script in its own process on a real embedded store (monetdbe), counts
the rows whose recording call returned, and reads the store back from another process.
"""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlprov_otel.store import drainlock

# A user's short script: a few epochs through the Pythonic API, then the process ends.
SCRIPT = r"""
import json, os, sys
import dlprov_otel

store, epochs = sys.argv[1], int(sys.argv[2])
dlprov_otel.configure(store=store)
with dlprov_otel.execution(os.environ.get("RUN", "run"), dataflow="mnist"):
    with dlprov_otel.task("trainmodel", inputs={"itrainmodel": {"optimizer_name": "adam", "learning_rate": 0.001,
                                                                "num_epochs": epochs, "num_layers": 3}}) as t:
        for epoch in range(epochs):
            t.output("otrainmodel", timestamp="", elapsed_time=0.1, loss=1.0 / (epoch + 1), accuracy=0.5,
                     val_loss=0.6, val_accuracy=0.4, epoch=epoch)
asked = None
if os.environ.get("ASK_STORE") == "flush":  # as the README shows it
    assert dlprov_otel.flush()
    asked = dlprov_otel.get_store().query('SELECT count(*) FROM "mnist"."otrainmodel"').rows[0][0]
elif os.environ.get("ASK_STORE"):  # no flush: get_store() stores what was recorded first
    asked = dlprov_otel.get_store().query('SELECT count(*) FROM "mnist"."otrainmodel"').rows[0][0]
print(json.dumps({"monetdbe_loaded": "monetdbe" in sys.modules, "stats": dlprov_otel.stats(), "asked": asked}),
      flush=True)
"""

# A reader: a new process that opens the store as any reader does and prints one query's rows.
READ = r"""
import sys
from dlprov_otel.store import open_store
store = open_store(sys.argv[1])
print(store.query(sys.argv[2]).rows)
store.close()
"""
RUN_ROWS = "SELECT count(*) FROM \"mnist\".\"otrainmodel\" WHERE execution_tag = 'run'"

# A dashboard, say: holds the store until a line comes on its stdin.
HOLD = r"""
import sys
from dlprov_otel.store import open_store
s = open_store(sys.argv[1])
print('held', flush=True)
sys.stdin.readline()
s.close()
"""


def _run(tmp_path: Path, env: dict[str, str], store: Path, epochs: int, **extra: str) -> dict:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), str(store), str(epochs)],
        env={**env, **extra},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _read(env: dict[str, str], store: Path, sql: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", READ, str(store), sql], env=env, capture_output=True, text=True,
                          timeout=300)


def _rows(env: dict[str, str], store: Path, sql: str) -> str:
    """The rows of ``sql``, as the reader printed them."""
    proc = _read(env, store, sql)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()[-1]


def _count(env: dict[str, str], store: Path) -> int:
    """Rows of the run, read by a new process that opens the store as any reader does."""
    return ast.literal_eval(_rows(env, store, RUN_ROWS))[0][0]


def _hold(env: dict[str, str], store: Path) -> subprocess.Popen:
    """A process that holds the store (open, and ready) until ``communicate("release\\n")``."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(store)], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held", holder.communicate()[1]  # readiness
    return holder


def _journals(env: dict[str, str]) -> list[Path]:
    return sorted(Path(env["DLPROV_SPOOL_DIR"]).glob("journal/*/*.jnl"))


def test_a_short_run_never_loads_monetdb_and_a_reader_right_after_finds_every_row(tmp_path, subprocess_env):
    store = tmp_path / "store"
    out = _run(tmp_path, subprocess_env, store, 25)
    assert out["monetdbe_loaded"] is False  # the run's process never started MonetDB
    assert out["stats"]["emitted"] >= 25 and out["stats"]["dropped"] == 0
    # the reader starts while the drainer may still be storing: it waits for it
    assert _count(subprocess_env, store) == 25
    assert not drainlock.held_by_drainer(store)
    assert not _journals(subprocess_env), "the drainer removes the journal once its rows are read back"
    log = (Path(subprocess_env["DLPROV_SPOOL_DIR"]) / "journal" / "drain.log").read_text()
    assert "stored" in log and "Traceback" not in log
    cpu = re.search(r"drainer: stored \d+ span\(s\) from 1 journal\(s\) into .* \(CPU ([0-9.]+) s\)", log)
    assert cpu and 0 < float(cpu.group(1)) < 60  # what bench/bench_peers.py reads as the drainer's cost


def test_runs_one_after_another_each_hand_off_and_nothing_is_lost(tmp_path, subprocess_env):
    """The next run starts while the previous run's drainer may still hold the store."""
    store = tmp_path / "store"
    for i in range(3):
        out = _run(tmp_path, subprocess_env, store, 10 + i, RUN=f"r{i}")
        assert out["monetdbe_loaded"] is False
    rows = _rows(subprocess_env, store, 'SELECT execution_tag, count(*) FROM "mnist"."otrainmodel" '
                 "GROUP BY execution_tag ORDER BY execution_tag")
    assert rows == str([("r0", 10), ("r1", 11), ("r2", 12)])
    assert not _journals(subprocess_env)


def test_a_store_held_at_exit_is_stored_by_the_drainer_once_released(tmp_path, subprocess_env):
    """A dashboard holds the store when the run ends: the drainer waits, no command is needed."""
    store = tmp_path / "store"
    holder = _hold(subprocess_env, store)
    try:
        out = _run(tmp_path, subprocess_env, store, 12)
        assert out["monetdbe_loaded"] is False
        assert _journals(subprocess_env), "the store is held: the journal waits for it"
    finally:
        holder.communicate("release\n", timeout=120)
    assert holder.returncode == 0, holder.stderr
    assert _count(subprocess_env, store) == 12
    assert not _journals(subprocess_env)


@pytest.mark.parametrize("ask", ["flush", "get_store"])
def test_asking_for_the_store_opens_it_in_the_run_itself(tmp_path, subprocess_env, ask):
    """``get_store()`` stores what the run recorded before it answers, with or without a
    ``flush()`` first: the run's own query sees its rows."""
    store = tmp_path / "store"
    out = _run(tmp_path, subprocess_env, store, 7, ASK_STORE=ask)
    assert out["monetdbe_loaded"] is True
    assert out["asked"] == 7
    assert _count(subprocess_env, store) == 7
    assert not _journals(subprocess_env)


def test_a_run_longer_than_the_store_delay_stores_rows_while_it_runs(tmp_path, subprocess_env):
    """DLPROV_STORE_DELAY=0: the run opens its store at once and writes it itself (no drainer)."""
    store = tmp_path / "store"
    out = _run(tmp_path, subprocess_env, store, 9, DLPROV_STORE_DELAY="0")
    assert out["monetdbe_loaded"] is True  # opened when configured
    assert not _journals(subprocess_env)  # stored, read back and removed by the run itself
    assert not drainlock.lock_file(store).exists()  # no drainer was started
    assert _count(subprocess_env, store) == 9


def test_hand_off_can_be_turned_off(tmp_path, subprocess_env):
    store = tmp_path / "store"
    out = _run(tmp_path, subprocess_env, store, 5, DLPROV_HANDOFF="0")
    assert out["monetdbe_loaded"] is False  # still lazy during the run; the exit stores it
    assert not _journals(subprocess_env)
    assert not drainlock.lock_file(store).exists()
    assert _count(subprocess_env, store) == 5


def test_a_run_that_ends_while_another_drainer_stores_is_waited_for_too(tmp_path, subprocess_env):
    """Two runs end close together: the first one's drainer holds the lock while the second
    run ends, so the second one's drainer waits for it. When the first drainer releases the
    lock, a reader must still wait (for the queued drainer), not find the second run missing."""
    store = tmp_path / "store"
    first_drainer = drainlock.acquire(store)  # the first run's drainer, storing now
    assert first_drainer is not None
    try:
        out = _run(tmp_path, subprocess_env, store, 14)
        assert out["monetdbe_loaded"] is False
        assert _journals(subprocess_env), "the drainer of the second run waits for the first one"
        assert drainlock.held_by_drainer(store)
    finally:
        os.close(first_drainer)  # the first drainer is done
    # no moment between the two drainers at which the store looks free
    assert drainlock.held_by_drainer(store), "the queued drainer of the second run is not seen"
    assert drainlock.wait_released(store, timeout=120)
    assert not _journals(subprocess_env), "free while the second run's journal waits"
    assert _count(subprocess_env, store) == 14


def test_a_reader_does_not_wait_for_a_drainer_that_waits_for_the_same_holder(tmp_path, subprocess_env):
    """A dashboard holds the store: the drainer of a run waits for it, and so would a reader,
    for DLPROV_DRAIN_WAIT (120 s) in silence, only to fail then as it does at once without a
    drainer. It fails at once; the rows arrive once the dashboard is stopped."""
    store = tmp_path / "store"
    holder = _hold(subprocess_env, store)
    log = Path(subprocess_env["DLPROV_SPOOL_DIR"]) / "journal" / "drain.log"
    try:
        _run(tmp_path, subprocess_env, store, 6)
        deadline = time.monotonic() + 120
        while "cannot open" not in (log.read_text() if log.exists() else ""):  # the drainer met the holder
            assert time.monotonic() < deadline, "the drainer never tried the store"
            time.sleep(0.05)
        started = time.monotonic()
        proc = _read({**subprocess_env, "DLPROV_DRAIN_WAIT": "60"}, store, RUN_ROWS)
        waited = time.monotonic() - started
        assert proc.returncode != 0 and "in use by another process" in proc.stderr, proc.stderr[-2000:]
        assert waited < 30, f"the reader waited {waited:.1f} s for a drainer that waits for the same holder"
    finally:
        holder.communicate("release\n", timeout=120)
    assert _count(subprocess_env, store) == 6
    assert not _journals(subprocess_env)


TORCH_SCRIPT = r"""
import sys, time, torch, torch.nn as nn, torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
torch.manual_seed(0)
x = torch.randn(256, 8); y = (x[:, 0] > 0).long()
train = DataLoader(TensorDataset(x, y), batch_size=32)
model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(2):
    for xb, yb in train:
        opt.zero_grad(); F.cross_entropy(model(xb), yb).backward(); opt.step()
print("ready", flush=True)
time.sleep(120)
"""


def test_sigterm_right_after_the_last_epoch_of_a_zero_code_torch_run_keeps_that_epoch(tmp_path, subprocess_env):
    pytest.importorskip("torch")
    store = tmp_path / "store"
    script = tmp_path / "torch_train.py"
    script.write_text(TORCH_SCRIPT)
    env = {**subprocess_env, "DLPROV_STORE": str(store)}
    proc = subprocess.Popen(["opentelemetry-instrument", sys.executable, str(script)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"  # both epochs ran; the last one's row may wait
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    rows = _rows(subprocess_env, store, "SELECT e.status, count(o.epoch) FROM dataflow_execution e "
                 "LEFT JOIN torch.otrainmodel o ON o.execution_tag = e.tag GROUP BY e.status")
    assert rows == str([("TERMINATED", 2)])


def test_a_new_journal_is_not_refused_by_another_process_probing_it(tmp_path, monkeypatch):
    """Four short runs on one store, 1 of 32 printed "no provenance journal ([Errno 11] ...)": a
    drainer's orphan scan held the brand-new journal for a moment. Here the probe is held."""
    import fcntl

    from dlprov_otel import journal as journal_mod

    monkeypatch.setattr(journal_mod.secrets, "token_hex", lambda n: "feedbeef")
    target = "monetdbe:" + str(tmp_path / "store")
    directory = journal_mod.journal_root(tmp_path / "spool") / journal_mod.target_key(target)
    directory.mkdir(parents=True)
    host = journal_mod.re.sub(r"[^A-Za-z0-9_.-]", "_", journal_mod.socket.gethostname())[:40]
    name = f"{host}-{os.getpid()}-feedbeef"
    probe = os.open(directory / f"{name}.jnl", os.O_RDONLY | os.O_CREAT, 0o600)  # an orphan scan, this instant
    try:
        fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
        j = journal_mod.Journal(tmp_path / "spool", target)
    finally:
        os.close(probe)
    try:
        assert j.path.exists() and not journal_mod.orphans(tmp_path / "spool", target)
    finally:
        j.close(delete=True)
