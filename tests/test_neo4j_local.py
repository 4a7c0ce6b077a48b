"""The local Neo4j Community server (resolved with Maven, run with ``java``) really works."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dlprov_otel.services import neo4j_local

pytestmark = [
    pytest.mark.neo4j,
]

REPO_ROOT = Path(__file__).resolve().parents[1]


def _driver_module():
    try:
        import neo4j
        from neo4j import GraphDatabase  # noqa: F401
    except ImportError:
        pytest.fail("the neo4j Python driver is not installed (pip install '.[neo4j]')")
    return neo4j


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[neo4j_local.Neo4jServer]:
    _driver_module()
    base = tmp_path_factory.mktemp("neo4j")
    srv = neo4j_local.start(data_dir=base / "data", state_file=base / "server.json")
    yield srv
    srv.stop()


@pytest.fixture
def driver(server: neo4j_local.Neo4jServer):
    neo4j = _driver_module()
    with neo4j.GraphDatabase.driver(server.uri, auth=server.auth) as drv:
        yield drv


def test_server_listens_on_loopback_and_records_state(server: neo4j_local.Neo4jServer) -> None:
    assert re.fullmatch(r"bolt://127\.0\.0\.1:\d+", server.uri)
    assert neo4j_local.port_open(server.port)
    assert neo4j_local.pid_alive(server.pid)
    assert server.user == "neo4j"
    assert server.password == "dlprovdlprov"
    state = json.loads(server.state_file.read_text())
    assert state["pid"] == server.pid
    assert state["uri"] == server.uri
    assert (state["user"], state["password"]) == (server.user, server.password)
    found = neo4j_local.status(server.state_file)
    assert found is not None and found.pid == server.pid
    assert "READY " + server.uri in server.log_path.read_text()


def test_create_keeps_property_types(driver) -> None:
    records, _, _ = driver.execute_query(
        "CREATE (n:Entity {`dlprov:ds_tag`: 'x', `dlprov:loss`: 0.5, `dlprov:epoch`: 3,"
        " `dlprov:shape`: [28, 28], `dlprov:ok`: true}) RETURN n"
    )
    assert len(records) == 1
    node = records[0]["n"]
    assert set(node.labels) == {"Entity"}
    assert node["dlprov:ds_tag"] == "x"
    loss = node["dlprov:loss"]
    assert type(loss) is float and loss == 0.5
    assert type(node["dlprov:epoch"]) is int and node["dlprov:epoch"] == 3
    assert node["dlprov:shape"] == [28, 28]
    assert node["dlprov:ok"] is True
    # Read back in a fresh query, not just the CREATE's own result.
    again, _, _ = driver.execute_query(
        "MATCH (n:Entity {`dlprov:ds_tag`: 'x'}) RETURN n.`dlprov:loss` AS loss"
    )
    assert [type(r["loss"]) for r in again] == [float]


def test_merge_twice_makes_one_node(driver) -> None:
    query = (
        "MERGE (n:Entity {`dlprov:id`: $id}) "
        "ON CREATE SET n.created = 1 ON MATCH SET n.created = n.created + 1 RETURN n.created AS c"
    )
    first, _, _ = driver.execute_query(query, id="merge-1")
    second, _, _ = driver.execute_query(query, id="merge-1")
    assert (first[0]["c"], second[0]["c"]) == (1, 2)
    count, _, _ = driver.execute_query(
        "MATCH (n:Entity {`dlprov:id`: $id}) RETURN count(n) AS c", id="merge-1"
    )
    assert count[0]["c"] == 1


def test_auth_is_enforced(server: neo4j_local.Neo4jServer) -> None:
    neo4j = _driver_module()
    with (
        neo4j.GraphDatabase.driver(server.uri, auth=("neo4j", "not-the-password")) as bad,
        pytest.raises(neo4j.exceptions.AuthError),
    ):
        bad.verify_connectivity()


def test_start_refuses_a_busy_port(server: neo4j_local.Neo4jServer, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="already in use"):
        neo4j_local.start(
            port=server.port, data_dir=tmp_path / "d", state_file=tmp_path / "s.json", timeout=5
        )


def test_stop_really_stops_and_cli_restarts_on_same_data(tmp_path: Path) -> None:
    neo4j = _driver_module()
    state = tmp_path / "server.json"
    data = tmp_path / "data"
    srv = neo4j_local.start(data_dir=data, state_file=state, password="another-pass")
    with neo4j.GraphDatabase.driver(srv.uri, auth=srv.auth) as drv:
        drv.execute_query("CREATE (:Activity {`dlprov:name`: 'fit'})")

    assert neo4j_local.stop(state) is True
    assert not neo4j_local.port_open(srv.port)
    assert not neo4j_local.pid_alive(srv.pid)
    assert not state.exists()
    assert neo4j_local.status(state) is None
    assert neo4j_local.stop(state) is False  # nothing left to stop

    # The CLI leaves a detached server behind after the Python process exits.
    cli = [sys.executable, "-m", "dlprov_otel.services.neo4j_local", "--state", str(state)]
    env = {**os.environ, "NEO4J_PASSWORD": "another-pass"}
    out = subprocess.run(
        [*cli, "start", "--data", str(data)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    lines = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    try:
        assert lines["NEO4J_USERNAME"] == "neo4j"
        assert lines["NEO4J_PASSWORD"] == "another-pass"
        uri = lines["NEO4J_URI"]
        with neo4j.GraphDatabase.driver(uri, auth=("neo4j", "another-pass")) as drv:
            records, _, _ = drv.execute_query("MATCH (a:Activity) RETURN a.`dlprov:name` AS name")
        assert [r["name"] for r in records] == ["fit"]  # data survived the restart
        pid = json.loads(state.read_text())["pid"]
        status = subprocess.run(
            [*cli, "status"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        assert status.returncode == 0 and f"NEO4J_URI={uri}" in status.stdout
    finally:
        stopped = subprocess.run(
            [*cli, "stop"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
    assert stopped.returncode == 0
    assert not neo4j_local.port_open(int(uri.rsplit(":", 1)[1]))
    assert not neo4j_local.pid_alive(pid)
    status = subprocess.run(
        [*cli, "status"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert status.returncode == 3
