// Compare runs side by side: hyperparameters against final metrics (a table and a scatter
// plot) and their per-epoch curves overlaid, aligned by epoch, by percent of each run (runs of
// different lengths end together) or by wall time. Runs are named in the address: #/compare?run=A&run=B.

import { api } from "../api.js";
import { lineChart, PALETTE, scatterChart } from "../charts.js";
import { chartControls, chartOptions, newView } from "../chartview.js";
import { alignX, metricGoal } from "../metrics.js";
import { cell, clear, executionHref, fmtDuration, fmtNum, fmtTime, h, NOT_METRICS, parseTime, provenanceColumns, rowsOf,
  statusBadge } from "../util.js";

const SKIP_HP = new Set(["optimizer_config", "model_architecture", "learning_rate_schedule"]);

function summarize(doc) {
  const hpRow = rowsOf(doc.sets.itrainmodel)[0] || {};
  const hpProvenance = provenanceColumns(doc.sets.itrainmodel);
  const hp = Object.fromEntries(Object.entries(hpRow).filter(([k, v]) => !SKIP_HP.has(k) && !hpProvenance.has(k)
    && v !== null && String(v).length <= 120));
  const epochs = rowsOf(doc.sets.otrainmodel);
  const last = epochs[epochs.length - 1] || {};
  const test = rowsOf(doc.sets.otestmodel).slice(-1)[0] || {};
  const finals = {};
  const set = doc.sets.otrainmodel;
  if (set) {
    set.columns.forEach((c, i) => {
      if (set.numeric[i] && !set.provenance[i] && !NOT_METRICS.has(c) && typeof last[c] === "number") {
        finals[`final ${c}`] = last[c];
      }
    });
  }
  const testProvenance = provenanceColumns(doc.sets.otestmodel);
  for (const [k, v] of Object.entries(test)) {
    if (typeof v === "number" && !testProvenance.has(k) && !NOT_METRICS.has(k)) finals[`test ${k}`] = v;
  }
  return { hp, finals, epochs, set };
}


export async function render(main, { query, ctx }) {
  const runs = query.getAll("run");
  const head = h("div", { class: "page-head" }, h("div", {}, h("h1", { text: "Compare runs" }),
    h("span", { class: "subtle", text: runs.length ? `${runs.length} runs` : "pick two or more runs" })));
  const picker = h("section", { class: "card" });
  const content = h("div");
  main.append(head, picker, content);

  // the picker: every run, the compared ones ticked
  const chosen = new Set(runs);
  const applyBtn = h("button", { class: "btn primary", text: "Compare", onclick: () => {
    location.hash = `#/compare?${[...chosen].map((t) => `run=${encodeURIComponent(t)}`).join("&")}`;
  } });
  api.executions().then((doc) => {
    const items = doc.executions;
    const list = items.length ? h("div", { class: "run-picker" }, items.map((e) => {
      const box = h("input", { type: "checkbox", checked: chosen.has(e.tag) });
      box.addEventListener("change", () => { if (box.checked) chosen.add(e.tag); else chosen.delete(e.tag); });
      return h("label", { class: "pick-run" }, box, statusBadge(e.status), h("span", { class: "mono", text: e.tag }),
        h("span", { class: "subtle small", text: fmtTime(e.start_time) }));
    })) : h("p", { class: "empty-inline", text: "No runs yet." });
    if (runs.length >= 2) {
      picker.replaceChildren(h("details", {}, h("summary", { text: `Change the runs (${items.length} available)` }),
        list, h("div", { class: "picker-actions" }, applyBtn)));
    } else {
      picker.replaceChildren(h("div", { class: "card-head" }, h("h2", { text: "Runs" }), applyBtn), list);
    }
  }).catch(() => {});

  if (runs.length < 2) {
    content.append(h("div", { class: "empty card" }, h("h2", { text: "Pick the runs to compare" }),
      h("p", { text: "Tick two or more runs above (or in the executions list) and press Compare." })));
    return;
  }
  const color = new Map(runs.map((t, i) => [t, PALETTE[i % PALETTE.length]]));
  let xSel = null, ySel = null;
  const view = newView(query.get("x") || "epoch");
  const controls = chartControls(view, () => drawCurves(), ["epoch", "progress", "time"]);
  const curvesBox = h("div");
  let drawCurves = () => {};
  let sig = "";
  let docs = [];

  function draw() {
    const sums = docs.map(summarize);
    const hpKeys = [...new Set(sums.flatMap((x) => Object.keys(x.hp)))];
    const finalKeys = [...new Set(sums.flatMap((x) => Object.keys(x.finals)))];
    const differs = (k) => new Set(sums.map((x) => JSON.stringify(x.hp[k] ?? null))).size > 1;
    clear(content);
    content.append(h("div", { class: "run-chips" }, h("span", { class: "subtle small", text: "Runs:" }), docs.map((d) => h("a", { class: "run-chip", href: executionHref(d.tag) },
      h("span", { class: "swatch", style: { background: color.get(d.tag), borderColor: color.get(d.tag) } }),
      h("span", { class: "mono", text: d.tag }), statusBadge(d.status)))));

    // table
    const bestOf = (k) => {
      const dir = metricGoal(k);
      const vals = sums.map((x) => x.finals[k]).filter((v) => typeof v === "number");
      if (!dir || vals.length < 2) return null;
      return dir === "min" ? Math.min(...vals) : Math.max(...vals);
    };
    const rowsHtml = [
      ["status", docs.map((d) => statusBadge(d.status)), false],
      ["started", docs.map((d) => fmtTime(d.start_time)), false],
      ["duration", docs.map((d) => fmtDuration(d.duration_s)), false],
      ["epochs", sums.map((x) => String(x.epochs.length)), false],
    ].map(([k, cells]) => h("tr", {}, h("th", { text: k }), cells.map((c) => h("td", {}, c))));
    const hpRows = hpKeys.map((k) => h("tr", { class: differs(k) ? "differs" : "", title: differs(k) ? "differs between the runs" : "" },
      h("th", { text: k }), sums.map((x) => h("td", { class: typeof x.hp[k] === "number" ? "num" : "" }, cell(x.hp[k] ?? null, 40)))));
    const finalRows = finalKeys.map((k) => {
      const best = bestOf(k);
      return h("tr", {}, h("th", { text: k }), sums.map((x) => h("td", {
        class: ["num", typeof x.finals[k] === "number" && x.finals[k] === best ? "best" : ""], text: fmtNum(x.finals[k]) })));
    });
    content.append(h("section", { class: "card", id: "compare-table" }, h("div", { class: "card-head" },
      h("h2", { text: "Hyperparameters and final metrics" }), h("span", { class: "subtle small", text: "highlighted: differs · bold: best" })),
    h("div", { class: "table-wrap" }, h("table", { class: "grid-table compare" },
      h("thead", {}, h("tr", {}, h("th"), docs.map((d) => h("th", {}, h("span", { class: "swatch", style: { background: color.get(d.tag), borderColor: color.get(d.tag) } }),
        h("a", { href: executionHref(d.tag), class: "mono", text: d.tag }))))),
      h("tbody", {}, rowsHtml, h("tr", { class: "group" }, h("th", { colspan: docs.length + 1, text: "hyperparameters (itrainmodel)" })),
        hpRows, h("tr", { class: "group" }, h("th", { colspan: docs.length + 1, text: "final metrics" })), finalRows)))));

    // hyperparameter against metric
    const xOptions = hpKeys.filter((k) => sums.some((x) => x.hp[k] !== undefined));
    if (!xSel || !xOptions.includes(xSel)) xSel = xOptions.find(differs) || (xOptions.includes("learning_rate") ? "learning_rate" : xOptions[0]);
    if (!ySel || !finalKeys.includes(ySel)) {
      ySel = ["test accuracy", "final val_accuracy", "final accuracy", "final loss"].find((k) => finalKeys.includes(k)) || finalKeys[0];
    }
    const scatterBox = h("div");
    const drawScatter = () => scatterBox.replaceChildren(scatterChart({
      xLabel: xSel || "", yLabel: ySel || "",
      points: docs.map((d, i) => ({ x: sums[i].hp[xSel] ?? null, y: sums[i].finals[ySel] ?? null, label: d.tag, color: color.get(d.tag) })),
    }));
    const xs = h("select", { "aria-label": "hyperparameter" }, xOptions.map((k) => h("option", { value: k, text: k, selected: k === xSel })));
    const ys = h("select", { "aria-label": "metric" }, finalKeys.map((k) => h("option", { value: k, text: k, selected: k === ySel })));
    xs.addEventListener("change", () => { xSel = xs.value; drawScatter(); });
    ys.addEventListener("change", () => { ySel = ys.value; drawScatter(); });
    drawScatter();

    // curves overlaid
    const metricNames = [...new Set(sums.flatMap((x) => (x.set ? x.set.columns.filter((c, i) => x.set.numeric[i] && !x.set.provenance[i] && !NOT_METRICS.has(c)) : [])))];
    const order = (m) => ["loss", "val_loss", "accuracy", "val_accuracy"].indexOf(m);
    metricNames.sort((a, b) => (order(a) < 0 ? 99 : order(a)) - (order(b) < 0 ? 99 : order(b)) || a.localeCompare(b));
    drawCurves = () => {
      controls.sync();
      const rows = sums.map((x) => x.epochs.map((r) => ({ ...r, _t: parseTime(r.emitted_at) })));
      const xs = alignX(rows, view.x, docs.map((d) => parseTime(d.start_time)?.getTime()));
      const options = chartOptions(view, drawCurves);
      const curves = metricNames.map((m) => h("div", { class: "chart-card", dataset: { compareMetric: m } }, h("h3", { text: m }),
        lineChart({
          ...options,
          showLegend: false, // the run chips above name the colours
          series: docs.map((d, i) => ({ id: d.tag, name: d.tag, color: color.get(d.tag),
            points: rows[i].map((r, j) => [xs[i][j], r[m] ?? null]).filter((p) => typeof p[0] === "number") })),
        })));
      curvesBox.replaceChildren(curves.length ? h("div", { class: "chart-grid" }, curves) :
        h("p", { class: "empty-inline", text: "No per-epoch metrics in these runs." }));
    };
    drawCurves();
    content.append(h("div", { class: "two-col" },
      h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", { text: "Hyperparameter against metric" }),
        h("span", { class: "toolbar" }, xs, h("span", { class: "subtle", text: "→" }), ys)), scatterBox),
      h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", { text: "Final metrics" })), barBlock(docs, sums, finalKeys, color))),
    h("section", { class: "card", id: "curves" }, h("div", { class: "card-head" }, h("h2", { text: "Curves overlaid" }), controls),
      curvesBox));
  }

  content.append(h("p", { class: "loading", text: "Loading runs…" }));
  ctx.poll(async () => {
    const results = await Promise.allSettled(runs.map((t) => api.execution(t)));
    const missing = runs.filter((t, i) => results[i].status === "rejected");
    docs = results.filter((r) => r.status === "fulfilled").map((r) => r.value);
    const next = JSON.stringify(docs.map((d) => [d.status, d.sets]));
    if (next !== sig) { sig = next; draw(); }
    if (missing.length) content.prepend(h("div", { class: "warn-box", text: `Not found: ${missing.join(", ")}` }));
  }, () => (docs.some((d) => d.status === "RUNNING") ? 2000 : 15000));
}

/** Small horizontal bars: each final metric, one bar per run. */
function barBlock(docs, sums, keys, color) {
  const rank = (k) => (k.startsWith("test ") ? 0 : k.startsWith("final val_") ? 1 : /time/.test(k) ? 3 : 2);
  const shown = keys.filter((k) => !/time/.test(k)).sort((a, b) => rank(a) - rank(b)).slice(0, 6);
  if (!shown.length) return h("p", { class: "empty-inline", text: "No final metrics yet." });
  return h("div", { class: "bars" }, shown.map((k) => {
    const vals = sums.map((x) => x.finals[k]).filter((v) => typeof v === "number");
    const max = Math.max(...vals.map(Math.abs), 1e-12);
    return h("div", { class: "bar-group" }, h("div", { class: "bar-title", text: k }), docs.map((d, i) => {
      const v = sums[i].finals[k];
      return h("div", { class: "bar-row", title: `${d.tag}: ${fmtNum(v)}` },
        h("div", { class: "bar-track" }, h("div", { class: "bar-fill", style: { width: `${typeof v === "number" ? (100 * Math.abs(v)) / max : 0}%`, background: color.get(d.tag) } })),
        h("span", { class: "bar-value", text: fmtNum(v) }));
    }));
  }));
}
