"""PROV export and Neo4j load time as a run grows (issue 7): epochs per execution and executions
per dataflow. Writes bench/results/prov_scale.json and bench/results/prov_scale.png.

    python bench/bench_prov_scale.py [--quick] [--epochs 10,100,1000,10000] [--executions 1,10,50]
                                     [--no-neo4j]

Each execution is the seed's life cycle (tests/seedflow.py: loaddata, splitdata, trainmodel
with one ``otrainmodel`` element per epoch, testmodel), recorded through the DfAnalyzer API into
an embedded store. Timed: ``build_document`` (store -> ProvDocument), writing PROV-JSON and
PROV-N (``prov.write``; the PNG drawing is left out: graphviz layout, not DLProv, dominates it),
and ``neo4j_loader.load`` into a local Neo4j (``services.neo4j_local``). The epochs sweep
exports one execution each; the executions sweep exports a whole dataflow (10 epochs per run).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import dlprov_otel
from dlprov_otel.prov import build_document, write
from tests.seedflow import record_seed_flow

RESULTS = Path(__file__).parent / "results"
RUN_EPOCHS = 10  # epochs of each execution in the executions sweep


def measure(store: Any, out: Path, stem: str, neo4j: Any, **select: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    doc = build_document(store, **select)
    t1 = time.perf_counter()
    write(doc, out / f"{stem}.json", "json")
    t2 = time.perf_counter()
    write(doc, out / f"{stem}.provn", "provn")
    t3 = time.perf_counter()
    r: dict[str, Any] = {
        "records": len(doc.get_records()),
        "build_s": t1 - t0,
        "json_s": t2 - t1,
        "provn_s": t3 - t2,
        "export_s": t3 - t0,
        "json_bytes": (out / f"{stem}.json").stat().st_size,
    }
    if neo4j is not None:
        from dlprov_otel.neo4j_loader import load

        t4 = time.perf_counter()
        loaded = load(doc, neo4j.uri, neo4j.user, neo4j.password)
        r["neo4j_load_s"] = time.perf_counter() - t4
        # the plan, scientist and hardware nodes are shared with earlier loads (stable ids)
        for k in ("nodes", "relationships", "nodes_created", "relationships_created"):
            r[k] = loaded[k]
    return r


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for ax, key, xlabel in (
        (axes[0], "by_epochs", "epochs in one execution"),
        (axes[1], "by_executions", f"executions in one dataflow ({RUN_EPOCHS} epochs each)"),
    ):
        rows = result[key]
        xs = [r["x"] for r in rows]
        for metric, label in (("build_s", "build_document"), ("export_s", "build + JSON + PROV-N"),
                              ("neo4j_load_s", "Neo4j load")):  # fmt: skip
            if all(metric in r for r in rows):
                ax.plot(xs, [r[metric] for r in rows], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("seconds")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"PROV export and Neo4j load growth ({result['machine']['cores']} cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def slope(rows: list[dict[str, Any]], metric: str) -> float | None:
    """Log-log growth exponent between the two largest sizes (1 = linear; fixed costs, which
    dominate the small sizes, are left out that way)."""
    import math

    pts = [(r["x"], r[metric]) for r in rows if metric in r and r[metric] > 0]
    if len(pts) < 2 or pts[-1][0] == pts[-2][0]:
        return None
    return math.log(pts[-1][1] / pts[-2][1]) / math.log(pts[-1][0] / pts[-2][0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="epochs 10,100,1000; executions 1,10")
    ap.add_argument("--epochs", default="10,100,1000,10000")
    ap.add_argument("--executions", default="1,10,50")
    ap.add_argument("--no-neo4j", action="store_true", help="PROV export only")
    args = ap.parse_args()
    if args.quick:
        args.epochs, args.executions = "10,100,1000", "1,10"
    epochs = [int(x) for x in args.epochs.split(",") if x]
    executions = [int(x) for x in args.executions.split(",") if x]

    from bench_core import machine

    result: dict[str, Any] = {
        "benchmark": "prov_scale",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": machine(),
        "config": {"epochs": epochs, "executions": executions, "run_epochs": RUN_EPOCHS, "quick": args.quick},
    }
    tmp = Path(tempfile.mkdtemp(prefix="dlprov-bench-prov-"))
    neo4j = None
    try:
        if not args.no_neo4j:
            from dlprov_otel.services import neo4j_local

            t0 = time.perf_counter()
            neo4j = neo4j_local.start(data_dir=tmp / "neo4j", state_file=tmp / "neo4j.json")
            result["neo4j_start_s"] = time.perf_counter() - t0
        dlprov_otel.configure(store=tmp / "store")
        store = dlprov_otel.get_store()
        out = tmp / "out"
        out.mkdir()
        # untimed: the first build and load pay for imports, Neo4j's constraints and query plans
        warm = record_seed_flow(tmp / "store", epochs=RUN_EPOCHS, exec_tag="warmup", dataflow="scale_warmup")
        measure(store, out, "warmup", neo4j, execution=warm)
        result["by_epochs"] = []
        for n in epochs:
            t0 = time.perf_counter()
            tag = record_seed_flow(tmp / "store", epochs=n, exec_tag=f"epochs-{n}", dataflow="scale_epochs")
            recorded = time.perf_counter() - t0
            r = {"x": n, "record_s": recorded, **measure(store, out, f"epochs-{n}", neo4j, execution=tag)}
            result["by_epochs"].append(r)
            print(json.dumps(r), flush=True)
        result["by_executions"] = []
        for k in executions:
            df = f"scale_runs_{k}"
            t0 = time.perf_counter()
            for i in range(k):
                record_seed_flow(tmp / "store", epochs=RUN_EPOCHS, exec_tag=f"{df}-{i}", dataflow=df)
            recorded = time.perf_counter() - t0
            r = {"x": k, "record_s": recorded, **measure(store, out, df, neo4j, dataflow=df)}
            result["by_executions"].append(r)
            print(json.dumps(r), flush=True)
        dlprov_otel.shutdown()
    finally:
        if neo4j is not None:
            neo4j.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    result["growth_exponent"] = {
        key: {m: slope(result[key], m) for m in ("build_s", "export_s", "neo4j_load_s")}
        for key in ("by_epochs", "by_executions")
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "prov_scale.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, RESULTS / "prov_scale.png")
    print(json.dumps(result["growth_exponent"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
