"""A custom training loop as the Keras guide writes it: tf.GradientTape over tf.data, no fit().

Prints, on its last line, the JSON of what it computed itself (epoch losses, rates, test).
Options: --function (train/test steps in tf.function), --schedule (ExponentialDecay),
--cut EPOCH (optimizer.learning_rate.assign(lr / 2) after that epoch), --test (a final test
pass), --save PATH (model.save after the training), --no-optimizer-step (nothing recognisable).
"""

import argparse
import json

import keras
import numpy as np
import tensorflow as tf

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--function", action="store_true")
parser.add_argument("--schedule", action="store_true")
parser.add_argument("--cut", type=int, default=-1)
parser.add_argument("--test", action="store_true")
parser.add_argument("--save")
parser.add_argument("--fail-at", type=int, default=-1)
args = parser.parse_args()

rng = np.random.default_rng(0)
x_train = rng.random((320, 16), dtype=np.float32)
y_train = rng.integers(0, 4, 320)
x_val = rng.random((96, 16), dtype=np.float32)
y_val = rng.integers(0, 4, 96)

inputs = keras.Input(shape=(16,), name="digits")
x1 = keras.layers.Dense(32, activation="relu")(inputs)
outputs = keras.layers.Dense(4, name="predictions")(x1)
model = keras.Model(inputs=inputs, outputs=outputs)

lr = keras.optimizers.schedules.ExponentialDecay(1e-2, decay_steps=3, decay_rate=0.5) if args.schedule else 1e-2
optimizer = keras.optimizers.SGD(learning_rate=lr)
loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
train_acc_metric = keras.metrics.SparseCategoricalAccuracy()
val_acc_metric = keras.metrics.SparseCategoricalAccuracy()

batch_size = 64
train_dataset = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(buffer_size=1024).batch(batch_size)
val_dataset = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(batch_size)


def train_step(x, y):
    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        loss_value = loss_fn(y, logits)
    grads = tape.gradient(loss_value, model.trainable_weights)
    optimizer.apply_gradients(zip(grads, model.trainable_weights))  # noqa: B905  (as the guide writes it)
    train_acc_metric.update_state(y, logits)
    return loss_value


def test_step(x, y):
    val_logits = model(x, training=False)
    val_acc_metric.update_state(y, val_logits)
    return loss_fn(y, val_logits)


if args.function:
    train_step = tf.function(train_step)
    test_step = tf.function(test_step)

report = {"epochs": [], "lr_changes": []}
for epoch in range(args.epochs):
    rate = float(optimizer.learning_rate)
    losses = [float(train_step(xb, yb)) for xb, yb in train_dataset]
    train_acc = float(train_acc_metric.result())
    train_acc_metric.reset_state()
    val = [float(test_step(xb, yb)) for xb, yb in val_dataset]
    val_acc = float(val_acc_metric.result())
    val_acc_metric.reset_state()
    report["epochs"].append(
        {
            "loss": sum(losses) / len(losses),
            "val_loss": sum(val) / len(val),
            "steps": len(losses),
            "lr": rate,
            "accuracy": train_acc,
            "val_accuracy": val_acc,
        }
    )
    print(f"epoch {epoch}: loss {sum(losses) / len(losses):.4f}, val_loss {sum(val) / len(val):.4f}")
    if epoch == args.fail_at:
        print(json.dumps(report), flush=True)
        raise RuntimeError(f"diverged after epoch {epoch}")
    if epoch == args.cut:
        optimizer.learning_rate.assign(float(optimizer.learning_rate) / 2)
        report["lr_changes"].append({"epoch": epoch, "new": float(optimizer.learning_rate)})

if args.test:
    test = [float(test_step(xb, yb)) for xb, yb in val_dataset.take(1)]
    report["test_loss"] = sum(test) / len(test)
    report["test_accuracy"] = float(val_acc_metric.result())
if args.save:
    model.save(args.save)
report["final_lr"] = float(optimizer.learning_rate)
print(json.dumps(report))
