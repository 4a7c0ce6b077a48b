"""``make chaos`` at a small size: a few rounds of random faults, nothing lost or duplicated.

The driver (``scripts/chaos.py``) runs real processes only: a training-like script, DLProv
collectors killed with SIGKILL and restarted, a process that holds the store, tmpfs mounts
that fill up (root only). The seed is fixed so that the rounds cover a collector killed
mid-run, SIGKILL and SIGTERM of the trainer, and the store's disk filling up.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROUND = re.compile(r"^round \d+ (\S+): (\d+) emitted, (\d+) stored, (\d+) lost, (\d+) duplicated", re.M)
TOTALS = re.compile(r"^chaos: (\d+) rounds, (\d+) emitted, (\d+) stored, (\d+) lost, (\d+) duplicated", re.M)


def test_chaos_rounds_lose_nothing(tmp_path, subprocess_env):
    res = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "chaos.py"), "--rounds", "4", "--seed", "11",
         "--workdir", str(tmp_path / "chaos")],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    report = res.stdout + res.stderr[-3000:]
    rounds = ROUND.findall(res.stdout)
    assert len(rounds) == 4, report
    assert {"collector", "sigkill", "sigterm"} <= {r[0] for r in rounds}, report
    for _fault, emitted, stored, lost, duplicated in rounds:
        assert int(emitted) > 0, report  # each round recorded something before its fault
        assert (int(stored), int(lost), int(duplicated)) == (int(emitted), 0, 0), report
    totals = TOTALS.search(res.stdout)
    assert totals, report
    n, emitted, stored, lost, duplicated = (int(g) for g in totals.groups())
    assert n == 4
    assert emitted == sum(int(r[1]) for r in rounds) and emitted > 0
    assert (stored, lost, duplicated) == (emitted, 0, 0), report
    assert "PROBLEM" not in res.stdout and "FAILED" not in res.stdout, report
    assert res.returncode == 0, report
