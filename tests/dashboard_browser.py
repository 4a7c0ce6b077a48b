"""The dashboard tests' browser and collector: a real headless Chromium (Playwright), a real
collector process fed over OTLP by this process's pipeline, two finished trainings, and
helpers to look at pages (screenshots, table rows, plain HTTP GETs)."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dlprov_otel
from tests.collector_proc import CollectorProcess, start_collector
from tests.dashboard_training import DigitsRun

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "tests" / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("DLPROV_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
KILLED_AFTER = "2"  # seconds without spans before a RUNNING run whose process is gone is "killed"
WAIT_MS = 15_000  # the pages poll every 1.5-2 s


def fmt_num(v: float) -> str:
    """The dashboard's number format (JavaScript: String(Number(v.toPrecision(4))))."""
    text = repr(float(f"{v:.4g}"))
    return text[:-2] if text.endswith(".0") else text


# --- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright for Python is missing: pip install playwright (its driver; no browser download)")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (or set DLPROV_CHROMIUM)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DLPROV_UI_KILLED_AFTER", KILLED_AFTER)  # read by the collector process
        col = start_collector(tmp_path_factory.mktemp("dashboard"))
    yield col
    assert col.stop() == 0, col.log_tail()


@pytest.fixture(scope="module")
def pipeline(collector: CollectorProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """This process's provenance pipeline, exporting OTLP to the collector."""
    spool = tmp_path_factory.mktemp("spool")
    tel = dlprov_otel.configure(endpoint=collector.url, schedule_delay=0.05, spool_dir=spool)
    yield tel
    dlprov_otel.shutdown()


@pytest.fixture(scope="module")
def runs(pipeline: Any, tmp_path_factory: pytest.TempPathFactory) -> list[DigitsRun]:
    """Two finished trainings that differ in their learning rate."""
    out = tmp_path_factory.mktemp("runs")
    done = [DigitsRun(out / "fast", learning_rate=0.5, epochs=4).run(),
            DigitsRun(out / "slow", learning_rate=0.05, epochs=4, seed=1).run()]
    assert dlprov_otel.flush(30)
    return done


def shot(pg: Any, name: str, where: Path | None = None, **kwargs: Any) -> Path:
    """A full-page screenshot, into ``where`` (a test's tmp dir) or tests/artifacts/screenshots/."""
    path = (where or SHOTS) / f"{name}.png"
    pg.screenshot(path=str(path), full_page=True, **kwargs)
    return path


def row(pg: Any, tag: str) -> Any:
    return pg.locator(f'tr[data-tag="{tag}"]')


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


