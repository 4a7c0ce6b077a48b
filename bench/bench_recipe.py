"""What recording a run's recipe costs (issue 15: under 50 ms).

Each measurement is a fresh process (``python bench/bench_recipe.py --child``) that imports
numpy and DLProv like a training script, then times, on the caller's thread:

- ``start``: what ``Execution.start`` pays for the recipe (script digest, command line,
  Python, environment, seeds; the git and package part is handed to a thread);
- ``background``: that thread's wall time (``git status`` + ``git diff`` on this checkout,
  package metadata), which runs beside training;
- ``end``: what ``Execution.end`` pays (packages imported since, seeds; it waits for the
  background part if that has not finished, which a run of a few seconds never sees);
- ``execution_start_on`` / ``_off``: a whole ``Execution.start`` on the in-memory exporter
  with ``DLPROV_RECIPE`` on and off.

Writes ``bench/results/recipe.json`` and prints medians.

    python bench/bench_recipe.py [--reps 9]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "recipe.json"


def child() -> None:
    import numpy  # noqa: F401  (a training script's imports)

    import dlprov_otel
    from dlprov_otel import recipe, tracing

    out: dict[str, float] = {}
    rec = recipe.RecipeRecorder(lambda entries, phase: None)
    t0 = time.perf_counter()
    rec.start()
    out["start_ms"] = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    assert rec.thread is not None
    rec.thread.join()
    out["background_ms"] = (time.perf_counter() - t0) * 1e3 + out["start_ms"]
    t0 = time.perf_counter()
    rec.end()
    out["end_ms"] = (time.perf_counter() - t0) * 1e3

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    dlprov_otel.configure(exporter=InMemorySpanExporter(), set_global=False)
    for flag in ("1", "0"):
        os.environ["DLPROV_RECIPE"] = flag
        ex = tracing.Execution(f"bench-{flag}", "mnist")
        t0 = time.perf_counter()
        ex.start()
        out["execution_start_" + ("on" if flag == "1" else "off") + "_ms"] = (time.perf_counter() - t0) * 1e3
        ex.end()
    dlprov_otel.shutdown()
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--reps", type=int, default=9)
    args = parser.parse_args()
    if args.child:
        child()
        return
    runs = []
    for _ in range(args.reps):
        done = subprocess.run([sys.executable, __file__, "--child"], capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    medians = {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}
    worst = {k: round(max(r[k] for r in runs), 2) for k in runs[0]}
    result = {"reps": args.reps, "median": medians, "max": worst, "cpus": os.cpu_count()}
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for k in medians:
        print(f"{k:28} median {medians[k]:8.2f}  max {worst[k]:8.2f}")


if __name__ == "__main__":
    main()
