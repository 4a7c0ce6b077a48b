"""Run the benchmarks that exist and rewrite the README's table from their results.

    python bench/run.py --quick | --full
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# script -> arguments for --quick
SCRIPTS = {
    "bench_core.py": ["--quick"],
    "bench_collector.py": ["--spans", "2000", "--repeat", "1"],
    "bench_torch_overhead.py": ["--quick"],
    "bench_keras_overhead.py": ["--quick"],
}


def main() -> int:
    ap = argparse.ArgumentParser()
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true")
    mode.add_argument("--full", action="store_true")
    args = ap.parse_args()
    failed = []
    for name, quick_args in SCRIPTS.items():
        script = HERE / name
        if not script.exists():
            continue
        cmd = [sys.executable, str(script), *(quick_args if args.quick else [])]
        print(f"== {name}", flush=True)
        if subprocess.run(cmd).returncode != 0:
            failed.append(name)
    subprocess.run([sys.executable, str(HERE / "report.py")], check=True)
    if failed:
        print("failed:", ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
