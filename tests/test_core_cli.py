"""The `dlprov` command line against a real embedded store (statement splitting: tests/unit)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from tests.unit.user_scripts import seed_snippet


@pytest.fixture
def recorded(dlprov, store_dir):
    import dlprov_otel

    seed_snippet("cli-run", epochs=2)
    dlprov_otel.shutdown()  # the store is free for the CLI process
    return store_dir


def dlprov_cli(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "dlprov_otel.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_sql_runs_statements_in_one_session(recorded, subprocess_env):
    out = dlprov_cli(
        "sql",
        "--store",
        str(recorded),
        "--format",
        "json",
        'SET SCHEMA "mnist"; SELECT epoch, loss FROM otrainmodel ORDER BY epoch',
        env=subprocess_env,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [{"epoch": 0.0, "loss": 0.3}, {"epoch": 1.0, "loss": 0.15}]


def test_sql_table_and_csv(recorded, subprocess_env):
    table = dlprov_cli("sql", "--store", str(recorded), "SELECT * FROM dataflow", env=subprocess_env)
    assert table.returncode == 0 and "| mnist" in table.stdout and "1 row" in table.stdout
    out = dlprov_cli(
        "sql",
        "--store",
        str(recorded),
        "--format",
        "csv",
        'SET SCHEMA "mnist"; SELECT val_loss, task_id FROM otrainmodel',
        env=subprocess_env,
    )
    rows = list(csv.reader(io.StringIO(out.stdout)))
    assert rows == [["val_loss", "task_id"], ["", "1"], ["", "1"]]  # NULL, not a sentinel


def test_executions_lists_runs(recorded, subprocess_env):
    out = dlprov_cli("executions", "--store", str(recorded), env=subprocess_env)
    assert out.returncode == 0, out.stderr
    assert "cli-run" in out.stdout and "FINISHED" in out.stdout
    line = next(ln for ln in out.stdout.splitlines() if "cli-run" in ln)
    assert line.rstrip(" |").endswith("3")  # 1 itrainmodel + 2 otrainmodel elements


def test_sql_errors_are_one_clear_line(recorded, subprocess_env):
    out = dlprov_cli("sql", "--store", str(recorded), "SELECT * FROM nosuch", env=subprocess_env)
    assert out.returncode == 1
    assert "dlprov: error: SELECT: no such table 'nosuch'" in out.stderr
    bad = dlprov_cli("sql", "--store", "ftp://x", "SELECT 1", env=subprocess_env)
    assert bad.returncode == 1 and "unknown store URL scheme 'ftp'" in bad.stderr


def test_a_feature_without_its_extra_names_the_extra(subprocess_env):
    """`make demo` installs only the Keras extra: the other commands must say what to install."""
    code = (
        "import sys; sys.modules['google.rpc'] = None; "  # as if the collector extra were absent
        "from dlprov_otel.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, "collector", "serve"],
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=120,
    )
    assert out.returncode == 1
    assert "pip install 'dlprov-otel-collector'" in out.stderr  # its own distribution
    ok = subprocess.run(
        [sys.executable, "-c", code, "sql", "--help"], capture_output=True, text=True, env=subprocess_env, timeout=120
    )
    assert ok.returncode == 0 and "--store" in ok.stdout  # the other commands still work


def test_sql_on_a_local_store_is_read_only_unless_write(recorded, subprocess_env):
    refused = dlprov_cli("sql", "--store", str(recorded), "DROP TABLE dataflow", env=subprocess_env)
    assert refused.returncode == 1 and "read-only" in refused.stderr and len(refused.stderr.splitlines()) == 1
    # MonetDB's system objects are refused with one line, instead of crashing embedded MonetDB
    crash = dlprov_cli("sql", "--store", str(recorded), "SELECT count(*) FROM sys.sessions", env=subprocess_env)
    assert crash.returncode == 1, crash.stderr
    assert "reads provenance only" in crash.stderr
    script = "CREATE TABLE notes (x INT); INSERT INTO notes VALUES (1)"
    wrote = dlprov_cli("sql", "--store", str(recorded), "--write", script, env=subprocess_env)
    assert wrote.returncode == 0, wrote.stderr
    kept = dlprov_cli("sql", "--store", str(recorded), "--format", "csv", "SELECT x FROM notes", env=subprocess_env)
    assert kept.stdout.split() == ["x", "1"]
