"""Spans into real embedded MonetDB: the seed's SQL session, idempotency, volume, values."""

from __future__ import annotations

import math
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import dlprov_otel
from dlprov_otel import (
    Attribute,
    AttributeType,
    Dataflow,
    DataSet,
    Element,
    Set,
    SetType,
    Task,
    Transformation,
)
from dlprov_otel.exporter import MonetDBSpanExporter
from tests.test_core_api_spans import seed_snippet


@pytest.fixture
def dlprov(dlprov_both):
    """These tests run on both backends: embedded MonetDB and a MonetDB server."""
    return dlprov_both

def rows(store, sql, params=None):
    return store.query(sql, params).rows


def test_seed_session_works_as_written(dlprov):
    seed_snippet("run-seed", epochs=3)
    assert dlprov.flush()
    store = dlprov.store
    assert rows(store, "SELECT tag FROM dataflow") == [("mnist",)]
    res = store.run_script(['SET SCHEMA "mnist"', "SELECT * FROM itrainmodel"])
    (hp,) = res.as_dicts()
    assert (hp["optimizer_name"], hp["learning_rate"], hp["num_epochs"], hp["num_layers"]) == ("adam", 0.001, 3.0, 4.0)
    assert hp["consumer_task_id"] == "1" and hp["producer_task_id"] is None
    epochs = store.run_script(
        ['SET SCHEMA "mnist"', "SELECT epoch, loss, val_loss FROM otrainmodel ORDER BY epoch"]
    ).rows
    assert [e[0] for e in epochs] == [0.0, 1.0, 2.0]
    assert [e[1] for e in epochs] == pytest.approx([0.3, 0.15, 0.1])
    # NaN is stored as NULL, never a sentinel
    nulls = store.run_script(
        ['SET SCHEMA "mnist"', "SELECT COUNT(*) FROM otrainmodel WHERE val_loss IS NULL AND val_accuracy IS NULL"]
    )
    assert nulls.rows == [(3,)]
    # the session's schema does not leak into later queries
    assert rows(store, "SELECT COUNT(*) FROM dataflow_execution") == [(1,)]
    (task,) = store.query("SELECT * FROM task").as_dicts()
    assert (task["dt_tag"], task["status"]) == ("trainmodel", "FINISHED")
    assert task["end_time"] >= task["start_time"]


def test_execution_row_is_running_then_finished(dlprov):
    seed_snippet("run-live", epochs=1)
    dlprov.flush()
    assert rows(dlprov.store, "SELECT status, end_time FROM dataflow_execution") == [("RUNNING", None)]
    dlprov_otel.tracing._end_open_executions()
    dlprov.flush()
    ((status, end),) = rows(dlprov.store, "SELECT status, end_time FROM dataflow_execution")
    assert status == "FINISHED" and end is not None
    (hw,) = dlprov.store.query("SELECT * FROM hardware").as_dicts()
    assert hw["cpu_count"] >= 1 and hw["host_name"]


def test_same_spans_exported_twice_are_stored_once(dlprov):
    captured = InMemorySpanExporter()
    dlprov.provider.add_span_processor(SimpleSpanProcessor(captured))
    seed_snippet("run-twice", epochs=2)
    dlprov.flush()
    before = rows(dlprov.store, 'SELECT COUNT(*) FROM "mnist"."otrainmodel"')
    again = MonetDBSpanExporter(store=dlprov.store)
    spans = captured.get_finished_spans()
    assert again.export(spans).name == "SUCCESS"
    assert again.export(list(spans) + list(spans)).name == "SUCCESS"
    assert rows(dlprov.store, 'SELECT COUNT(*) FROM "mnist"."otrainmodel"') == before == [(2,)]
    assert rows(dlprov.store, "SELECT COUNT(*) FROM task") == [(1,)]


def test_five_thousand_epochs_lose_nothing(dlprov):
    Dataflow("mnist", predefined=True).save()
    t = Task(1, "mnist", "run-5000", "trainmodel")
    t.begin()
    for epoch in range(5000):
        t.add_dataset(DataSet("otrainmodel", [Element(["ts", 0.01, 1.0 / (epoch + 1), 0.5, None, None, epoch])]))
        t.save()
    t.end()
    assert dlprov.flush(timeout=120)
    stats = dlprov.stats()
    assert stats["dropped"] == 0 and stats["pending"] == 0
    ((n, lo, hi, distinct),) = rows(
        dlprov.store, 'SELECT COUNT(*), MIN(epoch), MAX(epoch), COUNT(DISTINCT epoch) FROM "mnist"."otrainmodel"'
    )
    assert (n, lo, hi, distinct) == (5000, 0.0, 4999.0, 5000)


def test_extra_attributes_become_columns(dlprov):
    Dataflow("mnist", predefined=True).save()
    t = Task(1, "mnist", "run-extra", "trainmodel")
    t.add_dataset(
        DataSet(
            "otrainmodel",
            [
                Element(
                    {
                        "timestamp": "t",
                        "elapsed_time": 1,
                        "loss": 0.2,
                        "accuracy": 0.8,
                        "val_loss": 0.3,
                        "val_accuracy": 0.7,
                        "epoch": 0,
                        "top_5_accuracy": 0.99,
                        "note": "warm-up",
                    }
                )
            ],
        )
    )
    t.end()
    dlprov.flush()
    ((top5, note),) = rows(dlprov.store, 'SELECT top_5_accuracy, note FROM "mnist"."otrainmodel"')
    assert (top5, note) == (0.99, "warm-up")
    types = dict(
        rows(dlprov.store, "SELECT name, type FROM attribute WHERE ds_tag = 'otrainmodel' AND optional "
                           "AND name IN ('top_5_accuracy', 'note')")
    )  # declared by the SDK (a new version of the dataflow) before the row
    assert types == {"top_5_accuracy": "NUMERIC", "note": "TEXT"}


def test_quotes_unicode_and_a_10mb_string_are_stored_faithfully(dlprov):
    big = "ü" + "x" * (10 * 1024 * 1024) + "'\"; DROP TABLE task; --"
    Dataflow("mnist", predefined=True).save()
    t = Task(1, "mnist", 'it\'s a "tag"; with quotes', "loaddata")
    t.add_dataset(DataSet("iinputdataset", [Element(['O\'Reilly "digits" 数据', big])]))
    t.end()
    dlprov.flush()
    ((name, source, exec_tag),) = rows(
        dlprov.store, 'SELECT dataset_name, dataset_source, execution_tag FROM "mnist"."iinputdataset"'
    )
    assert name == 'O\'Reilly "digits" 数据'
    assert source == big
    assert exec_tag == 'it\'s a "tag"; with quotes'
    assert rows(dlprov.store, "SELECT COUNT(*) FROM task") == [(1,)]


def test_custom_transformation_added_after_save_is_a_new_version(dlprov):
    df = Dataflow("mnist", predefined=True)
    df.save()
    prep_in = Set("ipreprocess", SetType.INPUT, [Attribute("scaling", AttributeType.TEXT)])
    prep_out = Set(
        "opreprocess", SetType.OUTPUT, [Attribute("mean", AttributeType.NUMERIC), Attribute("path", AttributeType.FILE)]
    )
    df.add_transformation(Transformation("Preprocess", [prep_in], [prep_out]))
    t = Task(7, "mnist", "run-v2", "preprocess")  # saving the new version is not forgotten
    t.add_dataset(DataSet("oPreprocess", [Element([0.5, "/data/x.npz"])]))
    t.end()
    dlprov.flush()
    assert rows(dlprov.store, "SELECT version FROM dataflow WHERE tag = 'mnist'") == [(2,)]
    assert rows(dlprov.store, "SELECT version_added FROM data_transformation WHERE tag = 'preprocess'") == [(2,)]
    assert rows(dlprov.store, 'SELECT mean, path FROM "mnist"."opreprocess"') == [(0.5, "/data/x.npz")]
    df.save()  # unchanged: no new version
    dlprov.flush()
    assert rows(dlprov.store, "SELECT COUNT(*) FROM dataflow_version") == [(2,)]


def test_tags_are_case_insensitive(dlprov):
    Dataflow("MNIST", predefined=True).save()
    t = Task(1, "Mnist", "run-case", "TRAINMODEL")
    t.add_dataset(DataSet("ITrainModel", [Element(["adam", 0.1, 1, 2])]))
    t.end()
    dlprov.flush()
    assert rows(dlprov.store, 'SELECT optimizer_name FROM "mnist"."itrainmodel"') == [("adam",)]


text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
number = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=False, width=64), st.integers(-(2**53), 2**53))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=text, loss=number, acc=number)
def test_values_round_trip(dlprov, name, loss, acc):
    exec_tag = f"{uuid.uuid4().hex}-{name}"
    Dataflow("mnist", predefined=True).save()
    t = Task(1, "mnist", exec_tag, "testmodel")
    t.add_dataset(DataSet("otestmodel", [Element([loss, acc])]))
    t.end()
    dlprov.flush()
    res = rows(dlprov.store, 'SELECT loss, accuracy FROM "mnist"."otestmodel" WHERE execution_tag = ?', [exec_tag])
    assert len(res) == 1, exec_tag
    got = res[0]
    for want, have in zip((loss, acc), got, strict=True):
        if want is None or (isinstance(want, float) and math.isnan(want)):
            assert have is None or math.isnan(have)  # NULL
        else:
            assert have == float(want)


def test_seeded_random_does_not_make_runs_collide(dlprov):
    """Scripts seed `random` for reproducibility; two runs must still be two runs."""
    import random

    for run in ("seeded-a", "seeded-b"):
        random.seed(42)
        Dataflow("mnist", predefined=True).save()
        t = Task(1, "mnist", run, "testmodel")
        t.add_dataset(DataSet("otestmodel", [Element([0.1, 0.9])]))
        t.end()
    dlprov.flush()
    assert rows(dlprov.store, 'SELECT COUNT(DISTINCT execution_tag) FROM "mnist"."otestmodel"') == [(2,)]
