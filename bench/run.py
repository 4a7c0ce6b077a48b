"""Run the benchmarks that exist, rewrite the README's tables from their results, print them.

    python bench/run.py --quick    # make bench-quick: small sizes, under 10 minutes on 2 cores
    python bench/run.py --full     # make bench: the sizes the README reports, and the plots
    python bench/run.py --quick --only bench_overhead.py,bench_core.py
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# script -> arguments for --quick (--full runs each with its defaults)
SCRIPTS = {
    "bench_core.py": ["--quick"],
    "bench_collector.py": ["--spans", "2000", "--repeat", "1", "--producer-spans", "4000"],
    "bench_torch_overhead.py": ["--quick"],
    "bench_overhead.py": ["--quick"],
    "bench_prov_scale.py": ["--quick"],
    # DLProv beside Flowcept, W&B, MLflow, yProv4ML: the first run installs them into their own
    # environment under ${DLPROV_CACHE:-~/.cache/dlprov}/peers-py312 (torch included: a few GB)
    "bench_peers.py": ["--quick"],
}
# too long for --quick's 10 minutes on 2 cores (14 min for its --quick under load): --full, or --only
FULL_ONLY = {"bench_peers.py"}


def main() -> int:
    ap = argparse.ArgumentParser()
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true")
    mode.add_argument("--full", action="store_true")
    ap.add_argument("--only", help="comma-separated script names")
    args = ap.parse_args()
    only = set(args.only.split(",")) if args.only else None
    failed = []
    started = time.perf_counter()
    for name, quick_args in SCRIPTS.items():
        script = HERE / name
        if not script.exists() or (only and name not in only):
            continue
        if args.quick and name in FULL_ONLY and not only:
            continue
        cmd = [sys.executable, str(script), *(quick_args if args.quick else [])]
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        if subprocess.run(cmd).returncode != 0:
            failed.append(name)
        print(f"== {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"== all: {time.perf_counter() - started:.0f} s\n", flush=True)
    subprocess.run([sys.executable, str(HERE / "report.py")], check=True)
    if failed:
        print("failed:", ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
