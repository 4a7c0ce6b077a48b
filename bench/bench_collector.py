"""Collector benchmark (issue 6): OTLP/HTTP ingest rate of a batch of dataset spans into a
collector process with an embedded store. Writes bench/results/collector.json.

    python bench/bench_collector.py [--spans 10000] [--repeat 3] [--producers 1,4,8]
                                    [--producer-spans 16000]

- ``sdk_flush``: the DfAnalyzer API emits N ``otrainmodel`` rows (one span each) with
  ``configure(endpoint=...)``; timed is ``flush()``: encode, POST, decode, store, commit, answer.
- ``post_protobuf`` / ``post_gzip``: one pre-encoded request of N spans POSTed (server side).
- ``post_duplicate``: the same request again (every span already stored: the idempotent path).
- ``producers``: 1, 4 and 8 concurrent senders (separate processes, as separate training
  jobs are) POSTing pre-encoded requests of 512 spans (the SDK's batch) of one total;
  spans/s = total / (last answer - first request), every span checked in the store.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import dlprov_otel
from dlprov_otel import Dataflow, DataSet, Element, Task, client
from tests.collector_proc import dataset_request, start_collector

RESULTS = Path(__file__).parent / "results"


def post(url: str, body: bytes, gz: bool = False) -> float:
    headers = {"Content-Type": "application/x-protobuf"}
    if gz:
        headers["Content-Encoding"] = "gzip"
    req = urllib.request.Request(url + "/v1/traces", data=body, headers=headers, method="POST")
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as resp:
        resp.read()
        assert resp.status == 200
    return time.perf_counter() - t0


def sdk_flush(url: str, n: int, tmp: Path) -> float:
    tel = dlprov_otel.configure(endpoint=url, schedule_delay=3600, spool_dir=tmp / "spool")
    Dataflow("mnist", predefined=True).save()
    task = Task(1, "mnist", f"bench-{uuid.uuid4().hex[:8]}", "trainmodel")
    task.begin()
    for i in range(n):
        task.add_dataset(DataSet("otrainmodel", [Element(["2024-01-01 00:00:00", 1.5, 0.1, 0.9, 0.2, 0.8, i])]))
        task.save()
    t0 = time.perf_counter()
    assert dlprov_otel.flush(300)
    elapsed = time.perf_counter() - t0
    stats = tel.stats()
    dlprov_otel.shutdown()
    assert stats["dropped"] == 0 and stats["export_failures"] == 0, stats
    return elapsed


BATCH = 512  # spans per request: the OpenTelemetry SDK's default export batch


def dataset_requests(n: int, tag: str) -> list[bytes]:
    """``n`` dataset spans of execution ``tag`` as requests of BATCH spans (one trace each)."""
    return [dataset_request(min(BATCH, n - i), tag) for i in range(0, n, BATCH)]


def _producer(url: str, n: int, tag: str, ready: mp.Queue, go: mp.Event, out: mp.Queue, make=dataset_requests) -> None:
    """One sender: encode its requests first (not timed), then POST them one after another."""
    bodies = make(n, tag)
    ready.put(1)
    go.wait()
    t0 = time.monotonic()  # system-wide clock: comparable between processes
    acks = [post(url, body) for body in bodies]
    out.put((t0, time.monotonic(), acks))


def bench_producers(url: str, total: int, producers: int, make=dataset_requests) -> dict[str, float]:
    """``total`` spans sent by ``producers`` concurrent processes, each's requests made by
    ``make(n, execution tag)`` (a module-level function); checks they were all stored."""
    ctx = mp.get_context("spawn")  # no inherited state (OpenTelemetry, store handles)
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    run = uuid.uuid4().hex[:8]
    tags = [f"prod-{run}-{i}" for i in range(producers)]
    share = total // producers
    procs = [ctx.Process(target=_producer, args=(url, share, tag, ready, go, out, make)) for tag in tags]
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
        "spans": share * producers,
        "seconds": round(elapsed, 3),
        "spans_per_second": round(share * producers / elapsed),
        "ack_p50_s": round(statistics.median(acks), 4),
        "ack_p99_s": round(acks[min(len(acks) - 1, int(0.99 * len(acks)))], 4),
    }


def freshness(url: str, samples: int, tmp: Path) -> dict[str, float]:
    """Epoch end (the row is emitted) -> the row is answered by the collector's SQL endpoint."""
    dlprov_otel.configure(endpoint=url, spool_dir=tmp / "spool-fresh")  # default schedule delay
    Dataflow("mnist", predefined=True).save()
    tag = f"fresh-{uuid.uuid4().hex[:8]}"
    task = Task(1, "mnist", tag, "trainmodel")
    task.begin()
    lat = []
    for i in range(samples):
        t0 = time.perf_counter()
        task.add_dataset(DataSet("otrainmodel", [Element(["t", 1.0, 0.1, 0.9, 0.2, 0.8, i])]))
        task.save()
        sql = f'SELECT COUNT(*) FROM "mnist"."otrainmodel" WHERE execution_tag = \'{tag}\' AND epoch = {i}'
        while True:
            try:
                if client.query(url, sql)[1][0][0]:
                    break
            except dlprov_otel.QueryError:  # the relation appears with the first row
                pass
            time.sleep(0.01)
        lat.append(time.perf_counter() - t0)
    task.end()
    dlprov_otel.shutdown()
    lat.sort()
    return {"samples": samples, "p50_s": round(statistics.median(lat), 4), "p99_s": round(lat[int(0.99 * len(lat))], 4)}


def memory(pid: int) -> dict[str, int]:
    """Resident and peak resident memory of the collector process (kB, from /proc)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return {"rss_kb": fields.get("VmRSS", 0), "peak_rss_kb": fields.get("VmHWM", 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spans", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--producers", default="1,4,8", help="concurrent senders, comma-separated")
    parser.add_argument("--producer-spans", type=int, default=16_000, help="spans per producer-count run")
    parser.add_argument("--freshness-samples", type=int, default=100)
    args = parser.parse_args()
    n = args.spans
    from bench_core import machine

    out: dict[str, object] = {"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": machine(), "spans": n,
                              "repeat": args.repeat}  # fmt: skip
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        col = start_collector(tmp / "collector")
        try:
            names = ("sdk_flush", "post_protobuf", "post_gzip", "post_duplicate")
            times: dict[str, list[float]] = {name: [] for name in names}
            for _ in range(args.repeat):
                times["sdk_flush"].append(sdk_flush(col.url, n, tmp))
                body = dataset_request(n, f"bench-{uuid.uuid4().hex[:8]}")
                times["post_protobuf"].append(post(col.url, body))
                times["post_duplicate"].append(post(col.url, body))
                times["post_gzip"].append(post(col.url, gzip.compress(dataset_request(n, uuid.uuid4().hex)), gz=True))
            out["request_bytes"] = len(body)
            out["producers"] = []
            for p in (int(x) for x in args.producers.split(",") if x):
                runs = [bench_producers(col.url, args.producer_spans, p) for _ in range(args.repeat)]
                rates = [r["spans_per_second"] for r in runs]
                out["producers"].append(
                    {
                        "producers": p,
                        "spans": runs[0]["spans"],
                        "spans_per_second_median": round(statistics.median(rates)),
                        "spans_per_second_runs": rates,
                        "ack_p50_s": statistics.median(r["ack_p50_s"] for r in runs),
                        "ack_p99_s": max(r["ack_p99_s"] for r in runs),
                    }
                )
            out["freshness"] = freshness(col.url, args.freshness_samples, tmp)
            out["collector_memory"] = memory(col.proc.pid)
            for name, values in times.items():
                best = min(values)
                out[name] = {
                    "seconds_median": round(statistics.median(values), 3),
                    "spans_per_second_best": round(n / best),
                    "spans_per_second_median": round(n / statistics.median(values)),
                }
        finally:
            col.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "collector.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
