"""pytorch/examples ``mnist/main.py`` as its users run it, on generated 1x12x12 "digits".

Nothing about provenance in it: ``train()`` and ``test()`` each epoch (``F.nll_loss``, a
``reduction='sum'`` test loss under ``model.eval()`` and ``torch.no_grad()``), ``StepLR``,
``torch.save`` of the state dict. It prints, on its last line, JSON with what it computed
itself, for the tests to compare with the store.
"""

import argparse
import json

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.fc1 = nn.Linear(4 * 5 * 5, 16)
        self.fc2 = nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


def train(args, model, device, train_loader, optimizer, epoch, log):
    model.train()
    total, batches = 0.0, 0
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        total += loss.item()
        batches += 1
        if batch_idx % args.log_interval == 0:
            seen = f"{batch_idx * len(data)}/{len(train_loader.dataset)}"
            print(f"Train Epoch: {epoch} [{seen}]\tLoss: {loss.item():.6f}")
    log["train_loss"].append(total / batches)


def test(model, device, test_loader, log):
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()  # sum up batch loss
            pred = output.argmax(dim=1, keepdim=True)  # get the index of the max log-probability
            correct += pred.eq(target.view_as(pred)).sum().item()
    test_loss /= len(test_loader.dataset)
    print(f"\nTest set: Average loss: {test_loss:.4f}, Accuracy: {correct}/{len(test_loader.dataset)}\n")
    log["test_loss"].append(test_loss)
    log["test_accuracy"].append(correct / len(test_loader.dataset))


def digits(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    x = torch.randn(n, 1, 12, 12, generator=g) * 0.3
    x[torch.arange(n), 0, y, y] += 2.0  # a class-dependent pixel
    return TensorDataset(x, y)


def main():
    parser = argparse.ArgumentParser(description="PyTorch MNIST Example")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--test-batch-size", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--gamma", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log-interval", type=int, default=10)
    parser.add_argument("--save-model", action="store_true", default=False)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    device = torch.device("cpu")

    train_loader = DataLoader(digits(256, 0), batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(digits(100, 1), batch_size=args.test_batch_size)

    model = Net().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)
    log = {"train_loss": [], "test_loss": [], "test_accuracy": [], "lr": []}
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    for epoch in range(1, args.epochs + 1):
        train(args, model, device, train_loader, optimizer, epoch, log)
        test(model, device, test_loader, log)
        scheduler.step()
        log["lr"].append(optimizer.param_groups[0]["lr"])

    if args.save_model:
        torch.save(model.state_dict(), "mnist_cnn.pt")
    print(json.dumps(log))


if __name__ == "__main__":
    main()
