"""pytorch/examples ``word_language_model/main.py`` as its users run it, on a generated corpus.

Nothing about provenance in it: no DataLoader (``batchify`` and ``get_batch`` slice tensors),
no optimizer (``p.data.add_(p.grad, alpha=-lr)``), ``evaluate()`` under ``model.eval()`` and
``torch.no_grad()`` after each epoch, ``lr /= 4`` when the validation loss does not improve,
``torch.save(model, f)`` to an open file, and the best model loaded back for the test. It
prints, on its last line, JSON with what it computed itself.
"""

import argparse
import json
import math
import os
import time

import torch
import torch.nn as nn

parser = argparse.ArgumentParser(description="PyTorch Wikitext-2 RNN/LSTM/GRU/Transformer Language Model")
parser.add_argument("--emsize", type=int, default=16)
parser.add_argument("--nhid", type=int, default=16)
parser.add_argument("--lr", type=float, default=20)
parser.add_argument("--clip", type=float, default=0.25)
parser.add_argument("--epochs", type=int, default=4)
parser.add_argument("--batch_size", type=int, default=8, metavar="N")
parser.add_argument("--bptt", type=int, default=10)
parser.add_argument("--seed", type=int, default=1111)
parser.add_argument("--log-interval", type=int, default=5, metavar="N")
parser.add_argument("--save", type=str, default="model.pt")
parser.add_argument("--wait-for", default=None, help="after the last epoch, wait until this file exists")
args = parser.parse_args()
torch.manual_seed(args.seed)
device = torch.device("cpu")

ntokens = 30


def corpus(n, seed):
    """Tokens of a noisy cycle: predictable enough to learn in a few epochs."""
    g = torch.Generator().manual_seed(seed)
    base = torch.arange(n) % ntokens
    noise = torch.randint(0, ntokens, (n,), generator=g)
    keep = torch.rand(n, generator=g) < 0.8
    return torch.where(keep, base, noise)


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    return data.view(bsz, -1).t().contiguous().to(device)


eval_batch_size = 10
train_data = batchify(corpus(8 * 10 * 12 + 8, 0), args.batch_size)
val_data = batchify(corpus(10 * 10 * 3 + 10, 1), eval_batch_size)
test_data = batchify(corpus(10 * 10 * 3 + 10, 2), eval_batch_size)


class RNNModel(nn.Module):
    def __init__(self, ntoken, ninp, nhid, nlayers=1, dropout=0.2):
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=0.0)
        self.decoder = nn.Linear(nhid, ntoken)
        self.nhid, self.nlayers = nhid, nlayers

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output).view(-1, self.ntoken)
        return nn.functional.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        return (weight.new_zeros(self.nlayers, bsz, self.nhid), weight.new_zeros(self.nlayers, bsz, self.nhid))


model = RNNModel(ntokens, args.emsize, args.nhid).to(device)
criterion = nn.NLLLoss()


def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


def get_batch(source, i):
    seq_len = min(args.bptt, len(source) - 1 - i)
    data = source[i : i + seq_len]
    target = source[i + 1 : i + 1 + seq_len].view(-1)
    return data, target


def evaluate(data_source):
    model.eval()
    total_loss = 0.0
    hidden = model.init_hidden(eval_batch_size)
    with torch.no_grad():
        for i in range(0, data_source.size(0) - 1, args.bptt):
            data, targets = get_batch(data_source, i)
            output, hidden = model(data, hidden)
            hidden = repackage_hidden(hidden)
            total_loss += len(data) * criterion(output, targets).item()
    return total_loss / (len(data_source) - 1)


def train():
    model.train()
    total_loss = 0.0
    epoch_loss, steps = 0.0, 0
    start_time = time.time()
    hidden = model.init_hidden(args.batch_size)
    for batch, i in enumerate(range(0, train_data.size(0) - 1, args.bptt)):
        data, targets = get_batch(train_data, i)
        model.zero_grad()
        hidden = repackage_hidden(hidden)
        output, hidden = model(data, hidden)
        loss = criterion(output, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        total_loss += loss.item()
        epoch_loss += loss.item()
        steps += 1
        if batch % args.log_interval == 0 and batch > 0:
            cur_loss = total_loss / args.log_interval
            elapsed = time.time() - start_time
            print(f"| epoch {epoch:3d} | {batch:5d} batches | lr {lr:02.2f} | "
                  f"ms/batch {elapsed * 1000 / args.log_interval:5.2f} | "
                  f"loss {cur_loss:5.2f} | ppl {math.exp(cur_loss):8.2f}")
            total_loss = 0
            start_time = time.time()
    return epoch_loss / steps, steps


lr = args.lr
best_val_loss = None
log = {"epochs": [], "saves": [], "lr_changes": []}
for epoch in range(1, args.epochs + 1):
    epoch_start_time = time.time()
    train_loss, steps = train()
    val_loss = evaluate(val_data)
    print("-" * 89)
    print(f"| end of epoch {epoch:3d} | time: {time.time() - epoch_start_time:5.2f}s | valid loss {val_loss:5.2f} | "
          f"valid ppl {math.exp(val_loss):8.2f}")
    print("-" * 89)
    log["epochs"].append({"loss": train_loss, "val_loss": val_loss, "steps": steps, "lr": lr})
    # Save the model if the validation loss is the best we've seen so far.
    if not best_val_loss or val_loss < best_val_loss:
        with open(args.save, "wb") as f:
            torch.save(model, f)
        best_val_loss = val_loss
        log["saves"].append(epoch - 1)
    else:
        # Anneal the learning rate if no improvement has been seen in the validation dataset.
        log["lr_changes"].append({"epoch": epoch - 1, "old": lr, "new": lr / 4.0})
        lr /= 4.0

if args.wait_for:  # a pause after training (the test looks at the store meanwhile)
    deadline = time.time() + 60
    while not os.path.exists(args.wait_for) and time.time() < deadline:
        time.sleep(0.05)
    log["waited"] = os.path.exists(args.wait_for)

# Load the best saved model.
with open(args.save, "rb") as f:
    model = torch.load(f, weights_only=False)
    model.rnn.flatten_parameters()

# Run on test data.
test_loss = evaluate(test_data)
print("=" * 89)
print(f"| End of training | test loss {test_loss:5.2f} | test ppl {math.exp(test_loss):8.2f}")
print("=" * 89)
log["test_loss"] = test_loss
log["saved"] = os.path.abspath(args.save)
print(json.dumps(log))
