# Written for this test as the Lightning docs show a LightningModule (no published example
# combines both): configure_optimizers returning ReduceLROnPlateau with "monitor": "val_loss"
# (LightningModule.configure_optimizers docs), ModelCheckpoint(monitor="val_loss", save_top_k=1)
# and trainer.test(ckpt_path="best") (the Trainer and checkpointing docs), the learning rate
# printed at each epoch start and at the end. Data: random MNIST-shaped tensors (320 train / 128 val / 128 test).
# CLI: --max_epochs, --batch_size. Licence: the project's.
import argparse

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset


class LitClassifier(L.LightningModule):
    def __init__(self, lr: float = 0.05):
        super().__init__()
        self.save_hyperparameters()
        self.l1 = nn.Linear(28 * 28, 64)
        self.l2 = nn.Linear(64, 10)

    def forward(self, x):
        return self.l2(torch.relu(self.l1(x.view(x.size(0), -1))))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", F.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def test_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("test_loss", F.cross_entropy(logits, y))
        self.log("test_acc", (logits.argmax(1) == y).float().mean())

    def on_train_epoch_start(self):
        print(f"epoch {self.current_epoch} lr {self.optimizers().param_groups[0]['lr']}")

    def on_train_end(self):
        print(f"final lr {self.optimizers().param_groups[0]['lr']}")

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=self.hparams.lr)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=0)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val_loss"}}


def loader(n, batch_size, seed, shuffle=False):
    g = torch.Generator().manual_seed(seed)
    data = TensorDataset(torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g))
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--max_epochs", type=int, default=4)
    parser.add_argument("--batch_size", type=int, default=32)
    args = parser.parse_args()
    L.seed_everything(42)
    checkpoint = ModelCheckpoint(monitor="val_loss", save_top_k=1, mode="min")
    trainer = L.Trainer(max_epochs=args.max_epochs, callbacks=[checkpoint], accelerator="cpu", devices=1)
    model = LitClassifier()
    trainer.fit(model, loader(320, args.batch_size, 1, shuffle=True), loader(128, args.batch_size, 2))
    print("best checkpoint:", checkpoint.best_model_path, "val_loss", float(checkpoint.best_model_score))
    trainer.test(model, loader(128, args.batch_size, 3), ckpt_path="best")


if __name__ == "__main__":
    main()
