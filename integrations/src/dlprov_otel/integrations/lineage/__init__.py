"""Data lineage for the integrations: describe the data a step reads or writes, and record
your own load, split and preprocessing steps as tasks of the dataflow.

::

    @load_data("digits", source="sklearn.datasets.load_digits")
    def load():
        d = load_digits()
        return d.images, d.target

    with split_data(ratio=0.25, inputs={"x": x, "y": y}) as s:
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25)
        s.train(x=x_tr, y=y_tr)
        s.test(x=x_te, y=y_te)

    @transform("normalize")          # a transformation of your own: inormalize -> onormalize
    def normalize(x):
        return x / 16.0

Each piece of data becomes one element with its shape, dtype, sample count and content
digest (:mod:`.describe`). Tasks are linked by those digests (:mod:`.registry`): a training
that receives the arrays a split produced depends on that split task. Provenance failures
are logged once and never reach the user's code.
"""

from .describe import describe, describe_split, digest_array, file_digest, is_array, is_tf_dataset, leaves, ref
from .registry import dependencies, emit, last_data_task, mark_data_task, producers, was_output
from .steps import DataStep, LoadData, SplitData, load_data, split_data, transform
from .tasks import DATA_TRANSFORMATIONS, DEFAULT_DATAFLOW, context, ensure_transformation, new_task

__all__ = [
    "DATA_TRANSFORMATIONS",
    "DEFAULT_DATAFLOW",
    "DataStep",
    "LoadData",
    "SplitData",
    "context",
    "dependencies",
    "describe",
    "describe_split",
    "digest_array",
    "emit",
    "ensure_transformation",
    "file_digest",
    "is_array",
    "is_tf_dataset",
    "last_data_task",
    "leaves",
    "load_data",
    "mark_data_task",
    "new_task",
    "producers",
    "ref",
    "split_data",
    "transform",
    "was_output",
]
