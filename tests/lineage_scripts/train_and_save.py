"""A user's training script: hyperparameters, data digests, epochs, a saved model file and a
test, through the DfAnalyzer API. ``python train_and_save.py STORE MODEL_PATH [SEED]``."""

import hashlib
import random
import sys

import numpy as np

from dlprov_otel import Dataflow, DataSet, Element, Task, configure, shutdown

store, model_path = sys.argv[1], sys.argv[2]
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 42
random.seed(seed)
np.random.seed(seed)
configure(store=store)

x = np.random.default_rng(seed).normal(size=(64, 4))
train, test = x[:48], x[48:]
digest = lambda a: hashlib.sha256(a.tobytes()).hexdigest()  # noqa: E731

df = Dataflow("mnist", predefined=True)
df.save()
split = Task(1, "mnist", None, "splitdata")
split.add_dataset(DataSet("isplitconfig", [Element([0.75])]))
split.begin()
split.add_dataset(DataSet("otrainset", [{"trainset": "train.npy", "sha256": digest(train)}]))
split.add_dataset(DataSet("otestset", [{"testset": "test.npy", "sha256": digest(test)}]))
split.end()

train_task = Task(2, "mnist", split.exec_tag, "trainmodel", dependency=split)
train_task.add_dataset(DataSet("itrainmodel", [Element(["adam", 0.01, 3, 2])]))
train_task.begin()
for epoch in range(3):
    loss = 1.0 / (epoch + 1)
    row = ["t", 0.1, loss, 0.5 + epoch / 10, loss + 0.1, 0.5, epoch]
    train_task.add_dataset(DataSet("otrainmodel", [Element(row)]))
    train_task.save()
with open(model_path, "wb") as f:
    f.write(b"weights:" + np.random.default_rng(seed).normal(size=8).tobytes())
with open(model_path, "rb") as f:
    model_digest = hashlib.sha256(f.read()).hexdigest()
saved = {"model_name": "net", "model_dir": model_path, "sha256": model_digest}
train_task.add_dataset(DataSet("otrainedmodel", [saved]))
train_task.end()

test_task = Task(3, "mnist", split.exec_tag, "testmodel", dependency=[split, train_task])
test_task.begin()
test_task.add_dataset(DataSet("otestmodel", [Element([0.42, 0.88])]))
test_task.end()
shutdown()
print(split.exec_tag)
