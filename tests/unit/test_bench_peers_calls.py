"""bench/bench_peers.py keeps per run the distribution of its calls in peers.json and every call
in a gzip file beside it: the summary (the README table) must not change, and no call is lost.
No timing is measured here."""

from __future__ import annotations

import gzip
import json
import math
import random
import statistics
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def peers(load_bench: Callable[[str], ModuleType]) -> ModuleType:
    return load_bench("bench_peers.py")


def run(rng: random.Random, n: int, **extra: float) -> dict:
    return {
        "log_s": [rng.lognormvariate(-11, 0.5) for _ in range(n)],
        "log_cpu_s": [rng.lognormvariate(-11.5, 0.5) for _ in range(n)],
        **extra,
    }


def raw_result(seed: int, tools: list[str]) -> dict:
    """Shaped as bench_peers.measure returns it."""
    rng = random.Random(seed)

    def train() -> dict:
        return run(rng, 6, wall_s=rng.uniform(3, 4), cpu_s=rng.uniform(3, 4), train_s=0.3, torch_import_s=1.0,
                   setup_s=0.01, stop_s=0.001)  # fmt: skip

    return {
        "train": {v: [train() for _ in range(3)] for v in ("none@3.11", "none@3.12", *tools)},
        "train_rows_stored": {t: 6 for t in tools},
        "loop": {t: [run(rng, rng.randint(1, 300), calls=300) for _ in range(3)] for t in tools},
        "kill": {t: [{"lost": 0, "returned": 100, "stored": 100}] for t in tools},
    }


def test_summary_unchanged_and_every_call_kept(peers: ModuleType, tmp_path: Path) -> None:
    tools = ["dlprov", "flowcept", "mlflow"]
    raw = raw_result(7, tools)
    before = json.loads(json.dumps(raw))  # what was measured, untouched
    calls = tmp_path / "calls.json.gz"
    compact = peers.write_calls(raw, calls)

    assert raw == before  # the measured runs are not modified in place
    assert peers.summarize(compact, tools) == peers.summarize(raw, tools)
    kept = json.loads(gzip.decompress(calls.read_bytes()))
    for mode in ("train", "loop"):
        for variant, runs in raw[mode].items():
            assert [x["log_s"] for x in kept[mode][variant]] == [x["log_s"] for x in runs]
            assert [x["log_cpu_s"] for x in kept[mode][variant]] == [x["log_cpu_s"] for x in runs]
            for x, c in zip(runs, compact[mode][variant], strict=True):
                assert c["log_s"]["n"] == len(x["log_s"])
                assert c["log_s"]["median"] == statistics.median(x["log_s"])
                other = {k: v for k, v in x.items() if k not in peers.CALLS}
                assert {k: v for k, v in c.items() if k not in peers.CALLS} == other
    assert compact["kill"] == raw["kill"]
    assert len(json.dumps(compact)) < len(json.dumps(raw)) / 4


def test_a_run_without_calls_keeps_its_nan_median(peers: ModuleType) -> None:
    d = peers.distribution([])
    assert d["n"] == 0
    assert math.isnan(peers.call_median({"log_s": d}, "log_s"))
    assert math.isnan(peers.call_median({"log_s": []}, "log_s"))  # the same as before compacting


def test_compact_again_writes_nothing_and_keeps_the_summary(peers: ModuleType, tmp_path: Path) -> None:
    tools = ["dlprov", "wandb"]
    calls = tmp_path / "calls.json.gz"
    once = peers.write_calls(raw_result(3, tools), calls)
    calls.unlink()
    twice = peers.write_calls(once, calls)
    assert twice == once
    assert not calls.exists()  # an earlier, already compact result leaves the calls file alone
    assert peers.summarize(twice, tools) == peers.summarize(once, tools)


@given(st.lists(st.floats(min_value=0, max_value=10, allow_nan=False), min_size=1, max_size=400))
def test_distribution_is_ordered_and_exact(peers: ModuleType, xs: list[float]) -> None:
    d = peers.distribution(xs)
    assert d["n"] == len(xs)
    assert d["min"] == min(xs) and d["max"] == max(xs)
    assert d["median"] == statistics.median(xs)
    assert d["min"] <= d["p90"] <= d["p99"] <= d["max"]
    assert sum(1 for x in xs if x <= d["p90"]) >= 0.9 * len(xs)  # nearest rank: at least 90 % at or below
    assert peers.call_median({"log_s": d}, "log_s") == peers.call_median({"log_s": xs}, "log_s")
