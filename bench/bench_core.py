"""Core benchmark (issue 2): span -> embedded MonetDB throughput, caller-thread cost per
dataset emission, and emission-to-queryable latency. Writes bench/results/core.json.

    python bench/bench_core.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import dlprov_otel
from dlprov_otel import Dataflow, DataSet, Element, Task
from dlprov_otel.exporter import MonetDBSpanExporter
from dlprov_otel.store import open_store

RESULTS = Path(__file__).parent / "results"


def machine() -> dict:
    import os

    return {
        "python": platform.python_version(),
        "cpu": dlprov_otel.hardware.host_facts()["dlprov.hardware.cpu_model"],
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "dlprov_otel": dlprov_otel.__version__,
    }


def row(epoch: int, elements: int = 1) -> DataSet:
    return DataSet(
        "otrainmodel", [Element(["2024-01-01 00:00:00", 1.5, 0.1, 0.9, 0.2, 0.8, epoch]) for _ in range(elements)]
    )


def capture_spans(tmp: Path, n: int, elements: int) -> list:
    """Make `n` real dataset spans (and their task) with the SDK, without storing them."""
    tel = dlprov_otel.configure(store=tmp / "scratch", schedule_delay=3600)
    mem = InMemorySpanExporter()
    tel.provider.add_span_processor(SimpleSpanProcessor(mem))
    Dataflow("mnist", predefined=True).save()
    t = Task(1, "mnist", f"bench-{elements}", "trainmodel")
    t.begin()
    for i in range(n):
        t.add_dataset(row(i, elements))
        t.save()
    t.end()
    assert tel.recorder.drain(120)  # dataset spans are built off the caller's thread
    spans = list(mem.get_finished_spans())
    dlprov_otel.shutdown()
    return spans


def bench_throughput(tmp: Path, n: int, elements: int) -> dict:
    spans = capture_spans(tmp, n, elements)
    store = open_store(tmp / f"tp-{elements}")
    exporter = MonetDBSpanExporter(store=store)
    # the dataflow spec and table creation are a one-off: store them first
    exporter.export([s for s in spans if s.attributes.get("dlprov.span.kind") == "dataflow"])
    data = [s for s in spans if s.attributes.get("dlprov.span.kind") != "dataflow"]
    batch = 20_000 // elements or 1
    t0 = time.perf_counter()
    for i in range(0, len(data), batch):
        assert exporter.export(data[i : i + batch]).name == "SUCCESS"
    dt = time.perf_counter() - t0
    rows = store.query('SELECT COUNT(*) FROM "mnist"."otrainmodel"').rows[0][0]
    assert rows == n * elements, rows
    store.close()
    return {"spans": len(data), "rows": rows, "seconds": dt, "rows_per_s": rows / dt, "spans_per_s": len(data) / dt}


def bench_caller_cost(tmp: Path, n: int) -> dict:
    tel = dlprov_otel.configure(store=tmp / "caller")
    Dataflow("mnist", predefined=True).save()
    t = Task(1, "mnist", "bench-caller", "trainmodel")
    t.begin()
    samples = []
    for i in range(n):
        ds = row(i)
        t0 = time.perf_counter_ns()
        t.add_dataset(ds)
        t.save()
        samples.append(time.perf_counter_ns() - t0)
    t.end()
    assert tel.flush(120)
    dlprov_otel.shutdown()
    samples.sort()
    return {
        "emissions": n,
        "median_us": statistics.median(samples) / 1000,
        "p99_us": samples[int(0.99 * len(samples))] / 1000,
        "mean_us": statistics.fmean(samples) / 1000,
    }


def bench_latency(tmp: Path, n: int) -> dict:
    tel = dlprov_otel.configure(store=tmp / "latency")
    Dataflow("mnist", predefined=True).save()
    t = Task(1, "mnist", "bench-latency", "trainmodel")
    t.begin()
    store = tel.store
    lat = []
    for i in range(n):
        t0 = time.perf_counter()
        t.add_dataset(row(i))
        t.save()
        while True:
            try:
                got = store.query('SELECT COUNT(*) FROM "mnist"."otrainmodel" WHERE epoch = ?', [float(i)]).rows[0][0]
            except dlprov_otel.QueryError:  # the relation does not exist before the first row
                got = 0
            if got:
                break
            time.sleep(0.005)
        lat.append(time.perf_counter() - t0)
    t.end()
    dlprov_otel.shutdown()
    lat.sort()
    return {"samples": n, "p50_s": statistics.median(lat), "p99_s": lat[int(0.99 * len(lat))], "max_s": lat[-1]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 5_000 if args.quick else 20_000
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        result = {
            "machine": machine(),
            "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "throughput_1_element_spans": bench_throughput(tmp, n, 1),
            "throughput_100_element_spans": bench_throughput(tmp, n // 100, 100),
            "caller_cost_per_emission": bench_caller_cost(tmp, n),
            "emission_to_queryable": bench_latency(tmp, 100 if args.quick else 300),
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "core.json").write_text(json.dumps(result, indent=2))
    tp1, tp100 = result["throughput_1_element_spans"], result["throughput_100_element_spans"]
    cc, lat = result["caller_cost_per_emission"], result["emission_to_queryable"]
    print(f"rows/s, one row per span      : {tp1['rows_per_s']:,.0f}  (target >= 50,000)")
    print(f"rows/s, 100 rows per span     : {tp100['rows_per_s']:,.0f}")
    print(
        f"caller cost per emission      : median {cc['median_us']:.1f} us, p99 {cc['p99_us']:.1f} us  (target <= 50 us)"
    )
    print(
        f"emission -> queryable latency : p50 {lat['p50_s'] * 1000:.0f} ms, "
        f"p99 {lat['p99_s'] * 1000:.0f} ms  (target p99 <= 1 s)"
    )


if __name__ == "__main__":
    main()
