"""A plain PyTorch training loop with nothing about provenance in it.

The torch tests run it under ``opentelemetry-instrument`` and compare what was recorded
with what it prints as JSON on its last line: its own epoch losses, validation metrics,
learning-rate changes, test metrics and the saved model file.
"""

import argparse
import json

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, random_split

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--scheduler", choices=["step", "plateau", "none"], default="step")
parser.add_argument("--workers", type=int, default=0)
parser.add_argument("--fail-at", type=int, default=-1, help="raise in the middle of this epoch")
parser.add_argument("--save", default="model.pt")
args = parser.parse_args()

torch.manual_seed(0)
x = torch.randn(640, 20)
y = (x[:, :3].sum(1) > 0).long()
data = TensorDataset(x, y)
train_set, test_set = random_split(data, [0.75, 0.25], generator=torch.Generator().manual_seed(42))
train_loader = DataLoader(train_set, batch_size=32, shuffle=True, num_workers=args.workers)
test_loader = DataLoader(test_set, batch_size=40, num_workers=args.workers)

model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.5, weight_decay=1e-4)
if args.scheduler == "step":
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
elif args.scheduler == "plateau":
    # an improvement must halve the loss: most epochs are a plateau
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=0, threshold=0.5, factor=0.3)
else:
    scheduler = None
criterion = nn.CrossEntropyLoss()


def evaluate(loader):
    model.eval()
    total, batches, correct, seen = 0.0, 0, 0, 0
    with torch.no_grad():
        for xb, yb in loader:
            out = model(xb)
            total += criterion(out, yb).item()
            batches += 1
            correct += (out.argmax(1) == yb).sum().item()
            seen += len(yb)
    return total / batches, correct / seen


report = {"epochs": [], "lr_changes": []}
for epoch in range(args.epochs):
    model.train()
    total, batches = 0.0, 0
    for i, (xb, yb) in enumerate(train_loader):
        if epoch == args.fail_at and i == 3:
            raise RuntimeError(f"diverged at epoch {epoch}")
        optimizer.zero_grad()
        loss = criterion(model(xb), yb)
        loss.backward()
        optimizer.step()
        total += loss.item()
        batches += 1
    val_loss, val_acc = evaluate(test_loader)
    report["epochs"].append({"loss": total / batches, "val_loss": val_loss, "val_accuracy": val_acc})
    old = optimizer.param_groups[0]["lr"]
    if args.scheduler == "plateau":
        scheduler.step(val_loss)
    elif scheduler is not None:
        scheduler.step()
    new = optimizer.param_groups[0]["lr"]
    if new != old:
        report["lr_changes"].append({"epoch": epoch, "old": old, "new": new})

test_loss, test_acc = evaluate(test_loader)
report["test"] = {"loss": test_loss, "accuracy": test_acc}
torch.save(model.state_dict(), args.save)
report["saved"] = args.save
print(json.dumps(report))
