"""A set with 10,000 attributes (a wide feature vector, a per-class metric table) is stored whole."""

from __future__ import annotations

import pytest

import dlprov_otel
from dlprov_otel import Attribute, AttributeType, DataSet, Element, Set, SetType, Task, Transformation


@pytest.fixture
def dlprov(dlprov_both):
    """These tests run on both backends: embedded MonetDB and a MonetDB server."""
    return dlprov_both

def test_ten_thousand_attributes_are_stored(dlprov):
    n = 10_000
    df = dlprov_otel.Dataflow("wide")
    t = Transformation("profile")
    t.set_sets([Set("oprofile", SetType.OUTPUT, [Attribute(f"f{i}", AttributeType.NUMERIC) for i in range(n)])])
    df.add_transformation(t)
    df.save()
    task = Task(1, df, "wide-run", "profile")
    task.add_dataset(DataSet("oprofile", [Element([i * 0.5 for i in range(n)])]))
    task.end()
    assert dlprov_otel.flush(600)
    store = dlprov_otel.get_store()
    row = store.query('SELECT f0, f1, f4321, f9999 FROM "wide"."oprofile"').rows
    assert [tuple(r) for r in row] == [(0.0, 0.5, 2160.5, 4999.5)]
    names = store.query("SELECT count(DISTINCT name), min(ordinal), max(ordinal) FROM attribute "
                        "WHERE dataflow_tag = 'wide' AND ds_tag = 'oprofile'").rows
    assert tuple(names[0]) == (n, 0, n - 1)
