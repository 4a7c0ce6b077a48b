#!/usr/bin/env python
"""``make chaos``: rounds of random faults on a training job, counted (issue 12).

Each round runs a training-like script in its own process (epochs recorded with the Pythonic
API; after each recording call returned, the script appends the epoch to an unbuffered file:
those emissions must never be lost), hurts it with one fault picked at random, and then
counts, through a NEW DLProv process, the rows that reached the store:

- ``sigkill`` / ``sigterm``: the trainer killed at a random instant (embedded store);
- ``collector``: the trainer sends OTLP to a DLProv collector that is killed with SIGKILL
  mid-run and restarted later; the trainer itself ends normally, by SIGKILL or by SIGTERM;
- ``held``: the embedded store is held by another process, released mid-run or after the
  trainer exited;
- ``tmpfs-journal``: the journal's directory (``DLPROV_SPOOL_DIR``) is on a small tmpfs that
  is full, then freed mid-run;
- ``tmpfs-store``: the embedded store is on a tmpfs that fills up mid-run, then is freed;
- ``server`` (with ``--server``): the store is a MonetDB server (``scripts/monetdb.sh``) that
  is killed with SIGKILL mid-run and restarted.

Per round: emitted (returned) vs stored, lost (returned, not stored), duplicated (rows beyond
one per epoch), and the run's status (TERMINATED after SIGTERM, FINISHED after a normal end).
Exit status 1 if anything was lost or duplicated, a status is wrong, or a round failed.
tmpfs faults need root (``mount -t tmpfs``); without it they are replaced and said so.

    python scripts/chaos.py --rounds 20 --seed 1
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAULTS = ("sigkill", "sigterm", "collector", "held", "tmpfs-journal", "tmpfs-store")
SERVER_FAULT = "server"  # opt-in (--server): a MonetDB server built by scripts/monetdb.sh
RUN = "chaos"
WAIT = 300.0  # generous deadlines: the machine may be loaded

# A user's loop: epochs recorded with the Pythonic API until a limit or a stop file.
TRAINER = r"""
import os, sys, time
import dlprov_otel

target, out, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
stop = os.environ.get("CHAOS_STOP") or None
pause = float(os.environ.get("CHAOS_SLEEP", "0.01"))
if target.startswith(("http://", "https://")):
    dlprov_otel.configure(endpoint=target)
else:
    dlprov_otel.configure(store=target)
fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
with dlprov_otel.execution(os.environ.get("CHAOS_RUN", "chaos"), dataflow="mnist"):
    with dlprov_otel.task("trainmodel", inputs={"itrainmodel": {"optimizer_name": "sgd", "learning_rate": 0.1,
                                                                "num_epochs": limit, "num_layers": 2}}) as t:
        epoch = 0
        while (limit <= 0 or epoch < limit) and not (stop and os.path.exists(stop)):
            t.output("otrainmodel", timestamp=time.strftime("%H:%M:%S"), elapsed_time=0.01, loss=1.0 / (epoch + 1),
                     accuracy=0.5, val_loss=None, val_accuracy=None, epoch=epoch)
            os.write(fd, b"%d\n" % epoch)
            epoch += 1
            time.sleep(pause)
print("done", dlprov_otel.stats(), flush=True)
"""

# Holds the embedded store (MonetDB admits one process) until the flag file goes.
HOLDER = r"""
import sys, time
from pathlib import Path
from dlprov_otel.store import open_store
store = open_store(sys.argv[1])
Path(sys.argv[2]).write_text("held")
while Path(sys.argv[2]).exists():
    time.sleep(0.05)
store.close()
"""

# The next DLProv process that talks to an endpoint: it stores what dead processes journalled
# for it, by itself (no command); it waits until their journals are gone.
NEXT_PROCESS = r"""
import sys, time
from pathlib import Path
import dlprov_otel
from dlprov_otel import journal

endpoint, spool, patience = sys.argv[1], sys.argv[2], float(sys.argv[3])
own = Path(dlprov_otel.configure(endpoint=endpoint).stats()["journal"] or "")
directory = journal.journal_root(spool) / journal.target_key(endpoint)
deadline = time.monotonic() + patience
def left():
    return [p for p in directory.glob("*.jnl") if p != own]
while left() and time.monotonic() < deadline:
    time.sleep(0.1)
print("journals left:", len(left()), flush=True)
"""


# --- processes -------------------------------------------------------------------------------
def python_env(spool: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["DLPROV_SPOOL_DIR"] = str(spool)
    for name in ("DLPROV_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                 "DLPROV_STORE"):
        env.pop(name, None)
    return env


def _script(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    if not path.exists():
        path.write_text(text)
    return path


def wait_until(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` s or when ``proc`` died."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited first (status {proc.returncode})")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.05)


@dataclass
class Trainer:
    """The training-like script in its own process."""

    directory: Path
    target: str
    env: dict[str, str]
    limit: int = 0
    pause: float = 0.01
    name: str = "trainer"
    run: str = RUN  # the execution tag
    proc: subprocess.Popen | None = None

    @property
    def out(self) -> Path:
        return self.directory / f"{self.name}.returned"

    @property
    def stop_file(self) -> Path:
        return self.directory / f"{self.name}.stop"

    @property
    def log(self) -> Path:
        return self.directory / f"{self.name}.log"

    def start(self) -> Trainer:
        self.directory.mkdir(parents=True, exist_ok=True)
        script = _script(self.directory, "trainer.py", TRAINER)
        env = {**self.env, "CHAOS_STOP": str(self.stop_file), "CHAOS_SLEEP": str(self.pause), "CHAOS_RUN": self.run}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(script), self.target, str(self.out), str(self.limit)],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.directory,
            )
        return self

    def returned(self) -> int:
        """Emissions whose recording call returned."""
        try:
            return self.out.read_bytes().count(b"\n")
        except FileNotFoundError:
            return 0

    def wait_returned(self, n: int, timeout: float = WAIT) -> int:
        wait_until(lambda: self.returned() >= n, timeout, f"{self.name}: {n} epochs returned", self.proc)
        return self.returned()

    def stop(self, timeout: float = WAIT) -> int:
        """Ask the loop to end (a normal end) and wait for the exit status."""
        self.stop_file.write_text("stop")
        return self.wait(timeout)

    def signal(self, signum: int, timeout: float = WAIT) -> int:
        assert self.proc is not None
        self.proc.send_signal(signum)
        return self.wait(timeout)

    def wait(self, timeout: float = WAIT) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(60)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def run_sql(
    env: dict[str, str], sql: str, *, store: Path | str | None = None, endpoint: str | None = None
) -> list[list[str]]:
    """Rows of one query, through a new process (``dlprov sql``, which stores first what dead
    processes journalled for that store). A missing schema (nothing stored at all) is no rows."""
    where = ["--store", str(store)] if store is not None else ["--endpoint", str(endpoint)]
    res = subprocess.run(
        [sys.executable, "-m", "dlprov_otel.cli", "sql", *where, "--format", "csv", sql],
        env=env, capture_output=True, text=True, timeout=WAIT, cwd=ROOT,
    )
    if res.returncode != 0:
        if "missing" in res.stderr.lower() or "no such" in res.stderr.lower():
            return []
        raise RuntimeError(f"dlprov sql failed ({res.returncode}): {res.stderr[-1500:]}")
    return [row for row in csv.reader(io.StringIO(res.stdout))][1:]


@dataclass
class Count:
    emitted: int  # recording calls that returned
    stored: int  # of those, stored
    rows: int  # all rows of the run
    distinct: int  # distinct epochs stored (may be one more than emitted: the call in flight)
    status: str

    @property
    def lost(self) -> int:
        return self.emitted - self.stored

    @property
    def duplicated(self) -> int:
        return self.rows - self.distinct

    @property
    def in_flight(self) -> int:
        return self.distinct - self.stored


def count(env: dict[str, str], emitted: int, *, store: Path | str | None = None, endpoint: str | None = None,
          run: str = RUN) -> Count:
    """Emitted vs stored for one run, counted by a new process."""
    runs = f"FROM \"mnist\".otrainmodel WHERE execution_tag = '{run}'"
    rows = run_sql(
        env,
        f"SELECT count(*), count(DISTINCT epoch), count(DISTINCT CASE WHEN epoch < {emitted} THEN epoch END) {runs}",
        store=store, endpoint=endpoint,
    )
    total, distinct, stored = (int(v) for v in rows[0]) if rows else (0, 0, 0)
    status = run_sql(env, f"SELECT status FROM dataflow_execution WHERE tag = '{run}'", store=store, endpoint=endpoint)
    return Count(emitted, stored, total, distinct, status[0][0] if status else "-")


def journals(spool: Path) -> list[Path]:
    return sorted(spool.glob("journal/*/*.jnl"))


def next_process_for_endpoint(env: dict[str, str], directory: Path, endpoint: str, spool: Path) -> int:
    """Run the next DLProv process that talks to ``endpoint``; returns the journals it left."""
    script = _script(directory, "next_process.py", NEXT_PROCESS)
    res = subprocess.run(
        [sys.executable, str(script), endpoint, str(spool), str(WAIT)],
        env=env, capture_output=True, text=True, timeout=WAIT + 120, cwd=directory,
    )
    if res.returncode != 0 or "journals left:" not in res.stdout:
        raise RuntimeError(f"the next process failed ({res.returncode}): {res.stderr[-1500:]}")
    return int(res.stdout.rsplit("journals left:", 1)[1].split()[0])


@contextlib.contextmanager
def hold_store(directory: Path, env: dict[str, str], store: Path) -> Iterator[Path]:
    """Another process holds the embedded store while the block runs (or until the yielded
    flag file is removed)."""
    flag = directory / "held.flag"
    script = _script(directory, "holder.py", HOLDER)
    holder = subprocess.Popen(
        [sys.executable, str(script), str(store), str(flag)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=directory,
    )
    try:
        wait_until(flag.exists, WAIT, "the store holder", holder)
        yield flag
    finally:
        flag.unlink(missing_ok=True)
        try:
            holder.communicate(timeout=WAIT)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.communicate()


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``path`` (root only), unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True,
                   capture_output=True, text=True)
    try:
        yield path
    finally:
        for _ in range(50):
            if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)  # a child that has not quite exited may still hold a file
        else:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def tmpfs_available() -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    probe = Path(tempfile.mkdtemp(prefix="dlprov-chaos-probe-"))
    try:
        with tmpfs(probe, "64k"):
            return True
    except (subprocess.CalledProcessError, OSError):
        return False
    finally:
        with contextlib.suppress(OSError):
            probe.rmdir()


def fill(directory: Path) -> Path:
    """Fill the filesystem of ``directory`` to the last byte; returns the filler file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 16, 4096, 512, 1):  # big writes, then the last partial blocks
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    return filler


# --- the faults --------------------------------------------------------------------------------
@dataclass
class Outcome:
    count: Count
    expected_status: str | None  # None: any (a SIGKILL leaves RUNNING)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what went wrong besides the counts

    @property
    def status_ok(self) -> bool:
        return self.expected_status is None or self.count.status == self.expected_status


def fault_signal(rng: random.Random, d: Path, signum: int) -> Outcome:
    spool, store = d / "spool", d / "store"
    env = python_env(spool)
    trainer = Trainer(d, str(store), env).start()
    try:
        trainer.wait_returned(rng.randint(5, 80))
        time.sleep(rng.uniform(0.0, 1.5))  # the random instant of the fault
        status = trainer.signal(signum)
    finally:
        trainer.kill()
    problems = [] if status == -signum else [f"exit status {status}, not {-signum}"]
    c = count(env, trainer.returned(), store=store)
    return Outcome(c, "TERMINATED" if signum == signal.SIGTERM else None, [f"exit {status}"], problems)


def fault_collector(rng: random.Random, d: Path) -> Outcome:
    from tests.collector_proc import start_collector

    spool = d / "spool"
    env = python_env(spool)
    collector = start_collector(d / "collector")
    notes: list[str] = []
    problems: list[str] = []
    trainer = Trainer(d, collector.url, env).start()
    try:
        n = trainer.wait_returned(rng.randint(5, 60))
        collector.kill()  # kill -9 while the trainer sends to it
        notes.append(f"collector killed at {n}")
        down = rng.randint(20, 200)
        n = trainer.wait_returned(n + down)
        collector.start()
        notes.append(f"restarted at {n}")
        trainer.wait_returned(trainer.returned() + rng.randint(5, 60))
        end = rng.choice(("exit", "sigkill", "sigterm"))
        if end == "sigkill":
            status, expected = trainer.signal(signal.SIGKILL), None
        elif end == "sigterm":
            status, expected = trainer.signal(signal.SIGTERM), "TERMINATED"
        else:
            status, expected = trainer.stop(), "FINISHED"
        notes.append(f"trainer exit {status}")
        left = journals(spool)
        if left:
            notes.append(f"{len(left)} journal(s) left; next process stored them")
            if next_process_for_endpoint(env, d, collector.url, spool):
                problems.append("journals left after the next process")
        c = count(env, trainer.returned(), endpoint=collector.url)
    finally:
        trainer.kill()
        collector.stop()
    return Outcome(c, expected, notes, problems)


def fault_held(rng: random.Random, d: Path) -> Outcome:
    spool, store = d / "spool", d / "store"
    env = python_env(spool)
    limit = rng.randint(60, 250)
    mid_run = rng.random() < 0.5
    trainer = Trainer(d, str(store), env, limit=limit)
    try:
        with hold_store(d, env, store) as flag:
            trainer.start()
            if mid_run:
                trainer.wait_returned(rng.randint(10, limit))
            else:
                trainer.wait()
            flag.unlink()
        status = trainer.wait()
    finally:
        trainer.kill()
    notes = [f"released {'mid-run' if mid_run else 'after the exit'}", f"exit {status}"]
    c = count(env, trainer.returned(), store=store)
    return Outcome(c, "FINISHED", notes)


def fault_tmpfs_journal(rng: random.Random, d: Path) -> Outcome:
    store = d / "store"
    with tmpfs(d / "spoolfs", "2m") as mount:
        spool = mount / "spool"
        (spool / "journal").mkdir(parents=True)
        env = python_env(spool)
        filler = fill(mount)
        trainer = Trainer(d, str(store), env).start()
        try:
            n = trainer.wait_returned(rng.randint(10, 100))
            filler.unlink()
            trainer.wait_returned(n + rng.randint(10, 100))
            status = trainer.stop()
        finally:
            trainer.kill()
        problems = [] if "disk full" in trainer.output() else ["no 'disk full' line on stderr"]
        c = count(env, trainer.returned(), store=store)
    return Outcome(c, "FINISHED", [f"freed at {n}", f"exit {status}"], problems)


def fault_tmpfs_store(rng: random.Random, d: Path) -> Outcome:
    spool = d / "spool"
    env = python_env(spool)
    with tmpfs(d / "storefs", "32m") as mount:
        store = mount / "store"
        trainer = Trainer(d, str(store), env, pause=0.002).start()
        try:
            # the store is open and has committed (the journal's checkpoint) before it fills up
            wait_until(lambda: any(spool.glob("journal/*/*.ckpt")), WAIT, "a first commit", trainer.proc)
            n = trainer.returned()
            filler = fill(mount)
            n2 = trainer.wait_returned(n + rng.randint(300, 1500))
            filler.unlink()
            trainer.wait_returned(n2 + rng.randint(10, 200))
            status = trainer.stop()
        finally:
            trainer.kill()
        notes = [f"full from {n} to {n2}", f"exit {status}"]
        left = journals(spool)
        notes.append("stored by the running process" if not left else "stored by the next process")
        c = count(env, trainer.returned(), store=store)
    return Outcome(c, "FINISHED", notes)


def _monetdb(env: dict[str, str], command: str) -> str:
    res = subprocess.run([str(ROOT / "scripts" / "monetdb.sh"), command], env=env, capture_output=True, text=True,
                         timeout=3600, cwd=ROOT)
    if res.returncode != 0:
        raise RuntimeError(f"scripts/monetdb.sh {command} failed: {res.stderr[-1500:]}")
    return res.stdout.strip()


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def fault_server(rng: random.Random, d: Path) -> Outcome:
    spool, state = d / "spool", d / "monetdb"
    env = python_env(spool)
    server_env = {**env, "DLPROV_MONETDB_STATE": str(state)}
    url = _monetdb(server_env, "start").splitlines()[-1]
    trainer = Trainer(d, url, env).start()
    try:
        n = trainer.wait_returned(rng.randint(10, 60))
        pid = int((state / "mserver5.pid").read_text())
        os.kill(pid, signal.SIGKILL)  # kill -9 while the trainer writes to it
        wait_until(lambda: _gone(pid), 60, "the killed server to go")
        n2 = trainer.wait_returned(n + rng.randint(20, 200))
        _monetdb(server_env, "start")  # same port
        trainer.wait_returned(n2 + rng.randint(20, 100))
        status = trainer.stop()
        notes = [f"server killed at {n}", f"restarted at {n2}", f"exit {status}"]
        notes.append("stored by the running process" if not journals(spool) else "stored by the next process")
        c = count(env, trainer.returned(), store=url)
    finally:
        trainer.kill()
        _monetdb(server_env, "stop")
    return Outcome(c, "FINISHED", notes)


def run_fault(fault: str, rng: random.Random, d: Path) -> Outcome:
    d.mkdir(parents=True, exist_ok=True)
    if fault == "sigkill":
        return fault_signal(rng, d, signal.SIGKILL)
    if fault == "sigterm":
        return fault_signal(rng, d, signal.SIGTERM)
    if fault == "collector":
        return fault_collector(rng, d)
    if fault == "held":
        return fault_held(rng, d)
    if fault == "tmpfs-journal":
        return fault_tmpfs_journal(rng, d)
    if fault == "tmpfs-store":
        return fault_tmpfs_store(rng, d)
    if fault == SERVER_FAULT:
        return fault_server(rng, d)
    raise ValueError(f"unknown fault {fault!r}")


def schedule(rng: random.Random, rounds: int, faults: list[str]) -> list[str]:
    """Random faults, every kind once per cycle (so that a few rounds already cover them)."""
    order: list[str] = []
    while len(order) < rounds:
        cycle = list(faults)
        rng.shuffle(cycle)
        order += cycle
    return order[:rounds]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    parser.add_argument("--faults", default=",".join(FAULTS),
                        help=f"comma-separated subset of {','.join((*FAULTS, SERVER_FAULT))}")
    parser.add_argument("--server", action="store_true",
                        help="also kill -9 and restart a MonetDB server (built by scripts/monetdb.sh)")
    parser.add_argument("--workdir", type=Path, help="keep every round's files here (default: a temporary dir)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30)
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    if args.server and SERVER_FAULT not in faults:
        faults.append(SERVER_FAULT)
    unknown = set(faults) - {*FAULTS, SERVER_FAULT}
    if unknown or not faults:
        parser.error(f"unknown fault(s): {', '.join(sorted(unknown))}")
    if not tmpfs_available():
        dropped = [f for f in faults if f.startswith("tmpfs")]
        faults = [f for f in faults if not f.startswith("tmpfs")] or ["sigkill"]
        if dropped:
            print(f"chaos: no tmpfs (needs root and mount): {', '.join(dropped)} left out", flush=True)
    rng = random.Random(seed)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="dlprov-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"chaos: {args.rounds} rounds, seed {seed}, faults {','.join(faults)}, in {work}", flush=True)
    totals = {"emitted": 0, "stored": 0, "lost": 0, "duplicated": 0}
    failures = 0
    started = time.monotonic()
    for i, fault in enumerate(schedule(rng, args.rounds, faults), 1):
        t0 = time.monotonic()
        try:
            out = run_fault(fault, random.Random(rng.randrange(1 << 30)), work / f"round{i:03d}-{fault}")
        except Exception as exc:
            failures += 1
            print(f"round {i} {fault}: FAILED {type(exc).__name__}: {exc}", flush=True)
            traceback.print_exc(file=sys.stderr)
            continue
        c = out.count
        for k in totals:
            totals[k] += getattr(c, k)
        failures += bool(c.lost or c.duplicated or not out.status_ok or out.problems)
        status = c.status + ("" if out.status_ok else f" (WRONG, wanted {out.expected_status})")
        print(
            f"round {i} {fault}: {c.emitted} emitted, {c.stored} stored, {c.lost} lost, {c.duplicated} duplicated"
            f"{f', {c.in_flight} in flight at the fault also stored' if c.in_flight else ''}; status {status}; "
            f"{'; '.join(out.notes)}{''.join(f'; PROBLEM: {p}' for p in out.problems)} ({time.monotonic() - t0:.0f} s)",
            flush=True,
        )
    if args.workdir is None and not failures:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"chaos: {args.rounds} rounds, {totals['emitted']} emitted, {totals['stored']} stored, "
        f"{totals['lost']} lost, {totals['duplicated']} duplicated"
        f"{f', {failures} round(s) failed' if failures else ''} (seed {seed}, {time.monotonic() - started:.0f} s)",
        flush=True,
    )
    return 1 if failures or totals["lost"] or totals["duplicated"] else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
