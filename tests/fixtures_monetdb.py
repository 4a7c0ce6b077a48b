"""A real MonetDB server for the tests, and stores on both backends.

- ``monetdb_url`` (session): ``DLPROV_TEST_MONETDB_URL`` when set (a scratch database: the
  tests empty it), else a server built and started by ``scripts/monetdb.sh`` in a state dir of
  this session, stopped at the end. Missing infrastructure fails the test; it never skips.
- ``store_url``: parametrised ``embedded`` (a fresh directory) and ``server`` (the session
  server, emptied of every store table and dataflow schema first).
- ``monetdb_server``: a server of the test's own (to kill and restart it).

Wire it in with ``from tests.fixtures_monetdb import monetdb_server, monetdb_url, store_url  # noqa: F401``
in ``tests/conftest.py``; a test then takes ``store_url`` and runs once per backend.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "monetdb.sh"
# a cold build takes 3-8 minutes on 2 cores, far longer on a machine busy with other builds
START_TIMEOUT_S = 45 * 60
STOP_TIMEOUT_S = 120


class MonetDBServer:
    """One mserver5 started by scripts/monetdb.sh from its own state dir."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.url = ""

    def _script(self, command: str, timeout: float) -> str:
        env = {**os.environ, "DLPROV_MONETDB_STATE": str(self.state)}
        try:
            proc = subprocess.run(
                [str(SCRIPT), command], env=env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"scripts/monetdb.sh {command} took longer than {timeout:.0f}s: {exc.stderr!r}")
        if proc.returncode != 0:
            pytest.fail(f"scripts/monetdb.sh {command} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return proc.stdout.strip()

    def start(self) -> str:
        """Start (or restart, on the same port) and wait until it answers; returns the URL."""
        self.url = self._script("start", START_TIMEOUT_S).splitlines()[-1]
        assert self.url.startswith("monetdb://"), self.url
        return self.url

    def stop(self) -> None:
        self._script("stop", STOP_TIMEOUT_S)

    @property
    def pid(self) -> int:
        return int((self.state / "mserver5.pid").read_text())

    def kill(self) -> None:
        """SIGKILL the server (no shutdown) and wait until it is gone."""
        pid = self.pid
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while _running(pid):
            if time.monotonic() > deadline:
                pytest.fail(f"mserver5 {pid} still runs 60s after SIGKILL")
            time.sleep(0.05)  # polling the process table, not a fixed wait


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def connect(url: str):
    """A pymonetdb connection to ``url`` (autocommit)."""
    import pymonetdb

    p = urlsplit(url)
    return pymonetdb.connect(
        hostname=p.hostname,
        port=p.port or 50000,
        username=unquote(p.username or "monetdb"),
        password=unquote(p.password or "monetdb"),
        database=p.path.strip("/"),
        autocommit=True,
        connect_timeout=30,
    )


def empty_server(url: str) -> None:
    """Drop every schema and table a store created (non-system ones) from the server's database."""
    con = connect(url)
    try:
        cur = con.cursor()
        cur.execute("SELECT name FROM sys.schemas WHERE NOT system")
        for (name,) in cur.fetchall():
            cur.execute(f'DROP SCHEMA "{name}" CASCADE')
        cur.execute(
            "SELECT s.name, t.name FROM sys.tables t JOIN sys.schemas s ON t.schema_id = s.id "
            "WHERE NOT t.system AND t.temporary = 0 AND t.type IN (0, 1)"
        )
        for schema, table in cur.fetchall():
            cur.execute(f'DROP TABLE "{schema}"."{table}" CASCADE')
    finally:
        con.close()


@pytest.fixture(scope="session")
def monetdb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a running MonetDB server for this session (see the module docstring)."""
    given = os.environ.get("DLPROV_TEST_MONETDB_URL")
    if given:
        try:
            connect(given).close()
        except Exception as exc:
            pytest.fail(f"DLPROV_TEST_MONETDB_URL names a MonetDB server that does not answer: {exc}")
        yield given
        return
    server = MonetDBServer(tmp_path_factory.mktemp("monetdb-session"))
    yield server.start()
    server.stop()


@pytest.fixture
def monetdb_server(tmp_path: Path) -> Iterator[MonetDBServer]:
    """A MonetDB server of this test alone, started; stopped afterwards."""
    server = MonetDBServer(tmp_path / "monetdb")
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["embedded", pytest.param("server", marks=pytest.mark.server)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL with nothing stored yet, once per backend."""
    if request.param == "embedded":
        return str(tmp_path / "store")
    url = request.getfixturevalue("monetdb_url")
    empty_server(url)
    return url
