"""DLProvLightningCallback: the same sets as a plain loop, from a Lightning Trainer."""

from __future__ import annotations

import hashlib
import math
import warnings
from pathlib import Path

import lightning.pytorch as L
import pytest
import torch
import torch.utils.data
from dlprov_otel.integrations.torch import DLProvLightningCallback, TorchInstrumentor
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import dlprov_otel
from tests.torch_helpers import rows, set_rows

pytestmark = pytest.mark.torch



class Classifier(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
        self.criterion = nn.CrossEntropyLoss()
        self.seen: list[dict[str, float]] = []  # callback_metrics at each epoch end

    def _step(self, batch, prefix):
        x, y = batch
        out = self.net(x)
        loss = self.criterion(out, y)
        self.log(f"{prefix}_loss", loss, on_epoch=True, on_step=False)
        self.log(f"{prefix}_acc", (out.argmax(1) == y).float().mean(), on_epoch=True, on_step=False)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=0.02)
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)}

    def on_train_epoch_end(self):
        self.seen.append({k: float(v) for k, v in self.trainer.callback_metrics.items()})


def fit_and_test(root: Path, callbacks: list) -> tuple[Classifier, L.Trainer, list[dict]]:
    torch.manual_seed(0)
    x = torch.randn(160, 8)
    y = (x[:, 0] - x[:, 1] > 0).long()
    # looked up at call time, as a script instrumented before it imports torch does
    split = torch.utils.data.random_split
    train, val = split(TensorDataset(x, y), [128, 32], generator=torch.Generator().manual_seed(5))
    model = Classifier()
    trainer = L.Trainer(
        max_epochs=3, callbacks=callbacks, logger=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=str(root), accelerator="cpu", num_sanity_val_steps=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few workers, small batches: Lightning's advice
        trainer.fit(model, DataLoader(train, batch_size=32, shuffle=True), DataLoader(val, batch_size=32))
        tested = trainer.test(model, DataLoader(val, batch_size=32), verbose=False)
    return model, trainer, tested


def check_sets(st, model: Classifier, trainer: L.Trainer, tested: list[dict]) -> None:
    (hp,) = set_rows(st, "itrainmodel")
    assert (hp["optimizer_name"], hp["learning_rate"], hp["num_epochs"], hp["batch_size"]) == ("Adam", 0.02, 3, 32)
    assert hp["num_layers"] == 4 and hp["trainer"] == "lightning"  # Linear, ReLU, Linear, CrossEntropyLoss
    epochs = set_rows(st, "otrainmodel", "epoch")
    assert [r["epoch"] for r in epochs] == [0, 1, 2]
    for r, seen in zip(epochs, model.seen, strict=True):
        assert math.isclose(r["loss"], seen["train_loss"], abs_tol=1e-6)
        assert math.isclose(r["accuracy"], seen["train_acc"], abs_tol=1e-6)
        assert math.isclose(r["val_loss"], seen["val_loss"], abs_tol=1e-6)
        assert math.isclose(r["val_accuracy"], seen["val_acc"], abs_tol=1e-6)
    assert [r["learning_rate"] for r in epochs] == [0.02, 0.01, 0.005]
    adapt = set_rows(st, "oadaptation", "epoch")
    assert [(a["epoch"], a["old_learning_rate"], a["new_learning_rate"], a["trigger"]) for a in adapt] == [
        (0, 0.02, 0.01, "StepLR"), (1, 0.01, 0.005, "StepLR"), (2, 0.005, 0.0025, "StepLR"),
    ]
    (saved,) = set_rows(st, "otrainedmodel")
    ckpt = Path(trainer.checkpoint_callback.best_model_path)
    assert saved["model_dir"] == str(ckpt.resolve()) and saved["model_name"] == "Classifier"
    assert saved["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    (test,) = set_rows(st, "otestmodel")
    assert math.isclose(test["loss"], tested[0]["test_loss"], abs_tol=1e-6)
    assert math.isclose(test["accuracy"], tested[0]["test_acc"], abs_tol=1e-6)
    tasks = rows(st, "SELECT dt_tag, status FROM task WHERE dt_tag IN ('trainmodel', 'testmodel') ORDER BY dt_tag")
    assert tasks == [{"dt_tag": "testmodel", "status": "FINISHED"}, {"dt_tag": "trainmodel", "status": "FINISHED"}]


def test_callback_records_the_training(dlprov, tmp_path):
    model, trainer, tested = fit_and_test(tmp_path, [DLProvLightningCallback(execution_tag="lightning-1")])
    assert dlprov_otel.flush()
    check_sets(dlprov.store, model, trainer, tested)


def test_instrumented_trainer_gets_the_callback_once(dlprov, tmp_path):
    inst = TorchInstrumentor()
    inst.instrument(execution_tag="lightning-2")
    try:
        model, trainer, tested = fit_and_test(tmp_path, [])
        assert sum(isinstance(c, DLProvLightningCallback) for c in trainer.callbacks) == 1
    finally:
        inst.uninstrument()
    assert dlprov_otel.flush()
    st = dlprov.store
    check_sets(st, model, trainer, tested)  # exactly once: the loop capture stood aside
    # and the lineage the patches saw: the seeded random_split
    (split,) = set_rows(st, "isplitconfig")
    assert (split["seed"], split["lengths"]) == ("5", "[128, 32]")
    deps = rows(st, "SELECT depends_on_task_id FROM task_dependency WHERE dt_tag = 'trainmodel'")
    assert deps == [{"depends_on_task_id": "splitdata-1"}]

