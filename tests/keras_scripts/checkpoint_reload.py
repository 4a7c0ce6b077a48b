"""Train with ModelCheckpoint (every epoch and the best), as the Keras docs do; or, with
--reload, load the best checkpoint in a new process and evaluate it. Prints, on its last line,
the JSON of what it saw (history, the best epoch, the evaluation)."""

import argparse
import json

import keras
import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("--dir", required=True)
parser.add_argument("--reload", action="store_true")
args = parser.parse_args()

rng = np.random.default_rng(0)
x = rng.random((256, 8), dtype=np.float32)
y = (x.sum(axis=1) > 4).astype("int64")
best_path = f"{args.dir}/best.keras"

if args.reload:
    model = keras.models.load_model(best_path)
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    print(json.dumps({"test": result}))
else:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)])
    model.compile(
        optimizer=keras.optimizers.Adam(0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    callbacks = [
        keras.callbacks.ModelCheckpoint(f"{args.dir}/epoch-{{epoch:02d}}.keras"),
        keras.callbacks.ModelCheckpoint(best_path, monitor="val_loss", save_best_only=True),
    ]
    history = model.fit(x, y, epochs=4, batch_size=32, validation_split=0.25, verbose=0, callbacks=callbacks)
    val = history.history["val_loss"]
    print(json.dumps({"history": history.history, "best_epoch": val.index(min(val))}))
