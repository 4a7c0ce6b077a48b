"""Faults a training job meets, counted: what returned from the recording call vs what is stored.

Each test runs a training-like script in its own process on a real embedded store (monetdbe),
hurts it (SIGKILL at a random instant, SIGTERM/SIGHUP/SIGINT, the store held by another
process), and then counts, through a new process, the rows that reached the store. The
script writes a line to an unbuffered file after each recording call returned: those are
the emissions that must never be lost.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# A user's loop: epochs recorded with the Pythonic API, at ~100 Hz, forever (until stopped).
TRAIN = r"""
import os, sys, time
import dlprov_otel

store, out, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
dlprov_otel.configure(store=store)
fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
with dlprov_otel.execution(os.environ.get("RUN", "run"), dataflow="mnist"):
    with dlprov_otel.task("trainmodel", inputs={"itrainmodel": {"optimizer_name": "sgd", "learning_rate": 0.1,
                                                                "num_epochs": limit, "num_layers": 2}}) as t:
        epoch = 0
        while limit <= 0 or epoch < limit:
            t.output("otrainmodel", timestamp=time.strftime("%H:%M:%S"), elapsed_time=0.01, loss=1.0 / (epoch + 1),
                     accuracy=0.5, val_loss=None, val_accuracy=None, epoch=epoch)
            os.write(fd, b"%d\n" % epoch)
            epoch += 1
            time.sleep(0.01)
import threading
print("done threads", threading.active_count(), flush=True)
"""


def _start(tmp_path: Path, env: dict[str, str], store: Path, limit: int = 0, run: str = "run") -> tuple:
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    out = tmp_path / f"{run}.returned"
    proc = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", str(script), str(store), str(out), str(limit)],
        env={**env, "RUN": run},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_stop_signals,
    )
    return proc, out


def _default_stop_signals() -> None:
    """The job starts with the stop signals' default actions, as a scheduler starts it, even when
    the tests themselves run under ``nohup`` (which would make the trainer ignore SIGHUP)."""
    for num in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(num, signal.SIG_DFL)


def _ended(proc: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """``communicate`` that, when the process outlives ``timeout``, fails with every thread's stack
    (faulthandler dumps them on SIGABRT) instead of a bare timeout."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        _, err = proc.communicate(timeout=60)
        raise AssertionError(f"the process did not end within {timeout} s; its threads:\n{err[-6000:]}") from None


def _returned(out: Path) -> int:
    return len(out.read_text().splitlines()) if out.exists() else 0


def _wait_returned(out: Path, proc: subprocess.Popen, n: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while _returned(out) < n:
        if proc.poll() is not None:
            raise AssertionError(f"the training died early: {proc.communicate()[1][-2000:]}")
        assert time.monotonic() < deadline, f"fewer than {n} epochs in {timeout} s"
        time.sleep(0.05)


def _sql(env: dict[str, str], store: Path, sql: str) -> list[list[str]]:
    """Through a new process, as a user would (it also replays what dead processes journalled)."""
    res = subprocess.run(
        [sys.executable, "-m", "dlprov_otel.cli", "sql", "--store", str(store), "--format", "csv", sql],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    return [line.split(",") for line in res.stdout.strip().splitlines()[1:]]


def _stored(env: dict[str, str], store: Path, run: str = "run") -> tuple[int, int]:
    rows = _sql(
        env,
        store,
        f"""SET SCHEMA "mnist"; SELECT count(*), count(DISTINCT epoch) FROM otrainmodel
                               WHERE execution_tag = '{run}'""",
    )
    return int(rows[0][0]), int(rows[0][1])


def _status(env: dict[str, str], store: Path, run: str = "run") -> tuple[str, str]:
    rows = _sql(env, store, f"SELECT status, error FROM dataflow_execution WHERE tag = '{run}'")
    return rows[0][0], rows[0][1]


def _journals(env: dict[str, str]) -> list[Path]:
    return sorted(Path(env["DLPROV_SPOOL_DIR"]).glob("journal/*/*.jnl"))


@pytest.mark.parametrize("round_", range(5))
def test_sigkill_at_a_random_instant_loses_nothing_that_returned(tmp_path, subprocess_env, round_):
    rng = random.Random(round_)
    store = tmp_path / "store"
    proc, out = _start(tmp_path, subprocess_env, store)
    _wait_returned(out, proc, rng.randint(5, 60))
    time.sleep(rng.uniform(0.0, 1.5))  # the random instant
    proc.kill()
    proc.wait()
    returned = _returned(out)
    assert proc.returncode == -signal.SIGKILL
    assert _journals(subprocess_env), "the dead process left no journal"
    rows, epochs = _stored(subprocess_env, store)
    # every emission that returned is stored, once; at most the one in flight at the kill more
    assert returned <= epochs <= returned + 1
    assert rows == epochs
    assert not _journals(subprocess_env), "the replayed journal was not removed"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_stop_signals_lose_nothing_and_end_the_run_terminated(tmp_path, subprocess_env, signum):
    store = tmp_path / "store"
    proc, out = _start(tmp_path, subprocess_env, store)
    _wait_returned(out, proc, 40)
    proc.send_signal(signum)
    _, err = _ended(proc, 120)
    returned = _returned(out)
    # the process ends as it would have without DLProv: killed by the signal (SIGINT: Python's
    # KeyboardInterrupt, which ends the interpreter by SIGINT too)
    assert proc.returncode == -signum, err[-2000:]
    rows, epochs = _stored(subprocess_env, store)
    assert returned <= epochs <= returned + 1
    assert rows == epochs
    status, error = _status(subprocess_env, store)
    assert status == "TERMINATED"
    assert signal.Signals(signum).name in error


def test_a_handler_of_the_script_still_runs_and_decides(tmp_path, subprocess_env):
    """A script that stops gracefully on SIGTERM keeps its own behaviour: it finishes."""
    script = tmp_path / "graceful.py"
    script.write_text(
        TRAIN.replace(
            "import dlprov_otel\n",
            "import dlprov_otel, signal\nSTOP = []\nsignal.signal(signal.SIGTERM, lambda *a: STOP.append(1))\n",
            1,
        )
        .replace(
            "dlprov_otel.configure(store=store)\n",
            "signal.signal(signal.SIGTERM, lambda *a: STOP.append(1))\ndlprov_otel.configure(store=store)\n",
        )
        .replace("while limit <= 0 or epoch < limit:", "while not STOP:")
    )
    store, out = tmp_path / "store", tmp_path / "graceful.returned"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store), str(out), "0"],
        env=subprocess_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_returned(out, proc, 20)
    proc.send_signal(signal.SIGTERM)
    stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert "done threads" in stdout
    rows, _ = _stored(subprocess_env, store)
    assert rows == _returned(out)
    assert _status(subprocess_env, store) == ("FINISHED", "")


HOLD = r"""
import sys, time
from pathlib import Path
from dlprov_otel.store import open_store
store = open_store(sys.argv[1])
Path(sys.argv[2]).write_text("held")
while Path(sys.argv[2]).exists():
    time.sleep(0.05)
store.close()
"""


def _hold(tmp_path: Path, env: dict[str, str], store: Path) -> tuple[subprocess.Popen, Path]:
    """Another process holds the embedded store (MonetDB admits one) until the flag goes."""
    flag = tmp_path / "held.flag"
    script = tmp_path / "hold.py"
    script.write_text(HOLD)
    holder = subprocess.Popen(
        [sys.executable, str(script), str(store), str(flag)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not flag.exists():
        assert holder.poll() is None, holder.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return holder, flag


def test_store_held_by_another_process_while_training_loses_nothing(tmp_path, subprocess_env):
    """The store is unavailable for the whole run, then released: no command is needed."""
    store = tmp_path / "store"
    holder, flag = _hold(tmp_path, subprocess_env, store)
    try:  # exporting from the start (DLPROV_STORE_DELAY=0): the running process retries
        proc, out = _start(tmp_path, {**subprocess_env, "DLPROV_STORE_DELAY": "0"}, store, limit=150)
        stdout, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
        assert _returned(out) == 150
        # the store was retried all along, and retrying does not pile up threads
        # (main, span builder, exporter, and at most an open attempt in flight with its worker)
        assert int(stdout.split("done threads")[1].split()[0]) <= 6, stdout
        assert _journals(subprocess_env), "a run that could not store anything left no journal"
    finally:
        flag.unlink()
        holder.communicate(timeout=120)
    rows, epochs = _stored(subprocess_env, store)
    assert (rows, epochs) == (150, 150)
    assert _status(subprocess_env, store)[0] == "FINISHED"
    assert not _journals(subprocess_env)


def test_store_released_during_training_is_written_by_the_running_process(tmp_path, subprocess_env):
    store = tmp_path / "store"
    holder, flag = _hold(tmp_path, subprocess_env, store)
    proc, out = _start(tmp_path, {**subprocess_env, "DLPROV_STORE_DELAY": "0"}, store, limit=400)
    try:
        _wait_returned(out, proc, 50)
    finally:
        flag.unlink()  # the store comes back while the training runs
        holder.communicate(timeout=120)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    assert not _journals(subprocess_env), "the running process should have stored and removed its journal"
    assert _stored(subprocess_env, store) == (400, 400)


def test_flush_is_true_only_when_stored(tmp_path, subprocess_env):
    script = tmp_path / "flush.py"
    script.write_text(
        "import sys, dlprov_otel\n"
        "dlprov_otel.configure(store=sys.argv[1])\n"
        "with dlprov_otel.execution('run', dataflow='mnist'):\n"
        "    with dlprov_otel.task('trainmodel') as t:\n"
        "        t.output('otrainmodel', timestamp='t', elapsed_time=1, loss=1, accuracy=1, val_loss=None,"
        " val_accuracy=None, epoch=0)\n"
        "        print('flush', dlprov_otel.flush(3), dlprov_otel.stats()['pending'] > 0, flush=True)\n"
    )
    store = tmp_path / "store"
    holder, flag = _hold(tmp_path, subprocess_env, store)
    try:
        res = subprocess.run(
            [sys.executable, str(script), str(store)],
            env={**subprocess_env, "DLPROV_SHUTDOWN_TIMEOUT": "2"},
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        flag.unlink()
        holder.communicate(timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "flush False True" in res.stdout  # not stored, and it says so
    assert _stored(subprocess_env, store) == (1, 1)  # the next process stored it


def test_reserved_tags_are_refused_at_the_call(tmp_path, subprocess_env):
    for tag in ("tmp", "sys", "json", "information_schema"):
        res = subprocess.run(
            [sys.executable, "-c", f"import dlprov_otel; dlprov_otel.Dataflow({tag!r}, predefined=True)"],
            env=subprocess_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 1
        assert f"dataflow tag {tag!r} is reserved" in res.stderr
