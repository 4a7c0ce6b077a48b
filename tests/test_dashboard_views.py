"""The dashboard's views in a real headless Chromium against a real collector: chart controls
(zoom, log scale, smoothing, wall time), learning-rate markers, long runs, the lineage graph's
fit/zoom/pan, the provenance-column toggle, compare across runs of different lengths, "best"
by metric direction, filter expressions in the address, dark mode, the phone layout and model
downloads. Screenshots go to each test's tmp dir.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import dlprov_otel
from tests.collector_proc import CollectorProcess

pytest.register_assert_rewrite("tests.dashboard_browser")  # imported here before pytest_plugins loads it
from tests.dashboard_browser import WAIT_MS, get, row, shot  # noqa: E402
from tests.dashboard_training import DigitsRun  # noqa: E402

pytestmark = pytest.mark.collector
pytest_plugins = ["tests.dashboard_browser"]  # the browser, collector, pipeline and runs fixtures

BOXES = "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })"


def run_page(pg: Any, collector: CollectorProcess, run: DigitsRun, ref: str | None = None) -> None:
    """The execution page of ``run``, named by its tag or by ``ref`` (``latest``, a name, a prefix)."""
    from playwright.sync_api import expect

    pg.goto(f"{collector.url}/ui/#/executions/{quote(ref or run.tag, safe='')}")
    expect(pg.locator(".run-head [data-status]")).to_have_attribute("data-status", "FINISHED")
    expect(pg.locator(".run-title")).to_have_text(run.tag)


def intersect(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def drag(pg: Any, box: dict[str, float], x0: float, x1: float, y: float = 0.5) -> None:
    """Drag across ``box`` from fraction x0 to fraction x1 of its width."""
    pg.mouse.move(box["x"] + box["width"] * x0, box["y"] + box["height"] * y)
    pg.mouse.down()
    pg.mouse.move(box["x"] + box["width"] * (x0 + x1) / 2, box["y"] + box["height"] * y, steps=4)
    pg.mouse.move(box["x"] + box["width"] * x1, box["y"] + box["height"] * y, steps=4)
    pg.mouse.up()


# --- the execution page ------------------------------------------------------------------------
def test_learning_rate_markers_one_per_change_labels_never_overlap(collector: CollectorProcess, pipeline: Any,
                                                                    page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    run = DigitsRun(tmp_path / "steps", learning_rate=0.8, epochs=12, adapt_at=set(range(1, 12)) - {6}).start()
    for _ in range(6):
        run.epoch()
    run.adapt(run.lr, trigger="ReduceLROnPlateau")  # a "change" to the same rate: no marker
    for _ in range(6):
        run.epoch()
    run.finish()
    assert dlprov_otel.flush(30)
    run_page(page, collector, run)
    lr_chart = page.locator('[data-metric="learning_rate"]')
    expect(lr_chart.locator("[data-series=learning_rate] circle.pt")).to_have_count(12)
    markers = lr_chart.locator(".marker")
    expect(markers).to_have_count(10)  # ten changes; the eleventh adaptation kept the rate
    for card in page.locator(".chart-card[data-metric]").all():
        boxes = card.locator(".marker text").evaluate_all(BOXES)
        assert boxes, "no learning-rate label at all"
        overlapping = [(a, b) for a, b in itertools.combinations(boxes, 2) if intersect(a, b)]
        assert not overlapping, f"{card.get_attribute('data-metric')}: labels overlap: {overlapping}"
    # details on hover: the marker's title, and the chart's tooltip at its x
    assert "→ 0.1 at epoch 3" in markers.nth(2).locator("title").text_content()
    line = markers.nth(2).locator("line").bounding_box()
    page.mouse.move(line["x"] + line["width"] / 2, line["y"] + line["height"] * 0.6)
    expect(lr_chart.locator(".tip-marker")).to_contain_text("learning rate 0.2 → 0.1")
    shot(page, "lr-markers", tmp_path)


def test_chart_zoom_log_smoothing_and_wall_time(collector: CollectorProcess, runs: list[DigitsRun], page: Any,
                                                tmp_path: Path) -> None:
    from playwright.sync_api import expect

    run = runs[0]
    run_page(page, collector, run)
    loss = page.locator('[data-metric="loss"]')
    points = loss.locator("[data-series=loss] circle.pt")
    expect(points).to_have_count(4)
    svgs = page.locator(".chart-card[data-metric] svg.chart-svg")
    assert set(svgs.evaluate_all("els => els.map(e => e.dataset.x0 + ':' + e.dataset.x1)")) == {"0:3"}

    # zoom: drag across the loss chart; every chart follows, reset restores
    drag(page, loss.locator("rect.overlay").bounding_box(), 0.3, 0.9)
    expect(points).to_have_count(2)  # epochs 2 and 3
    domains = set(svgs.evaluate_all("els => els.map(e => e.dataset.x0 + ':' + e.dataset.x1)"))
    assert len(domains) == 1 and domains != {"0:3"}
    x0, x1 = (float(v) for v in domains.pop().split(":"))
    assert 0.8 < x0 < 1.0 and 2.6 < x1 < 2.8  # 30%..90% of 0..3
    shot(page, "zoomed", tmp_path)
    page.get_by_role("button", name="Reset zoom").click()
    expect(points).to_have_count(4)
    expect(page.get_by_role("button", name="Reset zoom")).to_be_hidden()

    # log scale: the same values, placed by their logarithm
    linear = [float(v) for v in points.evaluate_all("els => els.map(e => e.getAttribute('cy'))")]
    page.get_by_label("log scale").check()
    expect(loss.locator("svg.chart-svg")).to_have_attribute("data-log", "1")
    logged = [float(v) for v in points.evaluate_all("els => els.map(e => e.getAttribute('cy'))")]
    losses = [h["loss"] for h in run.history]
    assert logged != linear
    # on a log axis equal ratios are equal distances
    ratio = (logged[1] - logged[0]) / (logged[2] - logged[1])
    assert ratio == pytest.approx(math.log(losses[1] / losses[0]) / math.log(losses[2] / losses[1]), rel=0.05)
    page.get_by_label("log scale").uncheck()

    # smoothing: a smoothed line over the faint raw one; the dots keep the recorded values
    page.get_by_label("smoothing").fill("0.8")
    raw = loss.locator("[data-series=loss] path.raw")
    expect(raw).to_have_count(1)
    assert raw.get_attribute("d") != loss.locator("[data-series=loss] path.line").get_attribute("d")
    assert [float(v) for v in points.evaluate_all("els => els.map(e => e.dataset.y)")] == pytest.approx(losses)
    page.get_by_label("smoothing").fill("0")
    expect(raw).to_have_count(0)

    # wall time: x in seconds since the run started, increasing, within the run
    page.get_by_label("x axis").select_option("time")
    expect(loss.locator(".axis-label").first).to_contain_text("wall time")
    xs = [float(v) for v in points.evaluate_all("els => els.map(e => e.dataset.x)")]
    assert len(xs) == 4 and xs == sorted(xs) and xs[0] >= 0
    assert xs != [0.0, 1.0, 2.0, 3.0] and xs[-1] < 120
    shot(page, "wall-time", tmp_path)


def test_long_runs_draw_lines(collector: CollectorProcess, pipeline: Any, page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    run = DigitsRun(tmp_path / "long", learning_rate=0.05, epochs=150, batch_size=512).run()
    assert dlprov_otel.flush(60)
    run_page(page, collector, run)
    series = page.locator('[data-metric="loss"] [data-series=loss]')
    expect(series.locator("path.line")).to_have_count(1)
    expect(series.locator("circle.pt")).to_have_count(0)  # no faint dots
    d = series.locator("path.line").get_attribute("d")
    assert d.count("L") == len(run.history) - 1
    plot = page.locator('[data-metric="loss"] rect.overlay').bounding_box()
    assert series.locator("path.line").bounding_box()["width"] > 0.9 * plot["width"]
    # values still come on hover
    page.mouse.move(plot["x"] + plot["width"] * 0.5, plot["y"] + plot["height"] * 0.5)
    expect(page.locator('[data-metric="loss"] .tooltip')).to_contain_text("loss:")
    shot(page, "long-run", tmp_path)


def test_provenance_columns_behind_a_toggle(collector: CollectorProcess, runs: list[DigitsRun], page: Any,
                                            tmp_path: Path) -> None:
    from playwright.sync_api import expect

    run_page(page, collector, runs[0])
    head = page.locator(".section-body .tabs + .table-wrap thead th")
    expect(head.first).to_be_visible()
    doc = page.evaluate(f"fetch('/ui/api/executions/{quote(runs[0].tag, safe='')}').then(r => r.json())")
    otrain = doc["sets"]["otrainmodel"]
    ranks = [r[otrain["columns"].index("rank")] for r in otrain["rows"]]
    shown = head.all_text_contents()
    assert "loss" in shown and "producer_task_id" not in shown and "consumer_task_id" not in shown
    assert ("rank" in shown) == any(r is not None for r in ranks)
    page.locator("#show-internal").check()
    expect(head.filter(has_text="producer_task_id")).to_have_count(1)
    expect(head.filter(has_text="consumer_task_id")).to_have_count(1)
    expect(head.filter(has_text="rank")).to_have_count(1)
    shot(page, "provenance-columns", tmp_path)


def test_lineage_graph_fit_zoom_and_pan(collector: CollectorProcess, runs: list[DigitsRun], page: Any,
                                        tmp_path: Path) -> None:
    run_page(page, collector, runs[0])
    wrap = page.locator(".graph-wrap.pannable").first
    svg = wrap.locator("svg.graph-svg")
    view = lambda: [float(v) for v in svg.get_attribute("viewBox").split()]  # noqa: E731
    scale = float(svg.get_attribute("data-scale"))
    wrap.locator('button[data-zoom="in"]').click()
    assert float(svg.get_attribute("data-scale")) == pytest.approx(scale * 1.25, rel=1e-3)
    wrap.locator('button[data-zoom="out"]').click()
    wrap.locator('button[data-zoom="out"]').click()
    assert float(svg.get_attribute("data-scale")) == pytest.approx(scale * 0.8, rel=1e-3)
    # pan: dragging moves the view by the distance dragged, in graph units
    before, s = view(), float(svg.get_attribute("data-scale"))
    box = svg.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5 - 100, box["y"] + box["height"] * 0.5 - 30, steps=6)
    page.mouse.up()
    after = view()
    assert after[0] - before[0] == pytest.approx(100 / s, abs=1.5)
    assert after[1] - before[1] == pytest.approx(30 / s, abs=1.5)
    # fit: every node inside the visible box
    wrap.locator('button[data-zoom="fit"]').click()
    frame = svg.bounding_box()
    for left, top, right, bottom in svg.locator("g.node").evaluate_all(BOXES):
        assert frame["x"] - 1 <= left and right <= frame["x"] + frame["width"] + 1
        assert frame["y"] - 1 <= top and bottom <= frame["y"] + frame["height"] + 1
    shot(page, "lineage-fit", tmp_path)


def test_model_download_checks_the_digest(collector: CollectorProcess, pipeline: Any, page: Any,
                                          tmp_path: Path) -> None:
    from playwright.sync_api import expect

    run = DigitsRun(tmp_path / "model", epochs=2).run()
    assert dlprov_otel.flush(30)
    run_page(page, collector, run, "latest")  # the page, and so its download, of the newest run
    button = page.locator(f'tr[data-sha256="{run.model_sha256}"] a.download-model')
    with page.expect_download() as info:
        button.click()
    body = Path(info.value.path()).read_bytes()
    assert hashlib.sha256(body).hexdigest() == run.model_sha256 and body == run.model_path.read_bytes()
    assert info.value.suggested_filename == run.model_path.name

    api = f"{collector.url}/ui/api/executions/{quote(run.tag, safe='')}/models/"
    assert get(api + run.model_sha256)[0] == 200
    # only the digests this run recorded, never a path
    passwd = hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest()
    for bad in ["..%2F..%2F..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", passwd, "../../../etc/passwd",
                run.model_sha256 + "%2F..", "0" * 64]:
        status, answer = get(api + bad)
        assert status in (403, 404), (bad, status)
        assert b"root:" not in answer
    # a file changed since the run recorded it is refused, on the page too
    run.model_path.write_bytes(b"tampered")
    status, answer = get(api + run.model_sha256)
    assert status == 409 and b"changed since" in answer
    button.click()
    expect(page.locator(".error-box")).to_contain_text("changed since")
    shot(page, "model-refused", tmp_path)


# --- compare, list ---------------------------------------------------------------------------------
def test_compare_aligns_runs_of_different_lengths_and_knows_best(collector: CollectorProcess, pipeline: Any,
                                                                 page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    short = DigitsRun(tmp_path / "short", learning_rate=0.5, epochs=3).run()
    long = DigitsRun(tmp_path / "long", learning_rate=0.1, epochs=7, seed=2).run()
    assert dlprov_otel.flush(30)
    page.goto(f"{collector.url}/ui/#/compare?run={quote(short.tag, safe='')}&run={quote(long.tag, safe='')}")
    curves = page.locator('[data-compare-metric="loss"] g.series')
    expect(curves).to_have_count(2)
    expect(curves.nth(1).locator("circle.pt")).to_have_count(7)
    last_cx = lambda i: float(curves.nth(i).locator("circle.pt").last.get_attribute("cx"))  # noqa: E731
    assert last_cx(0) < last_cx(1) - 50  # by epoch: the short run ends at epoch 2 of 6
    # hovering past the short run's end says it ended rather than showing nothing
    page.locator('[data-compare-metric="loss"]').scroll_into_view_if_needed()
    plot = page.locator('[data-compare-metric="loss"] rect.overlay').bounding_box()
    page.mouse.move(plot["x"] + plot["width"] * 0.97, plot["y"] + plot["height"] * 0.5)
    expect(page.locator('[data-compare-metric="loss"] .tooltip')).to_contain_text("ends at 2")
    page.get_by_label("x axis").select_option("progress")
    expect(page.locator('[data-compare-metric="loss"] .axis-label').first).to_contain_text("% of the run")
    assert last_cx(0) == pytest.approx(last_cx(1), abs=0.5)  # both end at 100%
    shot(page, "compare-aligned", tmp_path)

    # best: lowest loss, highest accuracy
    def best_of(label: str) -> int:
        cells = page.locator("#compare-table tr", has=page.locator("th", has_text=label)).first.locator("td")
        flags = cells.evaluate_all("els => els.map(e => e.classList.contains('best'))")
        assert flags.count(True) == 1, (label, flags)
        return flags.index(True)

    finals = [{**r.history[-1], **{f"test {k}": v for k, v in r.test.items()}} for r in (short, long)]
    checked = 0
    for label, key, pick in [("final loss", "loss", min), ("final accuracy", "accuracy", max),
                             ("final val_loss", "val_loss", min), ("test loss", "test loss", min),
                             ("test accuracy", "test accuracy", max)]:
        if finals[0][key] != finals[1][key]:
            assert best_of(label) == pick((0, 1), key=lambda i, k=key: finals[i][k]), label
            checked += 1
    assert checked >= 3


def test_metric_goal_is_a_pure_function(collector: CollectorProcess, page: Any) -> None:
    page.goto(collector.url + "/ui/")
    names = {"loss": "min", "val_loss": "min", "final val_mae": "min", "mse": "min", "rmse": "min",
             "mean_squared_error": "min", "perplexity": "min", "test error": "min", "elapsed_time": "min",
             "accuracy": "max", "test accuracy": "max", "val_acc": "max", "auc": "max", "f1": "max",
             "precision": "max", "recall": "max", "top_5_accuracy": "max",
             "learning_rate": None, "epoch": None, "batch_size": None}
    got = page.evaluate("async (names) => { const m = await import('/ui/js/metrics.js');"
                        " return Object.fromEntries(names.map((n) => [n, m.metricGoal(n)])); }", list(names))
    assert got == names
    best = page.evaluate("async () => { const m = await import('/ui/js/metrics.js');"
                         " return [m.bestIndex('val_loss', [0.4, 0.2, null, 0.3]), m.bestIndex('auc', [0.7, 0.9, 0.8]),"
                         " m.bestIndex('learning_rate', [1, 2])]; }")
    assert best == [1, 1, None]


def test_filter_expressions_live_in_the_address(collector: CollectorProcess, runs: list[DigitsRun], page: Any,
                                                tmp_path: Path) -> None:
    from playwright.sync_api import expect

    fast, slow = runs  # learning rates 0.5 and 0.05
    mine = {fast.tag, slow.tag}
    shown = lambda: {t for t in page.locator("tbody tr[data-tag]").evaluate_all(  # noqa: E731
        "els => els.map(e => e.dataset.tag)") if t in mine}
    page.goto(collector.url + "/ui/")
    expect(row(page, slow.tag)).to_be_visible()
    search = page.get_by_label("filter executions")
    search.fill("lr < 0.1")
    expect(row(page, fast.tag)).to_have_count(0)
    assert shown() == {slow.tag}
    assert "q=lr" in page.url and "0.1" in page.url
    page.reload()
    expect(page.get_by_label("filter executions")).to_have_value("lr < 0.1")
    expect(row(page, slow.tag)).to_be_visible()
    assert shown() == {slow.tag}
    # a test metric between the two runs' keeps only the better one
    lo, hi = sorted([fast, slow], key=lambda r: r.test["accuracy"])
    assert lo.test["accuracy"] < hi.test["accuracy"]
    cut = (lo.test["accuracy"] + hi.test["accuracy"]) / 2
    search.fill(f"test.accuracy>{cut:.6f}")
    expect(row(page, lo.tag)).to_have_count(0)
    assert shown() == {hi.tag}
    search.fill(f"accuracy>=0 optimizer_name=sgd {hi.tag[-6:]}")  # expressions and words together
    expect(row(page, lo.tag)).to_have_count(0)
    assert shown() == {hi.tag}
    search.fill("nosuchfield>1")
    expect(page.locator("#filter-hint")).to_contain_text("nosuchfield")
    assert shown() == set()
    shot(page, "filter", tmp_path)


# --- the whole app -----------------------------------------------------------------------------------
def luminance(css: str) -> float:
    """Relative brightness 0..1 of an opaque CSS colour (``rgb(r, g, b)``)."""
    parts = [float(v) for v in css[css.index("(") + 1 : css.index(")")].split(",")]
    assert len(parts) == 3 or parts[3] == 1, f"not an opaque colour: {css}"
    r, g, b = parts[:3]
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_dark_mode_follows_the_system(collector: CollectorProcess, runs: list[DigitsRun], browser: Any,
                                      scheme: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
    pg = context.new_page()
    pg.set_default_timeout(WAIT_MS)
    pg.goto(f"{collector.url}/ui/#/executions/{quote(runs[0].tag, safe='')}")
    expect(pg.locator(".chart-card").first).to_be_visible()
    body = pg.evaluate("getComputedStyle(document.documentElement).backgroundColor")  # the page's own
    card = pg.evaluate("getComputedStyle(document.querySelector('.card')).backgroundColor")
    ink = pg.evaluate("getComputedStyle(document.querySelector('main h1')).color")
    if scheme == "dark":
        assert luminance(body) < 0.15 and luminance(card) < 0.2 and luminance(ink) > 0.7, (body, card, ink)
    else:
        assert luminance(body) > 0.9 and luminance(card) > 0.95 and luminance(ink) < 0.2, (body, card, ink)
    shot(pg, f"execution-{scheme}", tmp_path)
    context.close()


def test_phone_width_layout(collector: CollectorProcess, runs: list[DigitsRun], browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    pg = context.new_page()
    pg.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    tag = quote(runs[0].tag, safe="")
    pages = {
        "executions": ("#/", f'tr[data-tag="{runs[0].tag}"]'),
        "execution": (f"#/executions/{tag}", ".chart-card"),
        "compare": (f"#/compare?run={tag}&run={quote(runs[1].tag, safe='')}", "#compare-table"),
        "dataflow": ("#/dataflows/mnist", ".graph-svg"),
        "lineage": ("#/lineage", "#drop-zone"),
        "query": ("#/query", "textarea"),
    }
    for name, (hash_, ready) in pages.items():
        pg.goto(f"{collector.url}/ui/{hash_}")
        expect(pg.locator(ready).first).to_be_visible()
        widths = pg.evaluate("[document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[2] and widths[1] <= widths[2], f"{name}: the page is wider than the phone: {widths}"
        shot(pg, f"phone-{name}", tmp_path)
    context.close()
    assert not errors, errors


def test_lineage_of_a_dropped_or_pasted_file(collector: CollectorProcess, pipeline: Any, page: Any,
                                             tmp_path: Path) -> None:
    from playwright.sync_api import expect

    run = DigitsRun(tmp_path / "made", learning_rate=0.3, epochs=2).run()
    assert dlprov_otel.flush(30)
    page.goto(collector.url + "/ui/#/lineage")
    # the file is digested in the browser (crypto.subtle here; the fallback agrees with it)
    page.locator('#drop-zone ~ input[type="file"]').set_input_files(str(run.model_path))
    card = page.locator(f'.lineage-run[data-run="{run.tag}"]')
    expect(card).to_be_visible()
    expect(page.get_by_label("digest")).to_have_value(run.model_sha256)
    assert f"digest={run.model_sha256}" in page.url
    expect(card.locator('li[data-role="output"]')).to_contain_text("otrainedmodel")
    expect(card).to_contain_text("learning_rate")
    expect(card).to_contain_text(str(run.test["accuracy"])[:5])
    expect(card.locator("table.recipe tr[data-recipe='python.version']")).to_have_count(1)
    expect(card.locator("details.packages")).to_contain_text("imported packages")
    shot(page, "lineage-view", tmp_path)
    with page.expect_download() as info:  # the PROV sub-graph of this lineage
        page.locator('.prov-lineage a[data-prov="json"]').click()
    prov_doc = json.loads(Path(info.value.path()).read_text())
    assert prov_doc.get("entity") and prov_doc.get("activity")
    # a reload keeps the digest and the answer
    page.reload()
    expect(page.locator(f'.lineage-run[data-run="{run.tag}"]')).to_be_visible()

    # a dropped file that no run made: said so, with its digest
    content = b"not a model of any run " * 1000
    page.evaluate("""(bytes) => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(bytes)], "stranger.bin"));
        document.getElementById("drop-zone").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true }));
    }""", list(content))
    missing = page.locator("#lineage-missing")
    expect(missing).to_contain_text(hashlib.sha256(content).hexdigest())
    expect(missing).to_contain_text("stranger.bin")
    # a pasted digest, with its prefix and in capitals
    page.get_by_label("digest").fill("sha256:" + run.model_sha256.upper())
    page.get_by_role("button", name="Look up").click()
    expect(page.locator(f'.lineage-run[data-run="{run.tag}"]')).to_be_visible()
    page.get_by_label("digest").fill("not-a-digest")
    page.get_by_role("button", name="Look up").click()
    expect(page.locator("#digest-status")).to_contain_text("is not a sha256")
    same = page.evaluate("""async () => {
        const { Sha256 } = await import('/ui/js/sha256.js');
        const out = [];
        for (const n of [0, 1, 55, 56, 64, 1000, 70001]) {
            const data = new Uint8Array(n).map((_, i) => (i * 131 + 7) & 255);
            const ref = [...new Uint8Array(await crypto.subtle.digest('SHA-256', data))]
                .map((b) => b.toString(16).padStart(2, '0')).join('');
            out.push(new Sha256().update(data.subarray(0, n >> 1)).update(data.subarray(n >> 1)).hex() === ref);
        }
        return out;
    }""")
    assert same == [True] * 7
