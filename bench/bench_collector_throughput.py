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
import http.client
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_collector import BATCH, _producer, post
from bench_core import machine
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dlprov_otel import Element, SetType, client, model, semconv, spool
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


class _Sender:
    """POSTs over one HTTP/1.1 connection, kept open between requests as OTLP exporters keep
    theirs (the OpenTelemetry exporter's ``requests.Session``)."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)

    def post(self, body: bytes) -> float:
        t0 = time.perf_counter()
        self.conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
        resp = self.conn.getresponse()
        resp.read()
        assert resp.status == 200, resp.status
        return time.perf_counter() - t0


def _keep_alive_producer(url: str, n: int, tag: str, ready: mp.Queue, go: mp.Event, out: mp.Queue, make) -> None:
    """One sender (bench_collector._producer over one kept connection)."""
    bodies = make(n, tag)
    sender = _Sender(url)
    ready.put(1)
    go.wait()
    t0 = time.monotonic()  # system-wide clock: comparable between processes
    acks = [sender.post(body) for body in bodies]
    out.put((t0, time.monotonic(), acks))


def bench_producers(url: str, total: int, producers: int, keep_alive: bool = True) -> dict[str, float]:
    """bench_collector.bench_producers with this benchmark's requests, each producer over one
    kept connection (``keep_alive``, as OTLP exporters send) or a new connection per request."""
    ctx = mp.get_context("spawn")  # no inherited state (OpenTelemetry, store handles)
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    run = uuid.uuid4().hex[:8]
    tags = [f"prod-{run}-{i}" for i in range(producers)]
    share = total // producers
    target = _keep_alive_producer if keep_alive else _producer
    procs = [ctx.Process(target=target, args=(url, share, tag, ready, go, out, run_requests)) for tag in tags]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=300)
    go.set()
    spans = [out.get(timeout=600) for _ in procs]
    acks = sorted(a for *_, batch in spans for a in batch)
    for p in procs:
        p.join(30)
        if p.exitcode != 0:
            raise RuntimeError(f"producer exited with {p.exitcode}")
    elapsed = max(e for _, e, _ in spans) - min(s for s, _, _ in spans)
    listed = ", ".join(f"'{t}'" for t in tags)
    stored = client.query(url, f'SELECT COUNT(*) FROM "remote"."metrics" WHERE execution_tag IN ({listed})')[1][0][0]
    if stored != share * producers:
        raise RuntimeError(f"{producers} producers: {stored} spans stored of {share * producers}")
    return {
        "producers": producers,
        "connections": "kept" if keep_alive else "one per request",
        "spans": share * producers,
        "seconds": round(elapsed, 3),
        "spans_per_second": round(share * producers / elapsed),
        "ack_p50_s": round(statistics.median(acks), 4),
        "ack_p99_s": round(acks[min(len(acks) - 1, int(0.99 * len(acks)))], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--spans", type=int, default=40_000, help="spans per run, all producers together")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--new-connections", action="store_true",
                        help="a new connection per request (default: each producer keeps one, as OTLP exporters do)")
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
                run = bench_producers(col.url, args.spans, args.producers, not args.new_connections)
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
