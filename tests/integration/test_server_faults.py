"""Many writers, killed servers and racing collectors on a real MonetDB server: 0 lost, 0 duplicated.

Sizes scale with DLPROV_TEST_SCALE (default 1; the issue's figure, 8 writers x 2,000 epochs,
is DLPROV_TEST_SCALE=10).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

import dlprov_otel
from dlprov_otel import Dataflow, DataSet, Element, Task
from dlprov_otel.store import open_store
from tests.collector_proc import dataset_request, start_collector
from tests.fixtures_monetdb import empty_server

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[2]
SCALE = int(os.environ.get("DLPROV_TEST_SCALE", "1"))

WRITER = textwrap.dedent(
    """
    import sys
    import dlprov_otel
    from dlprov_otel import Dataflow, DataSet, Element, Task

    url, dataflow, execution, epochs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    tel = dlprov_otel.configure(store=url, schedule_delay=0.05)
    Dataflow(dataflow, predefined=True).save()
    t = Task(1, dataflow, execution, "trainmodel")
    t.begin()
    for epoch in range(epochs):
        t.add_dataset(DataSet("otrainmodel", [Element(["ts", 1.0, 1.0 / (epoch + 1), 0.9, 0.5, 0.8, epoch])]))
        t.save()
    t.end()
    assert tel.flush(600), "not everything was stored"
    dlprov_otel.shutdown()
    """
)


def epochs_by_execution(url: str, dataflow: str) -> dict[str, list[int]]:
    store = open_store(url)
    try:
        rows = store.query(f'SELECT execution_tag, epoch FROM "{dataflow}".otrainmodel ORDER BY execution_tag, epoch')
    finally:
        store.close()
    out: dict[str, list[int]] = {}
    for tag, epoch in rows.rows:
        out.setdefault(tag, []).append(int(epoch))
    return out


def test_parallel_writers_lose_and_duplicate_nothing(monetdb_url, tmp_path):
    """8 processes create the same dataflow at once (schema and table conflicts), then write."""
    empty_server(monetdb_url)
    writers, epochs = 8, 200 * SCALE
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DLPROV_SPOOL_DIR": str(tmp_path / "spool")}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), monetdb_url, "mnist", f"run-{i}", str(epochs)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(writers)
    ]
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * writers, "\n".join(outputs)
    got = epochs_by_execution(monetdb_url, "mnist")
    assert got == {f"run-{i}": list(range(epochs)) for i in range(writers)}
    assert not list((tmp_path / "spool").glob("**/*.otlp*")), "spans went to the spool"


def test_server_killed_mid_run_the_exporter_reconnects_by_itself(monetdb_server, tmp_path):
    url = monetdb_server.url
    tel = dlprov_otel.configure(store=url, spool_dir=tmp_path / "spool", schedule_delay=0.05)
    try:
        Dataflow("mnist", predefined=True).save()
        t = Task(1, "mnist", "killed-run", "trainmodel")
        t.begin()
        total = 300 * SCALE

        def epoch(i: int) -> None:
            t.add_dataset(DataSet("otrainmodel", [Element(["ts", 1.0, 1.0 / (i + 1), 0.9, 0.5, 0.8, i])]))
            t.save()

        for i in range(total // 3):
            epoch(i)
        assert tel.flush(120)
        monetdb_server.kill()  # SIGKILL: no shutdown, connections cut
        for i in range(total // 3, 2 * total // 3):
            epoch(i)  # recorded while the server is down
        assert not tel.flush(1.0)  # nothing can be stored now...
        monetdb_server.start()  # ...and the same URL comes back
        for i in range(2 * total // 3, total):
            epoch(i)
        t.end()
        assert tel.flush(300), "the exporter did not reconnect"
        assert tel.store.backend.reconnects >= 1
    finally:
        dlprov_otel.shutdown()
    assert epochs_by_execution(url, "mnist") == {"killed-run": list(range(total))}
    assert not list((tmp_path / "spool").glob("**/*.otlp*")), "spans went to the spool"


def _post(url: str, body: bytes) -> tuple[int, ExportTraceServiceResponse | bytes]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/x-protobuf"})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, ExportTraceServiceResponse.FromString(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def test_two_collectors_racing_to_create_one_dataflow_lose_nothing(monetdb_url, tmp_path):
    empty_server(monetdb_url)
    cols = [start_collector(tmp_path / f"c{i}", store=monetdb_url) for i in range(2)]
    try:
        for round_ in range(3 * SCALE):
            dataflow = f"race_{round_}_{uuid.uuid4().hex[:6]}"  # a new dataflow: both create its tables
            bodies = [dataset_request(100, f"exec-{i}", dataflow=dataflow, declare=True) for i in range(2)]
            barrier = threading.Barrier(2)

            def send(i: int, bodies=bodies, barrier=barrier) -> tuple[int, object]:
                barrier.wait()
                deadline = time.monotonic() + 120
                while True:  # a 503 asks the sender to retry, as OTLP exporters do
                    status, answer = _post(cols[i].url + "/v1/traces", bodies[i])
                    if status != 503 or time.monotonic() > deadline:
                        return status, answer
                    time.sleep(0.2)

            with ThreadPoolExecutor(2) as pool:
                results = list(pool.map(send, range(2)))
            for status, answer in results:
                assert status == 200, answer
                assert answer.partial_success.rejected_spans == 0, answer.partial_success.error_message
            store = open_store(monetdb_url)
            try:
                rows = store.query(
                    f'SELECT execution_tag, COUNT(*), COUNT(DISTINCT step) FROM "{dataflow}".metrics '
                    "GROUP BY execution_tag ORDER BY execution_tag"
                ).rows
            finally:
                store.close()
            assert rows == [("exec-0", 100, 100), ("exec-1", 100, 100)]
    finally:
        for c in cols:
            c.stop()
