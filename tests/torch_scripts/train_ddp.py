"""A plain DistributedDataParallel training (gloo, CPU) with nothing about provenance in it.

Run by the torch tests with ``torchrun --standalone --nproc_per_node=2 --no-python
opentelemetry-instrument python train_ddp.py --out DIR``; each rank writes its own epoch
losses to ``DIR/rank-<rank>.json``.
"""

import argparse
import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset, random_split

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--out", required=True)
args = parser.parse_args()

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
torch.manual_seed(0)
x = torch.randn(256, 10)
y = (x[:, 0] > 0).long()
train_set, test_set = random_split(TensorDataset(x, y), [192, 64], generator=torch.Generator().manual_seed(3))
sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=1)
loader = DataLoader(train_set, batch_size=16, sampler=sampler)
model = DistributedDataParallel(nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 2)))
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
criterion = nn.CrossEntropyLoss()

losses = []
for epoch in range(args.epochs):
    sampler.set_epoch(epoch)
    model.train()
    total, batches = 0.0, 0
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = criterion(model(xb), yb)
        loss.backward()
        optimizer.step()
        total += loss.item()
        batches += 1
    losses.append(total / batches)

if rank == 0:
    torch.save(model.module.state_dict(), Path(args.out) / "model.pt")
Path(args.out, f"rank-{rank}.json").write_text(json.dumps({"rank": rank, "pid": os.getpid(), "losses": losses}))
dist.destroy_process_group()
