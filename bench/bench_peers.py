"""DLProv side by side with its peers on one PyTorch job (issue 12): Flowcept (JSONL file output),
W&B (offline), MLflow (SQLite store), yProv4ML, and a baseline without any tool.

The peers live in their own Python 3.12 environment outside the repository
(``${DLPROV_CACHE:-~/.cache/dlprov}/peers-py312``, made on the first run: ``bench/peers/env.py``);
DLProv runs in the project's ``.venv`` through its public API only (``configure``,
``execution``, ``task``, ``t.output``), so this measures whatever the core becomes. Each
interpreter has its own baseline run, and each tool is compared with the baseline of its own
interpreter.

The job (``bench/peers/job.py``): a small MLP on generated data, 6 epochs, one row per epoch
(loss, accuracy, val_loss, val_accuracy, epoch, elapsed) through each tool's own per-epoch call
(``bench/peers/tools.py``). Every run is a fresh process; tools are interleaved, the order
rotated each round, after one warm-up round (stores created, files cached); figures are medians.

- (a) caller cost per epoch, in training: time inside the per-epoch call during the real job;
- (b) caller cost per call in a tight loop (no training);
- (c) whole-run overhead: the process's wall time (import, set-up, training, teardown, exit)
  minus the baseline's;
- (d) SIGKILL: a job logging at ~100 Hz is killed (its whole process group, as a scheduler
  does) after a random delay; rows whose call had RETURNED (an unbuffered file gets each index
  after the call returns) are compared with the rows the tool stored, read back after the
  process group is dead through the tool's own files or store (DLProv: ``dlprov sql`` in a new
  process) by ``bench/peers/readback.py``.

Writes ``bench/results/peers.json`` (the summary, and per run the distribution of its calls: n, min,
median, p90, p99, max) and prints a markdown table; every call's own timing goes to
``bench/results/tmp/peers-calls.json.gz`` (not committed: 4.7 MB as JSON, and a 4.7 MB file in
the working tree costs every traced run's ``git diff HEAD`` time in the next run).

    python bench/bench_peers.py [--quick] [--reps 5] [--kills 5] [--tools dlprov,mlflow,...]
"""

from __future__ import annotations

import argparse
import compileall
import gzip
import json
import math
import os
import platform
import random
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE / "peers"))

import env as peers_env  # noqa: E402
import readback  # noqa: E402
import report  # noqa: E402  (bench/report.py: the table, as in the README)

PEERS = ("flowcept", "wandb", "mlflow", "yprov4ml")
BASELINE = {"dlprov": "none@3.11"}  # every peer: "none@3.12"


def project_python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def child_env(store: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DLPROV_", "OTEL_", "MLFLOW_", "WANDB_"))}
    env.pop("PYTHONPATH", None)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # one training thread: stable on a shared machine
        env[var] = "1"
    env.update(
        DLPROV_SPOOL_DIR=str(store / "spool"),  # the spool (and a journal beside it) stays with the store
        DLPROV_LOG_LEVEL="WARNING",
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        GIT_PYTHON_REFRESH="quiet",
        PYTHONUNBUFFERED="1",
    )
    env.update(readback.settings_env(store))
    return env


class Runner:
    def __init__(self, tmp: Path, pythons: dict[str, str], a: argparse.Namespace) -> None:
        self.tmp, self.pythons, self.a = tmp, pythons, a
        self.n = 0

    def store(self, variant: str) -> Path:
        s = self.tmp / "stores" / variant.replace("@", "-")
        s.mkdir(parents=True, exist_ok=True)
        return s

    def tool(self, variant: str) -> str:
        return variant.split("@")[0]

    def job(self, variant: str, mode: str, extra: list[str]) -> tuple[float, dict]:
        self.n += 1
        tag = f"{mode}{self.n}"
        result = self.tmp / f"{tag}.json"
        store = self.store(variant)
        cmd = [self.pythons[variant], str(HERE / "peers" / "job.py"), mode, "--tool", self.tool(variant)]
        cmd += ["--store", str(store), "--tag", tag, "--result", str(result), *extra]
        since = drain_log(store).stat().st_size if drain_log(store).exists() else 0
        r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        proc = subprocess.run(cmd, env=child_env(store), cwd=store, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the job and the processes it waited for
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        if proc.returncode != 0:
            raise RuntimeError(f"{variant} {mode} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        out = json.loads(result.read_text())
        out.update(wall_s=wall, cpu_s=cpu, tag=tag)
        if self.tool(variant) == "dlprov":
            out.update(drainer(store, since))
        return wall, out

    def kill(self, variant: str, rng: random.Random) -> dict:
        """One SIGKILL run: rows returned vs rows stored."""
        self.n += 1
        tag = f"kill{self.n}"
        store = self.store(variant)
        returned_file = self.tmp / f"{tag}.returned"
        cmd = [self.pythons[variant], str(HERE / "peers" / "job.py"), "kill", "--tool", self.tool(variant)]
        cmd += ["--store", str(store), "--tag", tag, "--returned", str(returned_file), "--hz", "100"]
        stderr = self.tmp / f"{tag}.stderr"  # a file, not a pipe: a chatty tool never blocks on it
        with stderr.open("wb") as err:
            proc = subprocess.Popen(
                cmd, env=child_env(store), cwd=store, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True
            )
        deadline = time.monotonic() + 300
        while not (returned_file.exists() and returned_file.read_bytes().startswith(b"ready\n")):
            if proc.poll() is not None:
                raise RuntimeError(f"{variant} kill job died: {stderr.read_text(errors='replace')[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{variant} kill job never got ready")
            time.sleep(0.02)
        delay = rng.uniform(self.a.kill_min_s, self.a.kill_max_s)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)  # the whole job, tool helper processes included
        proc.wait()
        lines = returned_file.read_text().split("\n")[1:]
        returned = {int(x) for x in lines[:-1] if x}  # the last piece may be half-written
        stored, how = readback.stored_rows(self.tool(variant), store, tag, self.pythons[variant], child_env(store))
        lost = sorted(returned - stored)
        return {
            "delay_s": round(delay, 3),
            "returned": len(returned),
            "stored": len(stored),
            "lost": len(lost),
            "lost_first": lost[:5],
            "read_back": how,
        }


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


CALLS = ("log_s", "log_cpu_s")  # per-call timings of a run: a list in memory, a distribution in peers.json


def call_median(run: dict, key: str) -> float:
    """The median call of one run, from its list of calls or from the distribution kept for it."""
    v = run[key]
    return v["median"] if isinstance(v, dict) else med(v)


def distribution(xs: list[float]) -> dict[str, float]:
    s = sorted(xs)
    if not s:
        return {"n": 0, "median": med(s)}  # as med() of no calls: NaN, for call_median

    def q(p: float) -> float:  # nearest rank
        return s[min(len(s) - 1, max(0, math.ceil(p * len(s)) - 1))]

    return {"n": len(s), "min": s[0], "median": med(s), "p90": q(0.9), "p99": q(0.99), "max": s[-1]}


def write_calls(raw: dict, path: Path) -> dict:
    """Every call's timing to ``path`` (gzip, JSON, shaped like ``raw``); returned: ``raw`` with each
    list of calls replaced by its distribution. Runs already compact are kept as they are."""
    lists = {
        mode: {t: [{k: x[k] for k in CALLS if isinstance(x.get(k), list)} for x in runs] for t, runs in by.items()}
        for mode, by in raw.items()
        if mode in ("train", "loop")
    }
    if any(x for by in lists.values() for runs in by.values() for x in runs):
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wt") as f:
            json.dump(lists, f)
    out = dict(raw)
    for mode in lists:
        out[mode] = {
            t: [{k: distribution(v) if k in CALLS and isinstance(v, list) else v for k, v in x.items()} for x in runs]
            for t, runs in raw[mode].items()
        }
    return out


def rotate(xs: list[str], r: int) -> list[str]:
    k = r % len(xs)
    return xs[k:] + xs[:k]


def measure(runner: Runner, variants: list[str], tools: list[str], a: argparse.Namespace, log: Any) -> dict:
    train_extra = ["--epochs", str(a.epochs), "--samples", str(a.samples)]
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    for r in range(-1, a.reps):  # round -1: warm-up, not counted
        for v in rotate(variants, max(r, 0)):
            wall, out = runner.job(v, "train", train_extra)
            log(f"  train r{r} {v}: {wall:.2f} s, per-epoch call {1e6 * call_median(out, 'log_s'):.0f} µs")
            if r >= 0:
                runs[v].append(out)
    # epoch rows stored by each tool's last run (not timed; the last: Flowcept's next run would
    # replace its buffer file)
    verified: dict[str, int] = {}
    for t in tools:
        store = runner.store(t)
        rows, _ = readback.stored_rows(t, store, runs[t][-1]["tag"], runner.pythons[t], child_env(store))
        verified[t] = len(rows)
        log(f"  stored by {t}'s last run: {len(rows)} of {a.epochs} epoch rows")
    loops: dict[str, list[dict]] = {t: [] for t in tools}
    loop_extra = ["--calls", str(a.calls), "--max-s", str(a.loop_max_s)]
    for r in range(a.reps):
        for t in rotate(tools, r):
            _, out = runner.job(t, "loop", loop_extra)
            log(f"  loop r{r} {t}: {out['calls']} calls, {1e6 * call_median(out, 'log_s'):.1f} µs")
            loops[t].append(out)
    kills: dict[str, list[dict]] = {t: [] for t in tools}
    rng = random.Random(a.seed)
    for r in range(a.kills):
        for t in rotate(tools, r):
            k = runner.kill(t, rng)
            log(f"  kill r{r} {t}: returned {k['returned']}, stored {k['stored']}, lost {k['lost']}")
            kills[t].append(k)
    return {"train": runs, "train_rows_stored": verified, "loop": loops, "kill": kills}


def summarize(raw: dict, tools: list[str]) -> dict[str, dict]:
    """Medians per tool; per-call figures are the median call of each run, then the median run."""
    train = raw["train"]
    base = {b: train[b] for b in ("none@3.11", "none@3.12") if train.get(b)}
    out: dict[str, dict] = {
        b: {k: med([x[k] for x in runs]) for k in ("wall_s", "cpu_s", "train_s", "torch_import_s")}
        for b, runs in base.items()
    }
    for b, runs in base.items():  # half the range of the runs without a tool: the resolution of a whole-run figure
        walls = [x["wall_s"] for x in runs]
        out[b]["wall_noise_s"] = (max(walls) - min(walls)) / 2
        # the job's own empty call
        out[b]["per_epoch_in_training_us"] = 1e6 * med([call_median(x, "log_s") for x in runs])
    for t in tools:
        b = BASELINE.get(t, "none@3.12")
        runs, loops, kills = train[t], raw["loop"][t], raw["kill"][t]
        wall, cpu = med([x["wall_s"] for x in runs]), med([x["cpu_s"] for x in runs])
        out[t] = {
            "per_epoch_in_training_us": 1e6 * med([call_median(x, "log_s") for x in runs]),
            "per_epoch_in_training_cpu_us": 1e6 * med([call_median(x, "log_cpu_s") for x in runs]),
            "per_call_tight_loop_us": 1e6 * med([call_median(x, "log_s") for x in loops]),
            "per_call_tight_loop_cpu_us": 1e6 * med([call_median(x, "log_cpu_s") for x in loops]),
            "tight_loop_calls": med([x["calls"] for x in loops]),
            "wall_s": wall,
            "cpu_s": cpu,
            "baseline": b,
            "whole_run_overhead_s": wall - out[b]["wall_s"],
            "whole_run_noise_s": out[b]["wall_noise_s"],
            "whole_run_cpu_overhead_s": cpu - out[b]["cpu_s"],
            "setup_s": med([x["setup_s"] for x in runs]),
            **(
                {"drainer_cpu_s": med([x["drainer_cpu_s"] for x in runs])}
                if all("drainer_cpu_s" in x for x in runs)
                else {}
            ),
            "stop_s": med([x["stop_s"] for x in runs]),
            "train_rows_stored": raw.get("train_rows_stored", {}).get(t),
            "kill_runs": len(kills),
            "kill_runs_lossless": sum(1 for k in kills if k["lost"] == 0),
            "kill_lost": [k["lost"] for k in kills],
            "kill_returned": [k["returned"] for k in kills],
        }
    return out


def drain_log(store: Path) -> Path:
    return store / "spool" / "journal" / "drain.log"


def drainer(store: Path, since: int) -> dict[str, float]:
    """A DLProv run that ends before its embedded store opened hands its journal to a drainer
    process, which stores it after the run has ended (at nice 10) and escapes the run's CPU
    figure (it is no longer the run's child): wait for it, so it never runs beside the next
    job, and read its CPU time from what it logged after byte ``since``."""
    from dlprov_otel.store import drainlock

    t0 = time.perf_counter()
    drainlock.wait_released(store / "db", timeout=300)
    waited = time.perf_counter() - t0
    log = drain_log(store)
    text = log.read_bytes()[since:].decode(errors="replace") if log.exists() else ""
    cpu = [float(m.group(1)) for m in _DRAINER_CPU.finditer(text)]
    return {"drainer_wait_s": waited, "drainer_cpu_s": sum(cpu), "drainers": len(cpu)}


_DRAINER_CPU = re.compile(r"drainer: stored .*\(CPU ([0-9.]+) s\)")


def machine() -> dict:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python_parent": platform.python_version(),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 rounds, 2 kills per tool, shorter loops")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--kills", type=int)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--samples", type=int, default=4000)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--loop-max-s", type=float, default=3.0)
    ap.add_argument("--kill-min-s", type=float, default=0.5)
    ap.add_argument("--kill-max-s", type=float, default=2.5)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--tools", default="dlprov," + ",".join(PEERS))
    ap.add_argument("--out", type=Path, default=RESULTS / "peers.json")
    ap.add_argument("--calls-out", type=Path, default=RESULTS / "tmp" / "peers-calls.json.gz")
    ap.add_argument("--from-json", type=Path, help="summarize the runs of an earlier result again and print")
    a = ap.parse_args()
    if a.from_json:
        result = json.loads(a.from_json.read_text())
        result["summary"] = summarize(result["runs"], [t for t in report.PEER_LABELS if t in result["runs"]["loop"]])
        result["runs"] = write_calls(result["runs"], a.calls_out)
        a.from_json.write_text(json.dumps(result, indent=1))
        print("\n".join(report.peers_table(result)))
        return 0
    # DLProv runs from this checkout (an editable install): its bytecode compiled as a wheel's
    # would be, so that no run compiles what it imports (where PYTHONDONTWRITEBYTECODE is set)
    for folder in ("dlprov_otel", "integrations/src", "collector/src"):
        compileall.compile_dir(ROOT / folder, quiet=1)
    a.reps = a.reps or (2 if a.quick else 5)
    a.kills = a.kills or (2 if a.quick else 5)
    if a.quick:
        a.calls, a.loop_max_s = min(a.calls, 500), min(a.loop_max_s, 1.5)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    load_before = os.getloadavg()
    started = time.perf_counter()
    wanted = a.tools.split(",")
    versions, failures = peers_env.ensure(wanted, log)
    tools = [t for t in wanted if t == "dlprov" or t in versions]
    pythons = {"none@3.11": project_python(), "dlprov": project_python()}
    if "torch" in versions:
        pythons.update({t: str(peers_env.env_python()) for t in (*PEERS, "none@3.12")})
    else:
        tools = [t for t in tools if t == "dlprov"]
    variants = ["none@3.11"] + (["dlprov"] if "dlprov" in tools else [])
    if any(t in PEERS for t in tools):
        variants += ["none@3.12"] + [t for t in tools if t in PEERS]
    versions["dlprov"] = peers_env.installed_versions(project_python(), ["dlprov-otel"]).get("dlprov-otel", "?")
    log(f"tools: {', '.join(tools)}; versions: {versions}")
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as d:
        runner = Runner(Path(d), pythons, a)
        raw = measure(runner, variants, tools, a, log)
    m = machine()
    m.update(load_before=[round(x, 1) for x in load_before], load_after=[round(x, 1) for x in os.getloadavg()])
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": m,
        "versions": versions,
        "install_failures": {t: why for t, why in failures.items() if t in wanted or t == "torch"},
        "config": {k: getattr(a, k) for k in ("reps", "kills", "epochs", "samples", "calls", "loop_max_s",
                                               "kill_min_s", "kill_max_s", "seed", "quick")},
        "peers_env": str(peers_env.env_dir()),
        "summary": summarize(raw, tools),
        "runs": write_calls(raw, a.calls_out),
        "duration_s": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1))
    print("\n".join(report.peers_table(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
