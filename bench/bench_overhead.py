"""Training overhead side by side (issue 7): no provenance, DLProv in-process, DLProv over OTLP,
MLflow, and the original DLProv pattern, for Keras and PyTorch.

MNIST-sized generated data (60,000 x 784 float32, 10 classes, 10,000 validation rows), a small
MLP (784-128-64-10, Adam, batch 128), several epochs with a validation pass each. Variants:

- ``none``: the training alone.
- ``dlprov``: ``KerasInstrumentor`` / ``TorchInstrumentor`` into an embedded MonetDB store.
- ``dlprov_otlp``: the same, exporting OTLP/HTTP to a DLProv collector (one subprocess, started
  before the runs; its start-up is reported as a service cost).
- ``mlflow``: SQLite tracking store (``sqlite:///...``). Keras: ``mlflow.keras.autolog(
  log_models=False)`` (DLProv does not store the model either); PyTorch has no autolog for plain
  loops, so the script does what MLflow documents: ``log_params`` once, ``log_metrics`` per epoch.
- ``original``: the original DLProv pattern: one blocking HTTP POST per Dataflow.save /
  Task.begin / Task.save (per epoch) / Task.end to a server process that writes each call into
  MonetDB before answering (``bench/original_pattern_server.py``).

Every run is a fresh subprocess (no imports or framework state leak), repetitions are
interleaved (A B C D E, A B C D E, ...), results are medians and ratios against ``none``. Inside
the subprocess a timer marks each epoch; ``wall = fixed + epochs x per-epoch``, so the fixed
(start/stop) cost and the per-epoch cost are reported apart. Writes
``bench/results/overhead.json`` and ``bench/results/overhead.png``.

    python bench/bench_overhead.py [--quick] [--reps 5] [--epochs 5] [--frameworks keras,torch]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
VARIANTS = ("none", "dlprov", "dlprov_otlp", "mlflow", "original")
FRAMEWORKS = ("keras", "torch")
BATCH = 128
TARGET_PCT = 1.0


# --------------------------------------------------------------------------- child side


def _load(data: Path) -> tuple[Any, Any, Any, Any]:
    import numpy as np

    return tuple(np.load(data / f"{n}.npy") for n in ("x", "y", "xv", "yv"))  # type: ignore[return-value]


class _Original:
    """The original pattern's calls from a training script (dfa-lib-python style)."""

    def __init__(self, url: str, dataflow: str, exec_tag: str, epochs: int) -> None:
        sys.path.insert(0, str(HERE))
        from original_pattern_server import TRAIN_DATAFLOW, DfaClient

        self.client, self.df, self.tag, self.epochs = DfaClient(url), dataflow, exec_tag, epochs
        self.client.save_dataflow(dataflow, TRAIN_DATAFLOW)
        self.t0 = time.perf_counter()

    def begin(self, optimizer: str, lr: float, layers: int) -> None:
        sets = {"itrainmodel": [[optimizer, lr, self.epochs, layers]]}
        self.client.task(self.df, self.tag, 1, "trainmodel", "RUNNING", sets)

    def epoch(self, epoch: int, loss: float, acc: float, val_loss: float, val_acc: float) -> None:
        row = [time.strftime("%Y-%m-%d %H:%M:%S"), time.perf_counter() - self.t0, loss, acc, val_loss, val_acc, epoch]
        status = "FINISHED" if epoch == self.epochs - 1 else "RUNNING"  # the seed's `end()` on the last epoch
        self.client.task(self.df, self.tag, 1, "trainmodel", status, {"otrainmodel": [row]})


def _setup(variant: str, framework: str, a: argparse.Namespace) -> Any:
    """Import and configure the tool; returns what the training loop calls (or None)."""
    if variant in ("dlprov", "dlprov_otlp"):
        import dlprov_otel

        if variant == "dlprov":
            dlprov_otel.configure(store=a.store)
        else:
            dlprov_otel.configure(endpoint=a.endpoint, spool_dir=Path(a.store) / "spool")
        if framework == "keras":
            from dlprov_otel.integrations.keras import KerasInstrumentor

            KerasInstrumentor().instrument(execution=a.exec_tag)
        else:
            from dlprov_otel.integrations.torch import TorchInstrumentor

            TorchInstrumentor().instrument(execution_tag=a.exec_tag)
    elif variant == "mlflow":
        import mlflow

        mlflow.set_tracking_uri(f"sqlite:///{a.store}/mlflow.db")
        if framework == "keras":
            mlflow.keras.autolog(log_models=False, silent=True)
        else:
            mlflow.start_run(run_name=a.exec_tag)
        return mlflow
    elif variant == "original":
        return _Original(a.endpoint, framework, a.exec_tag, a.epochs)
    return None


def _teardown(variant: str, framework: str, tool: Any) -> None:
    if variant in ("dlprov", "dlprov_otlp"):
        import dlprov_otel

        if framework == "torch":
            # the last epoch's row is emitted when the training ends; zero-code that is at
            # exit, here it must be before the flush
            from dlprov_otel.integrations.torch import finish

            finish()
        if not dlprov_otel.flush(120):
            raise RuntimeError("provenance was not flushed")
        dlprov_otel.shutdown()  # what the end of a script pays: the store is closed
    elif variant == "mlflow" and tool.active_run() is not None:
        tool.end_run()


def _verify(variant: str, framework: str, a: argparse.Namespace, tool: Any) -> int:
    """How many epoch rows the tool stored for this run (must equal the epochs); not timed."""
    sql = f"SELECT COUNT(*) FROM \"{framework}\".\"otrainmodel\" WHERE execution_tag = '{a.exec_tag}'"
    if variant == "dlprov":
        from dlprov_otel.store import open_store

        store = open_store(a.store)
        try:
            return int(store.query(sql).rows[0][0])
        finally:
            store.close()
    if variant == "dlprov_otlp":
        from dlprov_otel import client

        return int(client.query(a.endpoint, sql)[1][0][0])
    if variant == "mlflow":
        run = tool.last_active_run()
        return len(tool.MlflowClient().get_metric_history(run.info.run_id, "loss"))
    if variant == "original":
        with urllib.request.urlopen(f"{a.endpoint}/count/{framework}/otrainmodel/{a.exec_tag}") as r:
            return int(json.loads(r.read())["count"])
    return a.epochs


def _train_keras(a: argparse.Namespace, tool: Any, variant: str, marks: list[tuple[float, float]]) -> None:
    import keras

    x, y, xv, yv = _load(Path(a.data))
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((x.shape[1],)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            marks.append((time.perf_counter(), time.process_time()))

        def on_train_end(self, logs: Any = None) -> None:
            # after every callback's on_epoch_end of the last epoch: the epoch's whole cost
            marks.append((time.perf_counter(), time.process_time()))

    callbacks: list[Any] = [Timer()]
    if variant == "original":

        class OriginalDLProv(keras.callbacks.Callback):  # as in the original MNIST example
            def on_train_begin(self, logs: Any = None) -> None:
                tool.begin("adam", 1e-3, len(model.layers))

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                lg = logs or {}
                tool.epoch(epoch, lg["loss"], lg["accuracy"], lg["val_loss"], lg["val_accuracy"])

        callbacks.append(OriginalDLProv())
    model.fit(x, y, validation_data=(xv, yv), epochs=a.epochs, batch_size=BATCH, verbose=0, callbacks=callbacks)


def _train_torch(a: argparse.Namespace, tool: Any, variant: str, marks: list[tuple[float, float]]) -> None:
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    x, y, xv, yv = (torch.from_numpy(v) for v in _load(Path(a.data)))
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(x.shape[1], 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    train_loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True)
    val_loader = DataLoader(TensorDataset(xv, yv), batch_size=1000)
    epochs = a.epochs
    if variant == "original":
        tool.begin("adam", 1e-3, 5)
    elif variant == "mlflow":
        tool.log_params({"optimizer": "adam", "learning_rate": 1e-3, "epochs": epochs, "batch_size": BATCH})
    for epoch in range(epochs):
        marks.append((time.perf_counter(), time.process_time()))
        model.train()
        total, correct = 0.0, 0
        for xb, yb in train_loader:
            optimizer.zero_grad()
            out = model(xb)
            loss = criterion(out, yb)
            loss.backward()
            optimizer.step()
            total += loss.item()
            correct += int((out.argmax(1) == yb).sum())
        model.eval()
        val_total, val_correct = 0.0, 0
        with torch.no_grad():
            for xb, yb in val_loader:
                out = model(xb)
                val_total += criterion(out, yb).item()
                val_correct += int((out.argmax(1) == yb).sum())
        m = {
            "loss": total / len(train_loader),
            "accuracy": correct / len(x),
            "val_loss": val_total / len(val_loader),
            "val_accuracy": val_correct / len(xv),
        }
        if variant == "original":
            tool.epoch(epoch, m["loss"], m["accuracy"], m["val_loss"], m["val_accuracy"])
        elif variant == "mlflow":
            tool.log_metrics(m, step=epoch)
    marks.append((time.perf_counter(), time.process_time()))


def child(a: argparse.Namespace) -> int:
    t_begin = time.perf_counter()
    if a.framework == "keras":
        import keras  # noqa: F401  (framework import: the same in every variant)
    else:
        import torch  # noqa: F401
    t_framework = time.perf_counter()
    tool = _setup(a.variant, a.framework, a)
    t_setup = time.perf_counter()
    marks: list[tuple[float, float]] = []
    (_train_keras if a.framework == "keras" else _train_torch)(a, tool, a.variant, marks)
    t_fit = time.perf_counter()
    # fit's own wrap-up (on_train_end callbacks, the instrumentor's end of task) counts as fixed
    _teardown(a.variant, a.framework, tool)
    t_teardown = time.perf_counter()
    stored = _verify(a.variant, a.framework, a, tool)
    t_verify = time.perf_counter()
    if stored != a.epochs:
        raise SystemExit(f"{a.variant}: {stored} epoch rows stored, expected {a.epochs}")
    Path(a.result).write_text(
        json.dumps(
            {
                "framework_import_s": t_framework - t_begin,
                "setup_s": t_setup - t_framework,
                "fit_start_s": marks[0][0] - t_setup,  # model build + fit's own start (instrumentor work)
                "epochs_s": [b[0] - a[0] for a, b in itertools.pairwise(marks)],
                # CPU time of the whole process (all its threads, the exporter's included): less
                # sensitive than wall time to other load on the machine, blind to waiting
                "epochs_cpu_s": [b[1] - a[1] for a, b in itertools.pairwise(marks)],
                "cpu_total_s": time.process_time(),
                "fit_end_s": t_fit - marks[-1][0],
                "teardown_s": t_teardown - t_fit,
                "verify_s": t_verify - t_teardown,
                "epoch_rows_stored": stored,
            }
        )
    )
    return 0


# --------------------------------------------------------------------------- parent side


def make_data(d: Path, n_train: int, n_val: int) -> None:
    """MNIST-sized float32 features in [0, 1) with labels from a noisy linear map (learnable)."""
    import numpy as np

    rng = np.random.default_rng(0)
    w = rng.standard_normal((784, 10), dtype=np.float32)
    x = rng.random((n_train + n_val, 784), dtype=np.float32)
    y = (x @ w + 0.5 * rng.standard_normal((n_train + n_val, 10), dtype=np.float32)).argmax(1).astype(np.int64)
    for name, v in (("x", x[:n_train]), ("y", y[:n_train]), ("xv", x[n_train:]), ("yv", y[n_train:])):
        np.save(d / f"{name}.npy", v)


def _child_env(threads: int = 0) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DLPROV_", "OTEL_", "MLFLOW_"))}
    if threads:
        # Training threads: on a shared machine two OpenMP threads spin-wait for each other
        # whenever anything else runs, and epoch times swing 10x; one thread is stable.
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
            env[var] = str(threads)
    env.update(
        PYTHONPATH=str(ROOT),
        TF_CPP_MIN_LOG_LEVEL="3",
        DLPROV_LOG_LEVEL="WARNING",
        GIT_PYTHON_REFRESH="quiet",  # MLflow probes git otherwise
        MLFLOW_ENABLE_ASYNC_LOGGING="false",
    )
    return env


def run_child(
    tmp: Path, framework: str, variant: str, epochs: int, tag: str, endpoint: str | None, threads: int
) -> dict:
    store = tmp / "stores" / f"{framework}-{variant}"  # one store per tool, kept between runs, as a user's
    store.mkdir(parents=True, exist_ok=True)
    result = tmp / f"{tag}.json"
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--child",
        "--framework", framework, "--variant", variant, "--epochs", str(epochs),
        "--data", str(tmp / "data"), "--store", str(store), "--exec-tag", tag, "--result", str(result),
    ]  # fmt: skip
    if endpoint:
        cmd += ["--endpoint", endpoint]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=_child_env(threads), cwd=tmp, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{framework}/{variant} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    r = json.loads(result.read_text())
    r["wall_s"] = wall
    # wall = fixed + epochs x per-epoch: the first epoch's extra (tracing, warm caches) is fixed
    r["epoch_s"] = statistics.median(r["epochs_s"][1:] or r["epochs_s"])
    r["epoch_cpu_s"] = statistics.median(r["epochs_cpu_s"][1:] or r["epochs_cpu_s"])
    r["fixed_s"] = wall - r["verify_s"] - epochs * r["epoch_s"]
    return r


def start_original_server(tmp: Path) -> tuple[subprocess.Popen, str, float]:
    from dlprov_otel.config import free_port

    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "original_pattern_server.py"), "--store", str(tmp / "original-db"),
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_child_env(),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=1):
                return proc, url, time.perf_counter() - t0
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"original-pattern server exited: {proc.stdout.read()!r}") from None
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("original-pattern server did not start")


def summarize(runs: list[dict]) -> dict[str, dict]:
    """Medians per variant and their ratios to ``none``; pair ratios use the same repetition."""
    by: dict[str, list[dict]] = {}
    for r in runs:
        by.setdefault(r["variant"], []).append(r)
    keys = ("wall_s", "epoch_s", "fixed_s", "epoch_cpu_s")
    med = {v: {k: statistics.median(x[k] for x in rs) for k in keys} for v, rs in by.items()}
    base = med["none"]
    base_by_rep = {r["rep"]: r for r in by["none"]}
    # resolution: how far the untraced runs themselves spread (half their range, % of median)
    noise = {k: (max(x[k] for x in by["none"]) - min(x[k] for x in by["none"])) / 2 / base[k] * 100 for k in keys}
    out: dict[str, dict] = {}
    for v, m in med.items():
        pairs = [r["epoch_s"] / base_by_rep[r["rep"]]["epoch_s"] for r in by[v] if r["rep"] in base_by_rep]
        walls = [r["wall_s"] / base_by_rep[r["rep"]]["wall_s"] for r in by[v] if r["rep"] in base_by_rep]
        out[v] = {
            "runs": len(by[v]),
            "wall_median_s": m["wall_s"],
            "epoch_median_s": m["epoch_s"],
            "fixed_median_s": m["fixed_s"],
            "epoch_overhead_pct": (m["epoch_s"] / base["epoch_s"] - 1) * 100,
            "epoch_pair_ratio_median": statistics.median(pairs),
            "epoch_noise_pct": noise["epoch_s"],
            "wall_noise_pct": noise["wall_s"],
            "epoch_cpu_median_s": m["epoch_cpu_s"],
            "epoch_cpu_overhead_pct": (m["epoch_cpu_s"] / base["epoch_cpu_s"] - 1) * 100,
            "wall_overhead_pct": (m["wall_s"] / base["wall_s"] - 1) * 100,
            "wall_pair_ratio_median": statistics.median(walls),
            "fixed_extra_s": m["fixed_s"] - base["fixed_s"],
            # what the fixed cost costs per epoch-equivalent on this job
            "fixed_extra_epochs": (m["fixed_s"] - base["fixed_s"]) / base["epoch_s"],
            "phases_median_s": {
                k: statistics.median(x[k] for x in by[v])
                for k in ("framework_import_s", "setup_s", "fit_start_s", "fit_end_s", "teardown_s")
            },
        }
    return out


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fws = list(result["frameworks"])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    width = 0.8 / max(1, len(fws))
    for i, fw in enumerate(fws):
        s = result["frameworks"][fw]["summary"]
        vs = [v for v in VARIANTS if v in s and v != "none"]
        xs = [j + i * width for j in range(len(vs))]
        panels = (
            ("epoch_overhead_pct", "epoch_noise_pct"),
            ("wall_overhead_pct", "wall_noise_pct"),
            ("fixed_extra_s", None),
        )
        for ax, (key, noise) in zip(axes, panels, strict=True):
            # error bars: the spread of the runs without provenance, the resolution of the figure
            err = [s[v][noise] for v in vs] if noise else None
            ax.bar(xs, [s[v][key] for v in vs], width, yerr=err, capsize=3, label=fw)
            ax.set_xticks([j + width * (len(fws) - 1) / 2 for j in range(len(vs))], vs, rotation=20)
    axes[0].set_title("per-epoch overhead vs none (%, ± noise)")
    axes[1].set_title("whole-run overhead vs none (%, ± noise)")
    axes[2].set_title("extra fixed (start/stop) cost (s)")
    for ax in axes[:2]:
        ax.axhline(TARGET_PCT, color="red", linestyle="--", linewidth=1, label="target 1 %")
        ax.set_yscale("symlog", linthresh=1)
    for ax in axes:
        ax.axhline(0, color="black", linewidth=0.5)
        ax.legend(fontsize=8)
    c = result["config"]
    fig.suptitle(
        f"MLP on {c['train_samples']:,} x 784, {c['epochs']} epochs, median of {c['reps']} interleaved runs "
        f"({result['machine']['cores']} cores)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("tensorflow-cpu", "keras", "torch", "mlflow-skinny", "opentelemetry-sdk", "monetdbe", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "absent"
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="12,000 samples, 5 epochs, 3 repetitions")
    ap.add_argument("--threads", type=int, default=1, help="training threads (0: the framework's default)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--samples", type=int, default=60_000)
    ap.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    # child mode (internal)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("--framework", "--variant", "--data", "--store", "--exec-tag", "--result", "--endpoint"):
        ap.add_argument(name, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a)
    if a.quick:
        # 5 epochs: the export of what the first epoch recorded (tables, lineage) spills into
        # the second; the median of epochs 2..5 is the steady state
        a.samples, a.epochs, a.reps = 12_000, 5, 3
    frameworks = [f for f in a.frameworks.split(",") if f]
    variants = [v for v in a.variants.split(",") if v]
    if "none" not in variants:
        variants.insert(0, "none")
    unknown = set(frameworks) - set(FRAMEWORKS) | set(variants) - set(VARIANTS)
    if unknown:
        ap.error(f"unknown: {sorted(unknown)}")
    import importlib.util

    skipped = {}
    if "mlflow" in variants and importlib.util.find_spec("mlflow") is None:
        variants.remove("mlflow")  # said in the output and the JSON, not silently
        skipped["mlflow"] = "not installed (pip install mlflow-skinny sqlalchemy alembic)"
        print("mlflow variant skipped:", skipped["mlflow"], file=sys.stderr)

    sys.path.insert(0, str(ROOT))
    from bench_core import machine

    from tests.collector_proc import start_collector

    result: dict[str, Any] = {
        "benchmark": "overhead",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": machine(),
        "versions": versions(),
        "config": {
            "train_samples": a.samples, "val_samples": a.samples // 6, "features": 784,
            "model": "MLP 784-128-64-10, Adam, batch 128", "epochs": a.epochs, "reps": a.reps,
            "training_threads": a.threads or "framework default",
            "quick": a.quick, "variants": variants, "order": "interleaved: " + " ".join(variants) + ", repeated",
            "mlflow": "keras: mlflow.keras.autolog(log_models=False); torch: log_params + log_metrics per epoch",
        },
        "target_percent": TARGET_PCT,
        "skipped_variants": skipped,
        "services": {},
        "frameworks": {},
    }
    tmp = Path(tempfile.mkdtemp(prefix="dlprov-bench-overhead-"))
    (tmp / "data").mkdir()
    make_data(tmp / "data", a.samples, a.samples // 6)
    collector = original = None
    try:
        t0 = time.perf_counter()
        if "dlprov_otlp" in variants:
            collector = start_collector(tmp / "collector", extra_args=["--no-grpc"])
            result["services"]["collector_start_s"] = time.perf_counter() - t0
        if "original" in variants:
            original, original_url, started = start_original_server(tmp)
            result["services"]["original_server_start_s"] = started
        endpoints = {"dlprov_otlp": collector.url if collector else None}
        if original is not None:
            endpoints["original"] = original_url
        for fw in frameworks:
            # untimed: brings the framework's files into the page cache, so rep 0 is not special
            run_child(tmp, fw, "none", 1, f"warmup-{fw}", None, a.threads)
            runs = []
            for rep in range(a.reps):
                for v in variants:
                    tag = f"{fw}-{v}-{rep}"
                    r = run_child(tmp, fw, v, a.epochs, tag, endpoints.get(v), a.threads)
                    r.update(framework=fw, variant=v, rep=rep)
                    runs.append(r)
                    print(
                        f"{fw:5} rep {rep} {v:12} wall {r['wall_s']:7.2f} s  epoch {r['epoch_s']:6.3f} s  "
                        f"fixed {r['fixed_s']:6.2f} s",
                        flush=True,
                    )
            summary = summarize(runs)
            result["frameworks"][fw] = {"summary": summary, "runs": runs}
            for v, s in summary.items():
                print(
                    f"{fw:5} {v:12} per-epoch {s['epoch_overhead_pct']:+7.2f} % (CPU "
                    f"{s['epoch_cpu_overhead_pct']:+7.2f} %)  whole run "
                    f"{s['wall_overhead_pct']:+7.2f} %  fixed {s['fixed_extra_s']:+6.2f} s",
                    flush=True,
                )
    finally:
        if collector is not None:
            collector.stop()
        if original is not None:
            original.terminate()
            original.wait(15)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, RESULTS / "overhead.png")
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
