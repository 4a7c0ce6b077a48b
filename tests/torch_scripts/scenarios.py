"""In-process uses of TorchInstrumentor, one per run: ``python scenarios.py NAME --store DIR``.

Each scenario configures DLProv with the store, instruments, trains a tiny model, and
prints JSON with what it computed itself; the tests compare that with the store. (A child
process each: once TensorFlow is loaded, torch's optimizers cannot load triton, and the
test session loads TensorFlow for the Keras tests.)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import dlprov_otel
from dlprov_otel.integrations import torch as dlprov_torch
from dlprov_otel.integrations.torch import TorchInstrumentor


def data(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    return x, (x[:, 0] + x[:, 1] > 0).long()


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 2))


def train_epochs(model, loader, optimizer, epochs, between=None) -> list[float]:
    criterion = nn.CrossEntropyLoss()
    means = []
    for epoch in range(epochs):
        total, n = 0.0, 0
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += loss.item()
            n += 1
        means.append(total / n)
        if between:
            between(epoch)
    return means


# --- uninstrument restores torch exactly ---------------------------------------------------------
def patched_owners() -> list:
    import torch.utils.data as tud
    import torch.utils.data.dataloader as tdl
    import torch.utils.data.dataset as tds
    from torch.nn.modules import loss as nn_loss
    from torch.optim import lr_scheduler

    base = lr_scheduler.LRScheduler
    schedulers = [c for c in vars(lr_scheduler).values() if isinstance(c, type) and issubclass(c, base)]
    return [torch, torch.serialization, torch.Tensor, nn_loss._Loss, tdl.DataLoader, tdl._BaseDataLoaderIter,
            tds, tud, torch.optim.Optimizer, torch.nn.Module, torch.nn.functional, *schedulers]


def snapshot() -> dict:
    from torch.nn.modules import module

    # classes: their whole namespace; modules (where other libraries hook too): what is patched
    return {
        "attrs": {
            (repr(o), k): v
            for o in patched_owners()
            for k, v in vars(o).items()
            if isinstance(o, type) or k in ("save", "load", "random_split", "nll_loss", "cross_entropy")
        },
        "classes": {repr(o): set(vars(o)) for o in patched_owners() if isinstance(o, type)},
        "hooks": (dict(module._global_forward_pre_hooks), dict(module._global_forward_hooks)),
        "excepthook": sys.excepthook,
    }


def restore(inst: TorchInstrumentor) -> dict:
    from torch.nn.modules import loss as nn_loss

    before = snapshot()
    original_save = torch.save
    inst.instrument(execution_tag="restore-1")
    during = snapshot()
    patched = sorted(f"{o}.{k}" for (o, k), v in before["attrs"].items() if during["attrs"].get((o, k)) is not v)
    x, y = data()
    model = small_model()
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    train_epochs(model, loader, torch.optim.SGD(model.parameters(), lr=0.1), 1)
    inst.uninstrument()
    checks = []
    for _ in range(2):  # and once more: instrument/uninstrument is repeatable
        after = snapshot()
        checks.append({
            "changed": sorted(f"{o}.{k}" for (o, k), v in before["attrs"].items()
                              if after["attrs"].get((o, k)) is not v),
            "classes_same": after["classes"] == before["classes"],
            "hooks_same": after["hooks"] == before["hooks"],
            "excepthook_same": after["excepthook"] is before["excepthook"],
            "loss_call_inherited": "__call__" not in vars(nn_loss._Loss),
            "save_original": torch.save is original_save,
        })
        inst.instrument(execution_tag="restore-2")
        inst.uninstrument()
    return {"patched": patched, "excepthook_patched": during["excepthook"] is not before["excepthook"],
            "checks": checks}


# --- a loop without a DataLoader, with the explicit API --------------------------------------------
def explicit_api(inst: TorchInstrumentor) -> dict:
    inst.instrument(execution_tag="api-1")
    x, y = data(120)
    model = small_model()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    crit = nn.CrossEntropyLoss()
    mine = []
    for epoch in range(2):
        losses = []
        for i in range(0, 120, 30):  # tensors sliced by hand: no DataLoader to see
            opt.zero_grad()
            loss = crit(model(x[i : i + 30]), y[i : i + 30])
            loss.backward()
            opt.step()
            losses.append(loss.item())
        mine.append(sum(losses) / len(losses))
        dlprov_torch.log_epoch(f1_score=0.5 + epoch)
    model.eval()
    with torch.no_grad():
        out = model(x)
        test_loss = crit(out, y).item()
        test_acc = (out.argmax(1) == y).double().mean().item()
    dlprov_torch.log_test(auc=0.93)
    inst.uninstrument()
    return {"losses": mine, "test_loss": test_loss, "test_accuracy": test_acc}


# --- a learning rate changed by hand, then a second training ------------------------------------
def manual_rate(inst: TorchInstrumentor) -> dict:
    inst.instrument(execution_tag="manual-1")
    x, y = data()
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    model = small_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def lower(epoch):
        if epoch == 0:
            for group in opt.param_groups:
                group["lr"] = 0.02

    first = train_epochs(model, loader, opt, 2, between=lower)
    model2 = small_model()
    opt2 = torch.optim.RMSprop(model2.parameters(), lr=0.005)  # a new optimizer: a new training
    second = train_epochs(model2, loader, opt2, 1)
    inst.uninstrument()
    return {"first": first, "second": second}


# --- a provenance error is logged once; the training goes on ------------------------------------
class BrokenRootDataset(Dataset):
    """A dataset whose ``root`` property raises: describing it for provenance fails."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    @property
    def root(self):
        raise RuntimeError("no root here")

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def broken_dataset(inst: TorchInstrumentor) -> dict:
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                messages.append(record.getMessage())

    logging.getLogger("dlprov_otel").addHandler(Collect())
    x, y = data()
    model = small_model()
    inst.instrument(execution_tag="broken-1")
    loader = DataLoader(BrokenRootDataset(x, y), batch_size=32)
    means = train_epochs(model, loader, torch.optim.SGD(model.parameters(), lr=0.1), 3)
    inst.uninstrument()
    # the same training without instrumentation gives the same losses
    model_b = small_model()
    reference = train_epochs(model_b, DataLoader(BrokenRootDataset(x, y), batch_size=32),
                             torch.optim.SGD(model_b.parameters(), lr=0.1), 3)
    return {"losses": means, "reference": reference, "warnings": messages}


SCENARIOS = {f.__name__: f for f in (restore, explicit_api, manual_rate, broken_dataset)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--store", required=True)
    args = ap.parse_args()
    dlprov_otel.configure(store=args.store, spool_dir=Path(args.store).parent / "spool", schedule_delay=0.05)
    result = SCENARIOS[args.scenario](TorchInstrumentor())
    assert dlprov_otel.flush()
    result["stats"] = dlprov_otel.stats()
    dlprov_otel.shutdown()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
