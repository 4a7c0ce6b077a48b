"""The monetdb:// store shares every SQL statement with the embedded one.

These run only when DLPROV_TEST_MONETDB_URL names a MonetDB server
(monetdb://user:password@host:port/database): MonetDB's server is in neither Debian's nor
PyPI's registries, so CI here has none. The embedded tests cover the same SQL.
"""

from __future__ import annotations

import math
import os
import uuid

import pytest

import dlprov_otel
from dlprov_otel import Dataflow, DataSet, Element, Task

URL = os.environ.get("DLPROV_TEST_MONETDB_URL")
pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(not URL, reason="DLPROV_TEST_MONETDB_URL does not name a MonetDB server"),
]


@pytest.fixture
def server(tmp_path):
    tel = dlprov_otel.configure(store=URL, spool_dir=tmp_path / "spool", schedule_delay=0.05)
    yield tel
    dlprov_otel.shutdown()


def test_seed_flow_on_a_server(server):
    tag = "t_" + uuid.uuid4().hex[:12]
    Dataflow(tag, predefined=True).save()
    t = Task(1, tag, "server-run", "trainmodel")
    t.add_dataset(DataSet("itrainmodel", [Element(["adam", 0.001, 2, 4])]))
    t.begin()
    for epoch in range(2):
        t.add_dataset(DataSet("otrainmodel", [Element(["ts", 1.0, 0.5 / (epoch + 1), 0.9, math.nan, None, epoch])]))
        t.save()
    t.end()
    assert server.flush()
    res = server.store.run_script(
        [f'SET SCHEMA "{tag}"', "SELECT epoch, loss, val_loss FROM otrainmodel ORDER BY epoch"]
    )
    assert res.rows == [(0.0, 0.5, None), (1.0, 0.25, None)]
    (hp,) = server.store.run_script([f'SET SCHEMA "{tag}"', "SELECT * FROM itrainmodel"]).as_dicts()
    assert hp["optimizer_name"] == "adam" and hp["learning_rate"] == 0.001
