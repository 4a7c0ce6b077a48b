"""A regression trained the way tutorials write it first: tensors sliced by hand, the update
written out under ``torch.no_grad()``, a validation loss after each epoch (no ``model.eval()``),
the learning rate halved by hand, a checkpoint dictionary saved after each epoch.

Nothing about provenance in it; it prints, on its last line, JSON with what it computed.
"""

import argparse
import json

import torch
from torch import nn

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=4)
parser.add_argument("--out", default=".")
args = parser.parse_args()

torch.manual_seed(0)
w_true = torch.randn(5, 1)
x = torch.randn(400, 5)
y = x @ w_true + 0.1 * torch.randn(400, 1)
x_train, y_train, x_val, y_val = x[:320], y[:320], x[320:], y[320:]

model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1))
loss_fn = nn.MSELoss()
lr = 0.05
batch_size = 40
log = {"epochs": [], "lr_changes": [], "checkpoints": []}
for epoch in range(args.epochs):
    total = 0.0
    for i in range(0, len(x_train), batch_size):
        xb, yb = x_train[i : i + batch_size], y_train[i : i + batch_size]
        loss = loss_fn(model(xb), yb)
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
        model.zero_grad()
        total += loss.item()
    with torch.no_grad():
        val_loss = loss_fn(model(x_val), y_val).item()
    log["epochs"].append({"loss": total / (len(x_train) // batch_size), "val_loss": val_loss, "lr": lr})
    path = f"{args.out}/checkpoint-{epoch}.pt"
    torch.save({"epoch": epoch, "model_state_dict": model.state_dict(), "val_loss": val_loss}, path)
    log["checkpoints"].append(path)
    if epoch == 1:
        log["lr_changes"].append({"epoch": epoch, "old": lr, "new": lr / 2})
        lr /= 2
print(json.dumps(log))
