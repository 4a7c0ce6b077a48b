"""Collector throughput (issue 14, part 6): a real collector process (embedded store) and N
concurrent OTLP/HTTP producer processes on the same machine. Writes
bench/results/collector_throughput.json.

    python bench/bench_collector_throughput.py [--producers 4] [--spans 40000] [--repeat 3]

Each producer is one training run: one trace, whose first request carries the dataflow's
specification and the run's ``execution.start`` span (as the SDK sends them), then dataset
spans (one ``metrics`` row each), 512 spans per request (the SDK's export batch). Requests are
encoded first (not timed), then all producers start together and POST one after another. Reported per run: spans/s
(all spans / (last answer - first request)), the acknowledge latency of every request (p50,
p99), and the collector's CPU time per span (from /proc: less sensitive to a shared machine
than wall time). Every span is checked in the store through the collector's SQL endpoint.
Target: >= 30,000 spans/s with 4 producers, acknowledge p99 <= 250 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_collector import BATCH, bench_producers, post
from bench_core import machine
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dlprov_otel import Element, SetType, model, semconv, spool
from dlprov_otel.api import dataset_attributes
from tests.collector_proc import METRICS, loss_of, start_collector

RESULTS = Path(__file__).parent / "results"
TARGET_RATE = 30_000
TARGET_P99_S = 0.25


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_requests(n: int, execution_tag: str) -> list[bytes]:
    """One run's spans, encoded as requests of BATCH spans: its execution start, then ``n``
    dataset spans, all in the run's trace."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "bench-producer"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench")
    common = {semconv.DATAFLOW_TAG: "remote", semconv.EXECUTION_TAG: execution_tag}
    df = model.Dataflow("remote")
    df.add_transformation(model.Transformation("train", [], [METRICS]))
    spec = df.to_spec()
    tracer.start_span(  # the dataflow's specification comes first, as Dataflow.save() sends it
        "dataflow remote",
        attributes={
            semconv.KIND: semconv.KIND_DATAFLOW,
            semconv.DATAFLOW_TAG: "remote",
            semconv.DATAFLOW_SPEC: spec.to_json(),
            semconv.DATAFLOW_SPEC_HASH: spec.hash,
        },
    ).end()
    with tracer.start_as_current_span("execution remote", attributes={semconv.KIND: semconv.KIND_EXECUTION, **common}):
        tracer.start_span(
            "execution.start",
            attributes={semconv.KIND: semconv.KIND_EXECUTION_START, semconv.EXECUTION_STATUS: "RUNNING", **common},
        ).end()
        with tracer.start_as_current_span("train"):
            for i in range(n):
                attrs = dataset_attributes(METRICS, SetType.OUTPUT, [Element([i, loss_of(i), f"step {i}"])])
                attrs.update({**common, semconv.TASK_ID: "1", semconv.TRANSFORMATION_TAG: "train"})
                tracer.start_span("metrics", attributes=attrs).end()
    provider.shutdown()
    spans = [s for s in memory.get_finished_spans() if s.name in ("dataflow remote", "execution.start", "metrics")]
    return [spool.encode(spans[i : i + BATCH]) for i in range(0, len(spans), BATCH)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--spans", type=int, default=40_000, help="spans per run, all producers together")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    out: dict[str, object] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": machine(),
        "load_average_start": os.getloadavg()[0],
        "producers": args.producers,
        "spans_per_run": args.spans,
        "target_spans_per_second": TARGET_RATE,
        "target_ack_p99_s": TARGET_P99_S,
    }
    runs = []
    with tempfile.TemporaryDirectory() as d:
        col = start_collector(Path(d) / "collector")
        try:
            for body in run_requests(512, "warm-up"):  # tables created, code paths warm
                post(col.url, body)
            for _ in range(args.repeat):
                cpu0 = cpu_seconds(col.proc.pid)
                run = bench_producers(col.url, args.spans, args.producers, run_requests)
                run["collector_cpu_us_per_span"] = round((cpu_seconds(col.proc.pid) - cpu0) / run["spans"] * 1e6, 1)
                runs.append(run)
                print(json.dumps(run), flush=True)
        finally:
            col.stop()
    out["runs"] = runs
    out["spans_per_second_median"] = round(statistics.median(r["spans_per_second"] for r in runs))
    out["ack_p50_s_median"] = statistics.median(r["ack_p50_s"] for r in runs)
    out["ack_p99_s_max"] = max(r["ack_p99_s"] for r in runs)
    out["collector_cpu_us_per_span_median"] = statistics.median(r["collector_cpu_us_per_span"] for r in runs)
    out["load_average_end"] = os.getloadavg()[0]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "collector_throughput.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
