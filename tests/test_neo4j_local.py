"""Our launcher of a local Neo4j Community server (resolved with Maven, run with ``java``): start,
state file, status, stop, the CLI, and a clear error without the Maven project. Neo4j itself
(types, MERGE, authentication) is not tested here; the loader's tests use it for real."""

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


def test_start_refuses_a_busy_port(server: neo4j_local.Neo4jServer, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="already in use"):
        neo4j_local.start(
            port=server.port, data_dir=tmp_path / "d", state_file=tmp_path / "s.json", timeout=5
        )


def test_a_server_that_dies_during_start_is_reported_at_once(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLPROV_NEO4J_JAVA_OPTS", "-XX:+DlprovNoSuchOption")  # the JVM refuses to start
    with pytest.raises(RuntimeError, match="exited with code 1 during start") as err:
        neo4j_local.start(data_dir=tmp_path / "d", state_file=tmp_path / "s.json")
    assert "DlprovNoSuchOption" in str(err.value)  # the log's tail says why
    assert not (tmp_path / "s.json").exists()


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
        timeout=neo4j_local.START_TIMEOUT_S + 120,  # generous: a loaded machine starts the JVM slowly
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


def test_without_the_maven_project_the_error_names_the_setting(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DLPROV_NEO4J_PROJECT"}
    env["DLPROV_NEO4J_PROJECT"] = str(tmp_path / "nowhere")
    out = subprocess.run(
        [sys.executable, "-m", "dlprov_otel.services.neo4j_local", "build"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert out.returncode == 1
    assert out.stderr.strip() == f"error: no Maven project at {tmp_path / 'nowhere'} (set DLPROV_NEO4J_PROJECT)"


def test_the_project_is_found_in_the_checkout_or_by_its_setting(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    from dlprov_otel.services import checkout

    monkeypatch.delenv("DLPROV_NEO4J_PROJECT", raising=False)
    assert neo4j_local.project_dir() == REPO_ROOT / "neo4j"
    monkeypatch.setattr(checkout, "_CHECKOUT", tmp_path)  # as installed from a wheel: no checkout
    with pytest.raises(checkout.ServiceFilesNotFound, match="not found: set DLPROV_NEO4J_PROJECT"):
        neo4j_local.project_dir()
    monkeypatch.setenv("DLPROV_NEO4J_PROJECT", str(tmp_path / "mine"))
    assert neo4j_local.project_dir() == tmp_path / "mine"
