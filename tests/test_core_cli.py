"""The `dlprov` command line against a real embedded store (statement splitting: tests/unit)."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import urllib.request

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


# --- names, every result, one-line errors, \d, a missing store (issue 15, parts 3 and 5) ----------
def test_sql_prints_every_result_with_readable_headers(recorded, subprocess_env):
    script = 'SELECT count(*), max(tag) FROM dataflow; SET SCHEMA "mnist"; SELECT epoch FROM otrainmodel ORDER BY epoch'
    out = dlprov_cli("sql", "--store", str(recorded), script, env=subprocess_env)
    assert out.returncode == 0, out.stderr
    assert "| count | max   |" in out.stdout and "%" not in out.stdout  # not MonetDB's %1, %2
    assert "| 1     | mnist |" in out.stdout
    assert out.stdout.count(" row") == 2 and "| 1.0   |" in out.stdout  # both results, in order
    as_csv = dlprov_cli("sql", "--store", str(recorded), "--format", "csv", script, env=subprocess_env)
    blocks = [list(csv.reader(io.StringIO(b))) for b in as_csv.stdout.strip().split("\n\n")]
    assert blocks == [[["count", "max"], ["1", "mnist"]], [["epoch"], ["0.0"], ["1.0"]]]  # a blank line between
    as_json = dlprov_cli("sql", "--store", str(recorded), "--format", "json", script, env=subprocess_env)
    decoder, text, docs = json.JSONDecoder(), as_json.stdout.strip(), []
    while text:
        doc, end = decoder.raw_decode(text)
        docs.append(doc)
        text = text[end:].strip()
    assert docs == [[{"count": 1, "max": "mnist"}], [{"epoch": 0.0}, {"epoch": 1.0}]]


def test_backslash_d_lists_tables_and_columns(recorded, subprocess_env):
    tables = dlprov_cli("sql", "--store", str(recorded), "\\d", env=subprocess_env)
    assert tables.returncode == 0, tables.stderr
    assert "| mnist  | otrainmodel " in tables.stdout and "dataflow_execution" in tables.stdout
    columns = dlprov_cli("sql", "--store", str(recorded), "\\d mnist.otrainmodel", env=subprocess_env)
    assert columns.returncode == 0, columns.stderr
    assert "| val_accuracy " in columns.stdout and "| double " in columns.stdout
    written = dlprov_cli("sql", "--store", str(recorded), "--write", 'SET SCHEMA "mnist"; \\d itrainmodel',
                         env=subprocess_env)
    assert written.returncode == 0 and "| learning_rate " in written.stdout, written.stderr


def test_sql_errors_say_what_to_do_in_one_line(recorded, subprocess_env):
    keyword = dlprov_cli("sql", "--store", str(recorded), "SELECT trigger FROM mnist.oadaptation", env=subprocess_env)
    assert keyword.returncode == 1 and len(keyword.stderr.splitlines()) == 1, keyword.stderr
    assert 'needs double quotes, "trigger"' in keyword.stderr and "prepare" not in keyword.stderr
    quoted = dlprov_cli("sql", "--store", str(recorded), 'SELECT "trigger" FROM mnist.oadaptation', env=subprocess_env)
    assert quoted.returncode == 0, quoted.stderr
    schema = dlprov_cli("sql", "--store", str(recorded), 'SET SCHEMA "cifar"; SELECT 1', env=subprocess_env)
    assert schema.returncode == 1 and len(schema.stderr.splitlines()) == 1, schema.stderr
    assert "no schema 'cifar'; the store has: mnist" in schema.stderr
    qualified = dlprov_cli("sql", "--store", str(recorded), "SELECT * FROM cifar.otrainmodel", env=subprocess_env)
    assert qualified.returncode == 1 and len(qualified.stderr.splitlines()) == 1, qualified.stderr
    assert "no such schema 'cifar'; the store has: mnist" in qualified.stderr
    for unknown in ("\\d otrainmodl", "\\d cifar.otrainmodel"):  # not an empty listing: an error naming \d
        described = dlprov_cli("sql", "--store", str(recorded), unknown, env=subprocess_env)
        assert described.returncode == 1 and len(described.stderr.splitlines()) == 1, described.stderr
        assert "no table" in described.stderr and "\\d lists the tables" in described.stderr


def test_sql_piped_into_head_ends_quietly(recorded, subprocess_env):
    # a reader that stops early (| head) closes the pipe: the command ends without a traceback
    proc = subprocess.Popen([sys.executable, "-m", "dlprov_otel.cli", "sql", "--store", str(recorded), "\\d"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env)
    proc.stdout.close()  # before the command has printed anything (it starts in a second or more)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode != 0  # what it meant to print was not read


def test_read_commands_refuse_a_store_that_does_not_exist(tmp_path, subprocess_env):
    missing = tmp_path / "typo-data"
    for command in (["sql", "SELECT 1"], ["executions"], ["prov", "export", "--execution", "latest"]):
        out = dlprov_cli(*command, "--store", str(missing), env=subprocess_env)
        assert out.returncode == 1, (command, out.stdout)
        assert out.stderr.splitlines() == [f"dlprov: error: no store at {missing}: it does not exist; "
                                           "give --store with the path a run recorded into"]
    assert not missing.exists()  # nothing was created
    empty = tmp_path / "empty"
    empty.mkdir()
    out = dlprov_cli("executions", "--store", str(empty), env=subprocess_env)
    assert out.returncode == 1 and "is not a DLProv store" in out.stderr


def test_runs_are_named_and_found_by_latest_name_or_prefix(dlprov, store_dir, tmp_path, subprocess_env, monkeypatch):
    import re

    import dlprov_otel

    with dlprov_otel.execution(dataflow="mnist", name="baseline") as named:
        pass
    monkeypatch.setenv("DLPROV_RUN_NAME", "from-env")
    with dlprov_otel.execution(dataflow="mnist") as env_named:
        pass
    monkeypatch.delenv("DLPROV_RUN_NAME")
    with dlprov_otel.execution("kept as given: 1", dataflow="mnist") as given:
        pass
    dlprov_otel.shutdown()
    for ex in (named, env_named):
        assert re.fullmatch(r"mnist-\d{8}-\d{6}-[0-9a-f]{4}", ex.tag), ex.tag
    assert (named.name, env_named.name, given.tag, given.name) == ("baseline", "from-env", "kept as given: 1", None)

    listed = dlprov_cli("executions", "--store", str(store_dir), "--format", "json", env=subprocess_env)
    assert [(r["tag"], r["name"]) for r in json.loads(listed.stdout)] == [
        (named.tag, "baseline"), (env_named.tag, "from-env"), (given.tag, None)
    ]
    out = tmp_path / "prov"
    prefix = next(env_named.tag[:k] for k in range(1, 40) if not named.tag.startswith(env_named.tag[:k]))
    for ref, tag in (("latest", given.tag), ("baseline", named.tag), ("from-env", env_named.tag),
                     (prefix, env_named.tag)):
        res = dlprov_cli("prov", "export", "--execution", ref, "--store", str(store_dir), "--format", "json",
                         "--out", str(out), env=subprocess_env)
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == [str(out / f"{tag.replace(': ', '_').replace(' ', '_')}.json")]
    ambiguous = dlprov_cli("prov", "export", "--execution", "mnist-", "--store", str(store_dir), env=subprocess_env)
    assert ambiguous.returncode == 1 and len(ambiguous.stderr.splitlines()) == 1
    assert "is the prefix of 2 executions" in ambiguous.stderr and named.tag in ambiguous.stderr
    assert env_named.tag in ambiguous.stderr
    unknown = dlprov_cli("prov", "export", "--execution", "nope", "--store", str(store_dir), env=subprocess_env)
    assert unknown.returncode == 1 and "unknown execution 'nope'" in unknown.stderr and given.tag in unknown.stderr


KILLED_RUN = """
import os, signal
import dlprov_otel
dlprov_otel.configure(store={store!r})
with dlprov_otel.execution(dataflow="mnist", name="doomed"):
    with dlprov_otel.task("trainmodel") as t:
        t.output("otrainmodel", timestamp="t", elapsed_time=1.0, loss=0.5, accuracy=0.8, val_loss=0.6,
                 val_accuracy=0.7, epoch=0)
        dlprov_otel.flush()
        os.kill(os.getpid(), signal.SIGKILL)
"""


def test_executions_local_and_endpoint_show_the_dashboards_killed_status(tmp_path, subprocess_env):
    store = tmp_path / "store"
    env = {**subprocess_env, "DLPROV_UI_KILLED_AFTER": "0"}
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN.format(store=str(store))], env=env, timeout=120)
    assert killed.returncode == -9
    local = dlprov_cli("executions", "--store", str(store), "--format", "json", env=env)
    assert local.returncode == 0, local.stderr
    (run,) = json.loads(local.stdout)
    assert (run["name"], run["status"], run["epochs"], run["tasks"]) == ("doomed", "KILLED", 1, 1)
    local_table = dlprov_cli("executions", "--store", str(store), env=env)  # before the dashboard holds the store
    ui = subprocess.Popen(
        [sys.executable, "-m", "dlprov_otel.cli", "ui", "--store", str(store), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    try:
        url = None
        for line in ui.stdout:
            found = re.search(r"http://[\d.]+:\d+", line)
            if found:
                url = found.group(0)
                break
        assert url, f"dlprov ui did not start (exit {ui.poll()})"
        remote = dlprov_cli("executions", "--endpoint", url, "--format", "json", env=env)
        assert remote.returncode == 0, remote.stderr
        (far,) = json.loads(remote.stdout)
        assert list(far) == list(run) and far["status"] == "KILLED" and far["tag"] == run["tag"]
        table = dlprov_cli("executions", "--endpoint", url, env=env)
        assert table.stdout.splitlines()[1] == local_table.stdout.splitlines()[1]  # the same header
        cells = [[c.strip() for c in out.stdout.splitlines()[3].split("|")] for out in (table, local_table)]
        assert cells[0][5] == cells[1][5]  # and times written alike (start_time)
        # the dashboard's console reads count(*) as count too
        body = json.dumps({"sql": "SELECT count(*) FROM task"}).encode()
        request = urllib.request.Request(url + "/v1/sql", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            assert json.load(answer)["columns"] == ["count"]
    finally:
        ui.terminate()
        ui.wait(timeout=30)


def test_a_store_made_before_run_names_gets_the_column(recorded, subprocess_env):
    from dlprov_otel.store import open_store

    old = open_store(recorded)
    old.query("ALTER TABLE dataflow_execution DROP COLUMN name")
    old.close()
    out = dlprov_cli("sql", "--store", str(recorded), "--format", "csv", "SELECT tag, name FROM dataflow_execution",
                     env=subprocess_env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["tag,name", "cli-run,"]
