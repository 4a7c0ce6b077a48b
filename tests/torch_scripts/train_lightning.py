"""A small Lightning training: fit 3 epochs (StepLR), validate, test. Prints JSON.

``--callback`` adds ``DLProvLightningCallback`` by hand; without it the tests run the
script under ``opentelemetry-instrument``, which adds the callback to every Trainer.
"""

import argparse
import json
import warnings

import lightning.pytorch as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, random_split

parser = argparse.ArgumentParser()
parser.add_argument("--callback", action="store_true")
parser.add_argument("--root", required=True)
args = parser.parse_args()
warnings.simplefilter("ignore")  # few workers, small batches: Lightning's advice


class Classifier(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
        self.criterion = nn.CrossEntropyLoss()
        self.seen = []  # callback_metrics at each epoch end

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


callbacks = []
if args.callback:
    from dlprov_otel.integrations.torch import DLProvLightningCallback

    callbacks.append(DLProvLightningCallback())
torch.manual_seed(0)
x = torch.randn(160, 8)
y = (x[:, 0] - x[:, 1] > 0).long()
train, val = random_split(TensorDataset(x, y), [128, 32], generator=torch.Generator().manual_seed(5))
model = Classifier()
trainer = L.Trainer(
    max_epochs=3, callbacks=callbacks, logger=False, enable_progress_bar=False, enable_model_summary=False,
    default_root_dir=args.root, accelerator="cpu", num_sanity_val_steps=0,
)
trainer.fit(model, DataLoader(train, batch_size=32, shuffle=True), DataLoader(val, batch_size=32))
tested = trainer.test(model, DataLoader(val, batch_size=32), verbose=False)
print(json.dumps({
    "seen": model.seen,
    "tested": tested[0],
    "checkpoint": trainer.checkpoint_callback.best_model_path,
    "dlprov_callbacks": sum(type(c).__name__ == "DLProvLightningCallback" for c in trainer.callbacks),
}))
