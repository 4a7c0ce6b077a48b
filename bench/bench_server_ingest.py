"""Server ingest benchmark (issue 13): rows/s into the embedded store and into a MonetDB
server, side by side in one run, with 100 rows per span. On the server, the bulk path
(``COPY INTO ... FROM STDIN``) is measured beside the multi-row parameterised ``INSERT`` it
replaced (kept here, in this file, as the baseline). Writes bench/results/server_ingest.json.

    python bench/bench_server_ingest.py [--quick] [--url monetdb://...]

Without --url (or DLPROV_BENCH_MONETDB_URL) it starts a server of its own with
scripts/monetdb.sh (built once into the cache) and stops it afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import dlprov_otel
from dlprov_otel import Dataflow, DataSet, Element, Task
from dlprov_otel.exporter import MonetDBSpanExporter
from dlprov_otel.store import Store, open_store
from dlprov_otel.store.server_backend import ServerBackend

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SCRIPT = HERE.parent / "scripts" / "monetdb.sh"


class InsertBackend(ServerBackend):
    """The server write path before issue 13: one parameterised multi-row INSERT per ~20k values."""

    def append(self, schema: str, table: str, columns: list[tuple[str, str]], data: dict[str, list[Any]], n: int):
        names = ", ".join(f'"{c}"' for c, _ in columns)
        row_ph = "(" + ", ".join("?" for _ in columns) + ")"
        step = max(1, 20_000 // max(1, len(columns)))
        for start in range(0, n, step):
            end = min(n, start + step)
            params: list[Any] = []
            for i in range(start, end):
                for c, t in columns:
                    v = data[c][i]
                    if v is not None and t in ("double", "real", "float") and v != v:
                        v = None
                    elif t == "timestamp" and isinstance(v, int):
                        v = dt.datetime.fromtimestamp(v / 1e9, tz=dt.UTC).replace(tzinfo=None)
                    params.append(v)
            self.execute(
                f'INSERT INTO "{schema}"."{table}" ({names}) VALUES ' + ", ".join(row_ph for _ in range(end - start)),
                params,
            )


def capture_spans(tmp: Path, tag: str, n: int, elements: int) -> list:
    """`n` real dataset spans of `elements` rows each (and their task), made by the SDK."""
    tel = dlprov_otel.configure(store=tmp / "scratch", schedule_delay=3600)
    mem = InMemorySpanExporter()
    tel.provider.add_span_processor(SimpleSpanProcessor(mem))
    Dataflow(tag, predefined=True).save()
    t = Task(1, tag, f"bench-{elements}", "trainmodel")
    t.begin()
    for i in range(n):
        t.add_dataset(DataSet("otrainmodel", [Element(["2024-01-01 00:00:00", 1.5, 0.1, 0.9, 0.2, 0.8, i])] * elements))
        t.save()
    t.end()
    tel.recorder.drain(60)  # dataset spans are built off the caller's thread: wait for them
    spans = list(mem.get_finished_spans())
    dlprov_otel.shutdown()
    return spans


def server_backend(url: str, cls: type[ServerBackend]) -> ServerBackend:
    p = urlsplit(url)
    return cls(
        p.hostname or "localhost",
        p.port or 50000,
        unquote(p.username or ""),
        unquote(p.password or ""),
        p.path.strip("/"),
    )


def run_once(store: Store, spans: list, tag: str, batch_spans: int) -> dict:
    exporter = MonetDBSpanExporter(store=store)
    # the dataflow spec and table creation are a one-off: store them first
    assert exporter.export([s for s in spans if s.attributes.get("dlprov.span.kind") == "dataflow"]).name == "SUCCESS"
    data = [s for s in spans if s.attributes.get("dlprov.span.kind") != "dataflow"]
    t0 = time.perf_counter()
    for i in range(0, len(data), batch_spans):
        assert exporter.export(data[i : i + batch_spans]).name == "SUCCESS"
    seconds = time.perf_counter() - t0
    rows = store.query(f'SELECT COUNT(*) FROM "{tag}"."otrainmodel"').rows[0][0]
    return {"spans": len(data), "rows": int(rows), "seconds": seconds, "rows_per_s": rows / seconds}


def measure(name: str, make_store, spans_for, repeat: int, batch_spans: int) -> dict:
    runs = []
    for _ in range(repeat):
        tag, spans = spans_for()
        store = make_store()
        try:
            runs.append(run_once(store, spans, tag, batch_spans))
        finally:
            store.close()
    best = statistics.median(r["rows_per_s"] for r in runs)
    print(f"{name:>16}: {best:>10,.0f} rows/s (median of {repeat}; rows {runs[0]['rows']})", flush=True)
    return {"rows_per_s_median": best, "runs": runs}


def start_server(state: Path) -> str:
    env = {**os.environ, "DLPROV_MONETDB_STATE": str(state)}
    out = subprocess.run([str(SCRIPT), "start"], env=env, check=True, capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer spans and repeats")
    ap.add_argument("--url", default=os.environ.get("DLPROV_BENCH_MONETDB_URL"))
    ap.add_argument("--spans", type=int, default=None, help="dataset spans per run (100 rows each)")
    args = ap.parse_args()
    n = args.spans or (100 if args.quick else 500)
    repeat = 1 if args.quick else 3
    elements, batch_spans = 100, 200  # 200 spans of 100 rows: 20,000 rows per export call
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        url, state = args.url, None
        if not url:
            state = tmp / "monetdb"
            url = start_server(state)
        try:
            cache: dict[str, list] = {}

            def spans_for() -> tuple[str, list]:
                tag = "bench_" + uuid.uuid4().hex[:10]
                # spans carry their dataflow tag: make a fresh set per run (the SDK is cheap here)
                cache[tag] = capture_spans(tmp / tag, tag, n, elements)
                return tag, cache.pop(tag)

            k = iter(range(1_000_000))
            result = {
                "when": dt.datetime.now().isoformat(timespec="seconds"),
                "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
                "rows_per_span": elements,
                "spans_per_run": n,
                "spans_per_export": batch_spans,
                "embedded": measure(
                    "embedded", lambda: open_store(tmp / f"emb-{next(k)}"), spans_for, repeat, batch_spans
                ),
                "server_insert_before": measure(
                    "server INSERT",
                    lambda: Store(server_backend(url, InsertBackend), url),
                    spans_for,
                    repeat,
                    batch_spans,
                ),
                "server_copy": measure(
                    "server COPY",
                    lambda: Store(server_backend(url, ServerBackend), url),
                    spans_for,
                    repeat,
                    batch_spans,
                ),
            }
            result["speedup_copy_over_insert"] = (
                result["server_copy"]["rows_per_s_median"] / result["server_insert_before"]["rows_per_s_median"]
            )
            print(f"COPY / INSERT: {result['speedup_copy_over_insert']:.1f}x", flush=True)
        finally:
            if state is not None:
                env = {**os.environ, "DLPROV_MONETDB_STATE": str(state)}
                subprocess.run([str(SCRIPT), "stop"], env=env, check=False)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "server_ingest.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
