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
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

if not __package__:  # run as a script: the repository root makes `scripts` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts.chaos_kit import (
    ROOT,
    WAIT,
    Count,
    Trainer,
    count,
    fill,
    gone,
    hold_store,
    journals,
    monetdb,
    next_process_for_endpoint,
    python_env,
    tmpfs,
    tmpfs_available,
    wait_until,
)

FAULTS = ("sigkill", "sigterm", "collector", "held", "tmpfs-journal", "tmpfs-store")
SERVER_FAULT = "server"  # opt-in (--server): a MonetDB server built by scripts/monetdb.sh


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


def fault_server(rng: random.Random, d: Path) -> Outcome:
    spool, state = d / "spool", d / "monetdb"
    env = python_env(spool)
    server_env = {**env, "DLPROV_MONETDB_STATE": str(state)}
    url = monetdb(server_env, "start").splitlines()[-1]
    trainer = Trainer(d, url, env).start()
    try:
        n = trainer.wait_returned(rng.randint(10, 60))
        pid = int((state / "mserver5.pid").read_text())
        os.kill(pid, signal.SIGKILL)  # kill -9 while the trainer writes to it
        wait_until(lambda: gone(pid), 60, "the killed server to go")
        n2 = trainer.wait_returned(n + rng.randint(20, 200))
        monetdb(server_env, "start")  # same port
        trainer.wait_returned(n2 + rng.randint(20, 100))
        status = trainer.stop()
        notes = [f"server killed at {n}", f"restarted at {n2}", f"exit {status}"]
        notes.append("stored by the running process" if not journals(spool) else "stored by the next process")
        c = count(env, trainer.returned(), store=url)
    finally:
        trainer.kill()
        monetdb(server_env, "stop")
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
    sys.path.insert(0, str(ROOT))  # tests.collector_proc
    sys.exit(main())
