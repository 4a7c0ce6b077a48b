"""The child side of bench/bench_peers.py: one job, the same for every tool.

Runs in the tool's own interpreter (the project's .venv for DLProv and its baseline, the peers'
environment for the others), so it imports only the standard library, torch and the tool.

    python job.py train --tool T --store DIR --tag TAG --result FILE [--epochs 6] [--samples N]
    python job.py loop  --tool T --store DIR --tag TAG --result FILE [--calls 2000] [--max-s 3]
    python job.py kill  --tool T --store DIR --tag TAG --returned FILE [--hz 100]

``train``: a small MLP on generated data; after each epoch one row (loss, accuracy, val_loss,
val_accuracy, epoch, elapsed) through the tool's own per-epoch call, timed around that call.
``loop``: the same call with the same row in a tight loop, no training.
``kill``: rows at ~100 Hz until killed; after each call RETURNS, its index is written to an
unbuffered file, so the parent knows which rows the tool had acknowledged.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tools import make_tool

BATCH = 128


def _row(i: int, t0: float, loss: float, acc: float, val_loss: float, val_acc: float) -> dict[str, float]:
    return {
        "loss": loss,
        "accuracy": acc,
        "val_loss": val_loss,
        "val_accuracy": val_acc,
        "epoch": float(i),
        "elapsed": time.perf_counter() - t0,
    }


def _data(samples: int, val: int):
    import torch

    g = torch.Generator().manual_seed(0)
    w = torch.randn(784, 10, generator=g)
    x = torch.rand(samples + val, 784, generator=g)
    y = (x @ w + 0.5 * torch.randn(samples + val, 10, generator=g)).argmax(1)
    return x[:samples], y[:samples], x[samples:], y[samples:]


def train(a: argparse.Namespace) -> dict:
    t_start = time.perf_counter()
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    t_torch = time.perf_counter()
    tool = make_tool(a.tool, a.store, a.tag)
    tool.start({"optimizer_name": "adam", "learning_rate": 1e-3, "num_epochs": a.epochs, "num_layers": 3})
    t_setup = time.perf_counter()
    x, y, xv, yv = _data(a.samples, a.samples // 5)
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    train_loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True)
    val_loader = DataLoader(TensorDataset(xv, yv), batch_size=1000)
    log_s: list[float] = []
    log_cpu_s: list[float] = []  # CPU time of the calling thread: less sensitive to a loaded machine
    t0 = time.perf_counter()
    for epoch in range(a.epochs):
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
        row = _row(
            epoch, t0, total / len(train_loader), correct / len(x), val_total / len(val_loader), val_correct / len(xv)
        )
        c0, u0 = time.perf_counter(), time.thread_time()
        tool.log(epoch, row)
        log_s.append(time.perf_counter() - c0)
        log_cpu_s.append(time.thread_time() - u0)
    t_train = time.perf_counter()
    tool.stop()
    t_stop = time.perf_counter()
    return {
        "torch_import_s": t_torch - t_start,
        "setup_s": t_setup - t_torch,
        "train_s": t_train - t0,
        "stop_s": t_stop - t_train,
        "log_s": log_s,
        "log_cpu_s": log_cpu_s,
        "final_val_accuracy": row["val_accuracy"],
    }


def loop(a: argparse.Namespace) -> dict:
    tool = make_tool(a.tool, a.store, a.tag)
    tool.start({"optimizer_name": "adam", "learning_rate": 1e-3, "num_epochs": a.calls, "num_layers": 3})
    t0 = time.perf_counter()
    per_call: list[float] = []
    per_call_cpu: list[float] = []
    deadline = t0 + a.max_s
    for i in range(a.calls):
        row = _row(i, t0, 0.5, 0.8, 0.6, 0.75)
        c0, u0 = time.perf_counter(), time.thread_time()
        tool.log(i, row)
        c1 = time.perf_counter()
        per_call_cpu.append(time.thread_time() - u0)
        per_call.append(c1 - c0)
        if c1 > deadline:  # a slow tool (MLflow commits each call) stops early; the median stands
            break
    tool.stop()
    return {"calls": len(per_call), "log_s": per_call, "log_cpu_s": per_call_cpu}


def kill(a: argparse.Namespace) -> None:
    tool = make_tool(a.tool, a.store, a.tag)
    tool.start({"optimizer_name": "adam", "learning_rate": 1e-3, "num_epochs": 0, "num_layers": 3})
    fd = os.open(a.returned, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(fd, b"ready\n")
    period = 1.0 / a.hz
    t0 = time.perf_counter()
    i = 0
    while True:  # until SIGKILL
        tool.log(i, _row(i, t0, 0.5, 0.8, 0.6, 0.75))
        os.write(fd, f"{i}\n".encode())  # the call has returned: the tool has acknowledged row i
        i += 1
        time.sleep(max(0.0, t0 + i * period - time.perf_counter()))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("train", "loop", "kill"))
    ap.add_argument("--tool", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--tag", required=True)
    ap.add_argument("--result")
    ap.add_argument("--returned")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--max-s", type=float, default=3.0)
    ap.add_argument("--hz", type=float, default=100.0)
    a = ap.parse_args()
    if a.mode == "kill":
        kill(a)
        return 0
    out = train(a) if a.mode == "train" else loop(a)
    Path(a.result).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
