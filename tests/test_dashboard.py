"""The web dashboard in a real headless Chromium (Playwright), against a real collector process
fed over OTLP by real (small, numpy) trainings recorded with the DfAnalyzer API.

Screenshots of every page go to tests/artifacts/screenshots/; the finished execution page is
also saved as docs/dashboard-execution.png for the README (when it is missing, or with
DLPROV_UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import dlprov_otel
from dlprov_otel import client
from tests.collector_proc import CollectorProcess, start_collector

pytest.register_assert_rewrite("tests.dashboard_browser")  # imported here before pytest_plugins loads it
from tests.dashboard_browser import ROOT, WAIT_MS, fmt_num, get, row, shot  # noqa: E402
from tests.dashboard_training import DigitsRun  # noqa: E402

pytestmark = pytest.mark.collector
pytest_plugins = ["tests.dashboard_browser"]  # the browser, collector, pipeline and runs fixtures

DOCS_SHOT = ROOT / "docs" / "dashboard-execution.png"


def run_child(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**env, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


# --- tests ----------------------------------------------------------------------------------------
def test_live_training_on_the_execution_page(collector: CollectorProcess, pipeline: Any, page: Any,
                                             tmp_path: Path) -> None:
    from playwright.sync_api import expect

    run = DigitsRun(tmp_path / "live", learning_rate=0.5, epochs=5, adapt_at=2).start()
    run.epoch()
    run.epoch()
    assert dlprov_otel.flush(30)

    # the executions list shows the run, running, with its two epochs
    page.goto(collector.url + "/ui/")
    expect(row(page, run.tag)).to_have_attribute("data-status", "RUNNING")
    expect(row(page, run.tag).locator("td").nth(5)).to_contain_text("2")
    shot(page, "executions")

    # its page: one point per epoch, the values the training computed
    row(page, run.tag).locator("a.run-link").click()
    loss_points = page.locator('[data-metric="loss"] [data-series="loss"] circle.pt')
    expect(loss_points).to_have_count(2)
    plotted = [float(v) for v in loss_points.evaluate_all("els => els.map(e => e.dataset.y)")]
    assert plotted == pytest.approx([h["loss"] for h in run.history], rel=1e-9)
    expect(page.locator('[data-metric="loss"] [data-series="val_loss"] circle.pt')).to_have_count(2)
    shot(page, "execution-running")

    # a new epoch (after a learning-rate step) lands while the page is open
    run.epoch()
    assert dlprov_otel.flush(30)
    expect(loss_points).to_have_count(3)
    expect(page.locator('[data-metric="learning_rate"] .marker')).to_have_count(1)
    lr = page.locator('[data-metric="learning_rate"] [data-series="learning_rate"] circle.pt')
    expect(lr).to_have_count(3)
    assert [float(v) for v in lr.evaluate_all("els => els.map(e => e.dataset.y)")] == [0.5, 0.5, 0.25]
    expect(page.locator("#kpi-epochs")).to_have_text("3 / 5")

    run.epoch()
    run.epoch()
    test = run.finish()
    assert dlprov_otel.flush(30)
    expect(page.locator(".run-head [data-status]")).to_have_attribute("data-status", "FINISHED")
    expect(loss_points).to_have_count(5)
    expect(page.locator(".kpi.accent .kpi-value")).to_have_text(fmt_num(test["accuracy"]))
    # the timeline: load, split, train, the adaptation, test
    expect(page.locator(".timeline-svg .task-row")).to_have_count(5)

    # the lineage leads from the input dataset to the test metrics
    edges = page.locator(".graph-svg path.edge").evaluate_all("els => els.map(e => [e.dataset.from, e.dataset.to])")
    nodes = page.locator(".graph-svg g.node").evaluate_all("els => els.map(e => e.dataset.node)")
    start = next(n for n in nodes if n.startswith("d:iinputdataset:"))
    goal = next(n for n in nodes if n.startswith("d:otestmodel:"))
    reach, frontier = {start}, [start]
    while frontier:
        frontier = [b for a, b in edges if a in frontier and b not in reach]
        reach.update(frontier)
    assert goal in reach, f"no lineage path from {start} to {goal}: {edges}"
    assert "t:3" in reach  # through the training task

    page.mouse.move(10, 10)
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "execution")
    if os.environ.get("DLPROV_UPDATE_SCREENSHOTS") or not DOCS_SHOT.exists():
        # the README's picture: written when missing or asked for, so a test run leaves git clean
        DOCS_SHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_SHOT), clip={"x": 0, "y": 0, "width": 1440, "height": 1400}, full_page=True)

    # PROV-JSON, made by the PROV export for this execution
    with page.expect_download() as info:
        page.locator('a[data-prov="json"]').click()
    doc = json.loads(Path(info.value.path()).read_text())
    assert doc.get("activity") and doc.get("entity")
    literal = [e["dlprov:loss"] for e in doc["entity"].values() if isinstance(e, dict) and "dlprov:loss" in e]
    losses = [float(v["$"] if isinstance(v, dict) else v) for v in literal]
    assert any(v == pytest.approx(h["loss"]) for v in losses for h in run.history[-1:])


def test_compare_two_runs(collector: CollectorProcess, runs: list[DigitsRun], page: Any) -> None:
    from playwright.sync_api import expect

    page.goto(collector.url + "/ui/")
    for r in runs:
        expect(row(page, r.tag)).to_have_attribute("data-status", "FINISHED")
        row(page, r.tag).locator('input[type="checkbox"]').check()
    page.get_by_role("button", name="Compare 2 selected").click()
    table = page.locator("#compare-table table")
    expect(table.locator("thead th")).to_have_count(3)
    expect(table.locator("tr.differs th")).to_have_text(["learning_rate"])
    curves = page.locator('[data-compare-metric="loss"] g.series')
    expect(curves).to_have_count(2)
    for i, r in enumerate(runs):
        points = curves.nth(i).locator("circle.pt")
        expect(points).to_have_count(len(r.history))
        assert [float(v) for v in points.evaluate_all("els => els.map(e => e.dataset.y)")] == pytest.approx(
            [h["loss"] for h in r.history], rel=1e-9)
    expect(page.locator(".scatter-pt")).to_have_count(2)
    shot(page, "compare")


def test_list_filters_and_sorts(collector: CollectorProcess, runs: list[DigitsRun], page: Any,
                                tmp_path: Path) -> None:
    from playwright.sync_api import expect

    broken = DigitsRun(tmp_path / "broken", learning_rate=5.0, epochs=3).start()
    broken.epoch()
    broken.fail(FloatingPointError("loss diverged"))
    assert dlprov_otel.flush(30)
    page.goto(collector.url + "/ui/")
    expect(row(page, broken.tag)).to_have_attribute("data-status", "FAILED")
    page.get_by_label("status").select_option("failed")
    expect(page.locator("tbody tr[data-tag]")).to_have_count(1)
    expect(page.locator("tbody tr[data-tag]")).to_have_attribute("data-tag", broken.tag)
    page.get_by_label("status").select_option("")
    page.get_by_label("filter executions").fill(runs[1].tag[-9:])  # the end of one tag
    expect(page.locator("tbody tr[data-tag]")).to_have_count(1)
    page.get_by_label("filter executions").fill("")
    # sorted by test accuracy, best first: the two finished runs in that order
    page.locator("th", has_text="Test acc.").click()
    tags = page.locator("tbody tr[data-tag]").evaluate_all("els => els.map(e => e.dataset.tag)")
    ranked = sorted(runs, key=lambda r: -r.test["accuracy"])
    assert [t for t in tags if t in {r.tag for r in runs}] == [r.tag for r in ranked]
    row(page, broken.tag).locator("a.run-link").click()
    expect(page.locator(".error-box")).to_contain_text("loss diverged")
    shot(page, "execution-failed")


def test_sql_console(collector: CollectorProcess, runs: list[DigitsRun], page: Any) -> None:
    from playwright.sync_api import expect

    columns, rows = client.query(collector.url, 'SET SCHEMA "mnist"; SELECT * FROM otrainmodel')
    assert len(rows) >= sum(len(r.history) for r in runs)
    page.goto(collector.url + "/ui/#/query")
    page.locator('button[data-example="epochs"]').click()
    expect(page.locator("#sql-status")).to_contain_text(f"{len(rows)} rows")
    expect(page.locator("#sql-result tbody tr")).to_have_count(len(rows))
    expect(page.locator("#sql-result thead th")).to_have_text(columns)
    shot(page, "query")

    with page.expect_download() as info:
        page.locator("#csv").click()
    with open(info.value.path(), newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == columns and len(table) == len(rows) + 1
    assert {r[columns.index("execution_tag")] for r in table[1:]} >= {r.tag for r in runs}

    page.locator("textarea").fill('DROP TABLE "mnist".otrainmodel;')
    page.locator("#run-sql").click()
    expect(page.locator("#sql-error")).to_contain_text("Refused")
    expect(page.locator("#sql-error")).to_contain_text("DROP")
    shot(page, "query-refused")
    # the table is still there, with its rows
    assert client.query(collector.url, 'SELECT COUNT(*) FROM "mnist".otrainmodel')[1][0][0] >= len(rows)


def test_dataflow_graph(collector: CollectorProcess, runs: list[DigitsRun], page: Any) -> None:
    from playwright.sync_api import expect

    page.goto(collector.url + "/ui/#/dataflows")
    expect(page.locator('a[data-dataflow="mnist"]')).to_contain_text("loaddata → splitdata → trainmodel")
    shot(page, "dataflows")
    page.locator('a[data-dataflow="mnist"]').click()
    expect(page.locator(".graph-svg g.node.transformation")).to_have_count(5)
    expect(page.locator(".graph-svg g.node.set")).to_have_count(11)
    # every input and output of every transformation is an edge
    expect(page.locator(".graph-svg path.edge")).to_have_count(16)
    expect(page.locator('[data-node="s:otrainmodel"] .attr')).to_contain_text(["timestamp", "elapsed_time", "loss"])
    shot(page, "dataflow")
    with page.expect_download() as info:  # the prospective PROV document, with the token if one is set
        page.locator('a[data-prov="json"]').click()
    assert "prefix" in json.loads(Path(info.value.path()).read_text())


def test_killed_run_is_marked(collector: CollectorProcess, page: Any, subprocess_env: dict[str, str]) -> None:
    from playwright.sync_api import expect

    child = run_child(["-m", "tests.dashboard_training", "--endpoint", collector.url, "--kill"], subprocess_env)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    tag = child.stdout.strip().splitlines()[-1]
    page.goto(collector.url + "/ui/")
    expect(row(page, tag)).to_have_attribute("data-status", "KILLED")
    row(page, tag).locator("a.run-link").click()
    expect(page.locator(".warn-box")).to_contain_text("no span arrived")


def test_token_empty_state_and_unreachable_collector(browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    col = start_collector(tmp_path / "collector", token="dashboard-secret")
    try:
        assert get(col.url + "/ui/api/executions")[0] == 401  # data needs the token
        status, body = get(col.url + "/ui/")  # the app itself does not
        assert status == 200 and b'type="module"' in body
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        pg = context.new_page()
        pg.set_default_timeout(WAIT_MS)
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.goto(col.url + "/ui/")
        expect(pg.locator("#banner")).to_contain_text("requires a token")
        pg.locator('#banner input[type="password"]').fill("dashboard-secret")
        pg.locator("#banner button").click()
        expect(pg.locator("#no-runs")).to_contain_text("No runs yet")
        expect(pg.locator("#banner")).to_be_hidden()
        shot(pg, "executions-empty")
        pg.goto(col.url + "/ui/#/executions/no-such-run")
        expect(pg.locator("main")).to_contain_text("No such execution")
        pg.goto(col.url + "/ui/")
        expect(pg.locator("#no-runs")).to_be_visible()
        assert col.stop() == 0
        expect(pg.locator("#banner")).to_contain_text("Collector unreachable")
        expect(pg.locator("#conn")).to_contain_text("unreachable")
        shot(pg, "collector-unreachable")
        context.close()
        assert not errors, errors
    finally:
        col.stop()


def test_dlprov_ui_serves_a_local_store(browser: Any, tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    from playwright.sync_api import expect

    store = tmp_path / "store"
    child = run_child(["-m", "tests.dashboard_training", "--store", str(store), "--epochs", "2",
                       "--out", str(tmp_path)], subprocess_env)
    assert child.returncode == 0, child.stderr[-2000:]
    tag = child.stdout.strip().splitlines()[-1]
    ui, url = start_ui(store, subprocess_env)
    try:
        status, body = get(url + "api/executions")
        assert status == 200
        items = json.loads(body)["executions"]
        assert [(e["tag"], e["status"], e["epochs"]) for e in items] == [(tag, "FINISHED", 2)]
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        pg = context.new_page()
        pg.goto(url)
        expect(row(pg, tag)).to_have_attribute("data-status", "FINISHED", timeout=WAIT_MS)
        context.close()
    finally:
        stop_ui(ui)


def start_ui(store: Path, subprocess_env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """``dlprov ui`` (as ``python -m dlprov_otel.ui.cli``) on a free port; returns it and its address."""
    env = {**subprocess_env, "PYTHONPATH": str(ROOT)}
    env.pop("DLPROV_TOKEN", None)
    ui = subprocess.Popen([sys.executable, "-m", "dlprov_otel.ui.cli", "--store", str(store), "--port", "0"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    url = None
    assert ui.stdout is not None
    lines = []
    watchdog = threading.Timer(300, ui.kill)  # generous: a loaded machine opens the store slowly
    watchdog.start()
    try:
        while url is None:  # the announcement comes once it listens; EOF if it exits first
            line = ui.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("DLProv dashboard: "):
                url = line.split()[2]
    finally:
        watchdog.cancel()
    if not (url and url.endswith("/ui/")):
        stop_ui(ui)
        pytest.fail(f"dlprov ui did not announce its address (exit {ui.poll()}):\n{''.join(lines)[-2000:]}")
    return ui, url


def stop_ui(ui: subprocess.Popen) -> None:
    ui.send_signal(signal.SIGTERM)
    try:
        assert ui.wait(60) == 0
    finally:
        if ui.poll() is None:
            ui.kill()
            ui.wait(10)


def test_dlprov_ui_opens_no_ingest_endpoint(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    """`dlprov ui` serves the dashboard and read-only queries; spans sent to it are refused."""
    from dlprov_otel.store import open_store

    open_store(tmp_path / "store").close()  # an empty store: `dlprov ui` reads, it makes none
    ui, url = start_ui(tmp_path / "store", subprocess_env)
    base = url[: -len("/ui/")]
    try:
        req = urllib.request.Request(base + "/v1/traces", data=b"\x00", method="POST",
                                     headers={"Content-Type": "application/x-protobuf"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=30)
        with err.value:
            assert err.value.code == 404
            assert "no such endpoint /v1/traces" in json.loads(err.value.read())["error"]
        assert get(base + "/v1/traces")[0] == 404
        assert get(base + "/health")[0] == 200  # the dashboard's connection light
        assert get(base + "/ui/")[0] == 200
        columns, rows = client.query(base, "SELECT 1 AS one")  # the SQL console's endpoint
        assert columns == ["one"] and rows == [(1,)]
        with pytest.raises(dlprov_otel.QueryError, match="403"):
            client.query(base, "DROP TABLE sys.task")
    finally:
        stop_ui(ui)


def test_api_answers_and_errors(collector: CollectorProcess, runs: list[DigitsRun]) -> None:
    from urllib.parse import quote

    base = collector.url + "/ui/api/"
    status, body = get(base + "executions/" + quote(runs[0].tag, safe=""))
    doc = json.loads(body)
    assert status == 200 and doc["status"] == "FINISHED"
    assert [r[doc["sets"]["otrainmodel"]["columns"].index("loss")] for r in doc["sets"]["otrainmodel"]["rows"]] == \
        pytest.approx([h["loss"] for h in runs[0].history], rel=1e-9)
    assert get(base + "executions/no%20such%20run")[0] == 404
    assert get(base + "executions/" + quote(runs[0].tag, safe="") + "/prov.docx")[0] == 404
    assert get(base + "dataflows/mnist?version=latest")[0] == 400
    assert get(base + "dataflows/mnist?version=99")[0] == 404
    assert get(base + "nothing")[0] == 404
    assert get(collector.url + "/ui/../server.py")[0] == 404
    status, body = get(collector.url + "/ui/js/app.js")
    assert status == 200 and b"import" in body
    status, svg = get(base + "dataflows/mnist/prov.svg")
    assert status == 200 and b"<svg" in svg
    # the SQL console's examples come from the server, and they run
    status, body = get(base + "queries?dataflow=mnist")
    examples = {q["label"]: q["sql"] for q in json.loads(body)}
    assert status == 200 and {"dataflows", "executions", "epochs", "test metrics"} <= set(examples)
    columns, rows = client.query(collector.url, examples["epochs"])
    assert "loss" in columns and len(rows) >= len(runs[0].history)
    assert get(base + "queries?dataflow=" + quote("no such flow", safe=""))[0] == 400


def test_killed_needs_quiet_and_a_dead_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt
    import socket

    from dlprov_otel.ui.data import KILLED, effective_status

    monkeypatch.setenv("DLPROV_UI_KILLED_AFTER", "30")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=5)
    here = socket.gethostname()
    dead = [{"pid": gone.pid, "host_name": here, "started_at": started}]
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    alive = [{"pid": os.getpid(), "host_name": here, "started_at": now}]
    elsewhere = [{"pid": gone.pid, "host_name": here + "-other", "started_at": started}]
    assert effective_status("RUNNING", 60.0, dead) == KILLED
    assert effective_status("RUNNING", 10.0, dead) == "RUNNING"  # not quiet long enough
    assert effective_status("RUNNING", 60.0, alive) == "RUNNING"
    assert effective_status("RUNNING", 60.0, elsewhere) == "RUNNING"  # cannot look on another host
    assert effective_status("FINISHED", 600.0, dead) == "FINISHED"
    # a pid taken by a process that started after the run is not the run's process
    late = [{"pid": os.getpid(), "host_name": here, "started_at": now - dt.timedelta(days=30)}]
    assert effective_status("RUNNING", 60.0, late) == KILLED
