"""``dfa_lib_python``: the original's scripts, run unchanged in a process of their own against
an embedded store, then read back with SQL."""
# ruff: noqa: E501 - the seed README's lines are kept as they are

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# The seed README's snippet, as its users wrote it around a Keras training (imports, tags and a
# callback; only the data is generated instead of downloading MNIST).
README_SCRIPT = """\
import time
from datetime import datetime

import numpy as np
import tensorflow as tf

from dfa_lib_python.dataflow import Dataflow
from dfa_lib_python.transformation import Transformation
from dfa_lib_python.attribute import Attribute
from dfa_lib_python.attribute_type import AttributeType
from dfa_lib_python.set import Set
from dfa_lib_python.set_type import SetType
from dfa_lib_python.task import Task
from dfa_lib_python.dataset import DataSet
from dfa_lib_python.element import Element
from dfa_lib_python.task_status import TaskStatus

dataflow_tag = "mnist"
exec_tag = dataflow_tag + "-" + str(datetime.now())

df = Dataflow(dataflow_tag, predefined=True)
df.save()

rng = np.random.default_rng(0)
x_train, y_train = rng.random((64, 8)), rng.integers(0, 2, 64)
x_val, y_val = rng.random((16, 8)), rng.integers(0, 2, 16)
epochs = 3
final_epoch = epochs - 1

model = tf.keras.Sequential([tf.keras.Input((8,)), tf.keras.layers.Dense(4, activation="relu"),
                             tf.keras.layers.Dense(2, activation="softmax")])
opt = tf.keras.optimizers.Adam(learning_rate=0.01)
model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])

t1 = Task(1, dataflow_tag, exec_tag, "TrainModel")
tf1_input = DataSet("iTrainModel", [Element([opt.get_config()['name'], opt.get_config()['learning_rate'], epochs, len(model.layers)])])
t1.add_dataset(tf1_input)
t1.begin()


class DLProvCallback(tf.keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start_time = time.time()

    def on_epoch_end(self, epoch, logs=None):
        elapsed_time = time.time() - self.start_time
        loss, accuracy = logs["loss"], logs["accuracy"]
        val_loss, val_accuracy = logs["val_loss"], logs["val_accuracy"]
        tf1_output = DataSet("oTrainModel", [Element([datetime.now().strftime('%Y-%m-%d %H:%M:%S'), elapsed_time, loss, accuracy, val_loss, val_accuracy, epoch])])
        t1.add_dataset(tf1_output)
        if(epoch==final_epoch):
            t1.end()
        else:
            t1.save()


model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=epochs, verbose=0, callbacks=[DLProvCallback()])
print("EXEC", exec_tag)
"""

# DfAnalyzer's own style: a dataflow built from Transformation/Set/Attribute, the 3-argument
# Task, Dependency, TaskStatus, Program and the start_task/end_task helpers.
DFANALYZER_SCRIPT = """\
from dfa_lib_python.dataflow import Dataflow
from dfa_lib_python.transformation import Transformation, add_transformation
from dfa_lib_python.attribute import Attribute
from dfa_lib_python.attribute_type import AttributeType
from dfa_lib_python.set import Set
from dfa_lib_python.set_type import SetType
from dfa_lib_python.task import Task, start_task, end_task
from dfa_lib_python.dataset import DataSet
from dfa_lib_python.element import Element
from dfa_lib_python.dependency import Dependency
from dfa_lib_python.program import Program
from dfa_lib_python.task_status import TaskStatus

dataflow_tag = "prep"
df = Dataflow(dataflow_tag)
tf1 = Transformation("ExtractRatio")
tf1_input = Set("iExtractRatio", SetType.INPUT, [Attribute("FILE_NAME", AttributeType.TEXT)])
tf1_output = Set("oExtractRatio", SetType.OUTPUT,
                 [Attribute("NAME", AttributeType.TEXT), Attribute("RATIO", AttributeType.NUMERIC)])
tf1.set_sets([tf1_input, tf1_output])
tf1.set_program(Program("extract.py", "/opt/extract.py"))
df.add_transformation(tf1)
tf2, tf2_input, tf2_output = add_transformation(
    df, "Mean", [Attribute("WEIGHT", AttributeType.NUMERIC)], [Attribute("MEAN", AttributeType.NUMERIC)],
    prev_out=tf1_output)
df.save()

t1 = Task(1, dataflow_tag, "ExtractRatio")
t1.add_dataset(DataSet("iExtractRatio", [Element(["data.csv"])]))
t1.begin()
t1.add_dataset(DataSet("oExtractRatio", [Element(["a", 0.25]), Element(["b", 0.75])]))
t1.set_status(TaskStatus.FINISHED)
t1.save()

t2 = Task(2, dataflow_tag, "Mean")
t2.add_dependency(Dependency(["extractratio"], ["1"]))
t2.add_dataset(DataSet("iMean", [Element([1.0])]))
t2.begin()
t2.add_dataset(DataSet("oMean", [Element([0.5])]))
t2.end()

t3, _ = start_task(3, dataflow_tag, "Mean", [2.0])
end_task(t3, "Mean", [0.75])
print("EXEC", t1.exec_tag)
"""


def _run(script: str, tmp_path: Path, env: dict[str, str], store: Path) -> str:
    path = tmp_path / "train.py"
    path.write_text(textwrap.dedent(script))
    out = subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        env={**env, "DLPROV_STORE": str(store), "TF_CPP_MIN_LOG_LEVEL": "3"},
        cwd=tmp_path,  # not the repository: the package must come from the installation
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return next(line.split(" ", 1)[1] for line in out.stdout.splitlines() if line.startswith("EXEC "))


def _query(store: Path, sql: str, params: list | None = None) -> list[tuple]:
    from dlprov_otel.store import open_store

    st = open_store(store)
    try:
        return st.query(sql, params).rows
    finally:
        st.close()


@pytest.mark.keras
def test_the_seed_readme_script_runs_unchanged(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    store = tmp_path / "store"
    tag = _run(README_SCRIPT, tmp_path, subprocess_env, store)
    assert " " in tag and ":" in tag  # the script's own tag is kept as it is
    (status,) = _query(store, "SELECT status FROM dataflow_execution WHERE tag = ?", [tag])[0]
    assert status == "FINISHED"
    hp = _query(store, 'SELECT optimizer_name, learning_rate, num_epochs, num_layers FROM "mnist"."itrainmodel"')
    assert [(h[0].lower(), round(h[1], 6), h[2], h[3]) for h in hp] == [("adam", 0.01, 3.0, 2.0)]
    epochs = _query(
        store, 'SELECT epoch, loss, val_accuracy, task_id FROM "mnist"."otrainmodel" WHERE execution_tag = ? '
        "ORDER BY epoch", [tag]
    )
    assert [e[0] for e in epochs] == [0.0, 1.0, 2.0] and all(e[1] > 0 and e[3] == "1" for e in epochs)
    tasks = _query(store, "SELECT id, dt_tag, status FROM task WHERE execution_tag = ?", [tag])
    assert tasks == [("1", "trainmodel", "FINISHED")]


def test_dfanalyzer_style_script_with_the_three_argument_task(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    store = tmp_path / "store"
    tag = _run(DFANALYZER_SCRIPT, tmp_path, subprocess_env, store)
    assert tag.startswith("prep-") and " " not in tag and ":" not in tag  # a default tag
    tasks = _query(store, "SELECT id, dt_tag, status FROM task WHERE execution_tag = ? ORDER BY id", [tag])
    assert tasks == [("1", "extractratio", "FINISHED"), ("2", "mean", "FINISHED"), ("3", "mean", "FINISHED")]
    deps = _query(store, "SELECT task_id, depends_on_task_id, depends_on_dt_tag FROM task_dependency")
    assert deps == [("2", "1", "extractratio")]
    ratios = _query(store, 'SELECT name, ratio FROM "prep"."oextractratio" ORDER BY name')
    assert ratios == [("a", 0.25), ("b", 0.75)]
    means = _query(store, 'SELECT task_id, mean FROM "prep"."omean" ORDER BY task_id')
    assert means == [("2", 0.5), ("3", 0.75)]
    links = _query(store, "SELECT previous_dt_tag, next_dt_tag FROM data_dependency WHERE ds_tag = ?",
                   ["oextractratio"])
    assert ("extractratio", "mean") in links  # add_transformation(prev_out=...) links the two steps


def test_task_takes_both_argument_forms(dlprov) -> None:
    """In process: the DLProv 5-argument form, the 3-argument form with a sub id, and errors."""
    from dfa_lib_python.dataflow import Dataflow
    from dfa_lib_python.dependency import Dependency
    from dfa_lib_python.task import Task

    df = Dataflow("mnist", predefined=True)
    df.save()
    first = Task(1, "mnist", "run-a", "LoadData")
    assert (first.exec_tag, first.transformation.tag) == ("run-a", "loaddata")
    second = Task(2, "mnist", "run-a", "SplitData", "", first)
    assert second.dependencies == [first]
    original = Task(3, "mnist", "TrainModel", "b", dependency=Dependency(["splitdata"], [2]))
    assert original.transformation.tag == "trainmodel" and original.id == "3b"
    with pytest.raises(TypeError, match="transformation tag"):
        Task(4, "mnist")
    with pytest.raises(Exception, match="unknown transformation 'nosuch'"):
        Task(5, "mnist", "run-a", "nosuch")
