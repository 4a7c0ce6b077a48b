"""Training-side code written as users write it, shared by the unit and integration tiers."""

from __future__ import annotations

import math
from datetime import datetime

from dlprov_otel import Dataflow, DataSet, Element, Task


def seed_snippet(exec_tag: str, epochs: int = 2) -> None:
    """The seed's snippet, unchanged apart from its imports (and values filled in)."""
    dataflow_tag = "mnist"
    df = Dataflow(dataflow_tag, predefined=True)
    df.save()
    t1 = Task(1, dataflow_tag, exec_tag, "TrainModel")
    opt_name, lr, layers = "adam", 0.001, 4
    tf1_input = DataSet("iTrainModel", [Element([opt_name, lr, epochs, layers])])
    t1.add_dataset(tf1_input)
    t1.begin()
    final_epoch = epochs - 1
    for epoch in range(epochs):
        elapsed_time, loss, accuracy, val_loss, val_accuracy = 1.5, 0.3 / (epoch + 1), 0.9, math.nan, None
        tf1_output = DataSet(
            "oTrainModel",
            [
                Element(
                    [
                        datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
                        elapsed_time,
                        loss,
                        accuracy,
                        val_loss,
                        val_accuracy,
                        epoch,
                    ]
                )
            ],
        )
        t1.add_dataset(tf1_output)
        if epoch == final_epoch:
            t1.end()
        else:
            t1.save()
