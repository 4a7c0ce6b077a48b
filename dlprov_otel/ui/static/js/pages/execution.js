// One execution: live per-epoch charts, hyperparameters, test metrics, adaptations, the task
// timeline, the data lineage and PROV downloads. Polls every 1.5 s while the run is running.

import { api, downloadLink } from "../api.js";
import { lineChart, PALETTE, TASK_PALETTE, timeline } from "../charts.js";
import { chartControls, chartOptions, newView } from "../chartview.js";
import { drawGraph, panZoom, textWidth } from "../graph.js";
import { cell, clear, fmtBytes, put, fmtDuration, fmtNum, fmtTime, h, hardwareText, NOT_METRICS, parseTime, provenanceColumns, rowsOf, s,
  statusBadge } from "../util.js";

const PROV_LINKS = [["json", "PROV-JSON"], ["provn", "PROV-N"], ["png", "PNG"], ["svg", "SVG"]];
const LR_NAMES = ["learning_rate", "lr"];
const TRAIN = PALETTE[0], VALID = PALETTE[1];

function section(title, ...extra) {
  const body = h("div", { class: "section-body" });
  const el = h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", { text: title }), ...extra), body);
  return { el, body };
}

// --- metrics ---------------------------------------------------------------------------------
/** One marker per learning-rate change: repeats (one per rank) merged, "changes" to the same rate dropped. */
function adaptationMarkers(doc, xOfRow) {
  const seen = new Set();
  const out = [];
  for (const a of rowsOf(doc.sets.oadaptation)) {
    if (typeof a.epoch !== "number" || a.new_learning_rate === a.old_learning_rate) continue;
    const x = xOfRow(a);
    const key = JSON.stringify([x, a.new_learning_rate]);
    if (typeof x !== "number" || seen.has(key)) continue;
    seen.add(key);
    out.push({
      x,
      label: `lr → ${fmtNum(a.new_learning_rate)}`,
      title: `learning rate ${fmtNum(a.old_learning_rate)} → ${fmtNum(a.new_learning_rate)} at epoch ${fmtNum(a.epoch)}` +
        `${a.trigger ? ` (${a.trigger})` : ""}${a.adaptation_id ? `, ${a.adaptation_id}` : ""}`,
    });
  }
  return out;
}

/** [{metric, title, series, step, markers}] for every metric of otrainmodel; x in epochs or wall time ("time"). */
export function metricCharts(doc, mode = "epoch") {
  const set = doc.sets.otrainmodel;
  if (!set) return [];
  const rows = rowsOf(set);
  const numeric = new Set(set.columns.filter((c, i) => set.numeric[i]));
  const xKey = numeric.has("epoch") ? "epoch" : null;
  const t0 = parseTime(doc.start_time)?.getTime();
  const since = (r) => {
    const t = parseTime(r.emitted_at);
    return t && Number.isFinite(t0) ? (t.getTime() - t0) / 1000 : null;
  };
  const xOf = (r, i) => (mode === "time" ? since(r) : xKey ? r[xKey] : i);
  const ranks = [...new Set(rows.map((r) => r.rank ?? null))];
  const byRank = ranks.map((rk) => [rk, rows.filter((r) => (r.rank ?? null) === rk)]);
  const points = (rs, key) => rs.map((r, i) => [xOf(r, i), r[key]]).filter((p) => typeof p[0] === "number");
  const provenance = provenanceColumns(set);
  const metrics = [...numeric].filter((c) => !NOT_METRICS.has(c) && !provenance.has(c));
  const markers = adaptationMarkers(doc, (a) => (mode === "time" ? since(a) : a.epoch));
  const charts = [];
  const seriesFor = (key, color, dash) => byRank.map(([rk, rs], i) => ({
    id: ranks.length > 1 ? `${key}-r${rk}` : key,
    name: ranks.length > 1 ? `${key} (rank ${rk})` : key,
    color: ranks.length > 1 ? PALETTE[(i * 2 + (dash ? 1 : 0)) % PALETTE.length] : color,
    dash,
    points: points(rs, key),
  }));
  const special = new Set(["elapsed_time", ...LR_NAMES]);
  const bases = metrics.filter((m) => !special.has(m) && !(m.startsWith("val_") && metrics.includes(m.slice(4))));
  const rank = (m) => (m === "loss" ? 0 : /acc/.test(m) ? 1 : 2);
  bases.sort((a, b) => rank(a.replace(/^val_/, "")) - rank(b.replace(/^val_/, "")) || a.localeCompare(b));
  for (const m of bases) {
    const series = seriesFor(m, TRAIN, false);
    if (!m.startsWith("val_") && metrics.includes(`val_${m}`)) series.push(...seriesFor(`val_${m}`, VALID, false));
    charts.push({ metric: m, title: m, series, markers });
  }
  if (metrics.includes("elapsed_time")) {
    charts.push({ metric: "elapsed_time", title: "time per epoch (s)", series: seriesFor("elapsed_time", PALETTE[2], false),
      markers });
  }
  const lrKey = LR_NAMES.find((k) => metrics.includes(k));
  let lrSeries = lrKey ? seriesFor(lrKey, PALETTE[3], false) : [];
  if (!lrKey) {
    // the seed's otrainmodel has no rate: start from itrainmodel's and apply the adaptations
    const hp = rowsOf(doc.sets.itrainmodel)[0];
    const adapt = rowsOf(doc.sets.oadaptation).filter((a) => typeof a.epoch === "number").sort((a, b) => a.epoch - b.epoch);
    if (hp && typeof hp.learning_rate === "number" && rows.length) {
      const pts = rows.map((r, i) => {
        const epoch = xKey ? r[xKey] : i;
        let lr = hp.learning_rate;
        for (const a of adapt) if (a.epoch <= epoch && typeof a.new_learning_rate === "number") lr = a.new_learning_rate;
        return [xOf(r, i), lr];
      }).filter((p) => typeof p[0] === "number");
      lrSeries = [{ id: "learning_rate", name: "learning_rate", color: PALETTE[3], points: pts }];
    }
  }
  if (lrSeries.length) {
    charts.push({ metric: "learning_rate", title: "learning rate", series: lrSeries.map((x) => ({ ...x, step: true })),
      markers });
  }
  return charts;
}

// --- lineage ---------------------------------------------------------------------------------
function shortValue(v) {
  if (typeof v === "number") return fmtNum(v);
  let t = String(v);
  if (/^(sha256:|[0-9a-f]{40,})/.test(t)) t = t.replace(/^sha256:/, "").slice(0, 10) + "…";
  else if (t.includes("/") && t.length > 24) t = "…/" + t.split("/").pop();
  return t.length > 22 ? t.slice(0, 21) + "…" : t;
}

function dataLines(n) {
  const pick = (attrs, k) => Object.entries(attrs || {}).filter(([key, v]) => v !== "" && key !== "timestamp"
    && key !== "sha256" && String(v).length < 200).slice(0, k);
  if (n.count > 1) {
    const last = pick(n.last, 6).filter(([, v]) => typeof v === "number");
    const metric = last.find(([k]) => k === "loss") || last.find(([k]) => k !== "epoch" && k !== "elapsed_time") || last[0];
    return [`${n.count} elements`, metric ? `last ${metric[0]}: ${shortValue(metric[1])}` : null].filter(Boolean);
  }
  return pick(n.first, 2).map(([k, v]) => {
    const line = `${k}: ${shortValue(v)}`;
    return line.length > 32 ? line.slice(0, 31) + "…" : line;
  });
}

function lineageGraph(doc) {
  const FONT = "600 12px", SMALL = "11px"; // .node-title and .node-line
  const nodes = doc.lineage.nodes.map((n) => {
    if (n.kind === "task") {
      const label = `${n.label} #${n.task_id}`;
      const sub = n.duration !== null && n.duration !== undefined ? fmtDuration(n.duration) : (n.status || "").toLowerCase();
      return { ...n, title: label, lines: [sub], w: Math.max(110, textWidth(label, FONT) + 28), h: 42 };
    }
    const lines = dataLines(n);
    const w = Math.max(textWidth(n.label, FONT), ...lines.map((l) => textWidth(l, SMALL))) + 26;
    return { ...n, title: n.label, lines, w: Math.max(96, Math.min(w, 220)), h: 24 + 14 * lines.length };
  });
  const drawNode = (n) => {
    const g = s("g", { class: ["node", n.kind === "task" ? "activity" : "entity", `st-${(n.status || "").toLowerCase()}`],
      dataset: { node: n.id } });
    if (n.kind === "task") g.append(s("rect", { width: n.w, height: n.h, rx: 4 }));
    else g.append(s("rect", { width: n.w, height: n.h, rx: n.h / 2.4 }));
    g.append(s("text", { x: n.w / 2, y: 17, "text-anchor": "middle", class: "node-title", text: n.title }));
    n.lines.forEach((l, i) => g.append(s("text", { x: n.w / 2, y: 32 + i * 14, "text-anchor": "middle", class: "node-line", text: l })));
    const tip = n.kind === "task" ? `task ${n.task_id} (${n.label}): ${n.status}` :
      `${n.label}: ${n.count} element(s) ${n.role === "input" ? "given to" : "made by"} task ${n.task_id}\n` +
      Object.entries(n.count > 1 ? n.last : n.first).map(([k, v]) => `${k} = ${v}`).join("\n");
    g.append(s("title", { text: tip }));
    return g;
  };
  return drawGraph(nodes, doc.lineage.edges, { drawNode, dir: "LR", rankSep: 30, nodeSep: 12, label: "data lineage",
    edgeClass: (e) => `edge ${e.kind}` });
}

// --- the page --------------------------------------------------------------------------------
function kv(entries) {
  return h("table", { class: "kv" }, h("tbody", {}, entries.filter(([, v]) => v !== undefined).map(([k, v]) =>
    h("tr", {}, h("th", { text: k }), h("td", {}, v instanceof Node ? v : cell(v, 90))))));
}

/** Provenance columns a person rarely reads: shown only with the toggle (rank: when it says nothing). */
const INTERNAL = new Set(["producer_task_id", "consumer_task_id"]);

export function shownColumns(set, all) {
  return set.columns.map((c, i) => i).filter((i) => all || !(INTERNAL.has(set.columns[i])
    || (set.columns[i] === "rank" && set.rows.every((r) => r[i] === null || r[i] === undefined))));
}

function dataTable(set, all = false, max = 200) {
  const rows = set.rows.slice(-max);
  const cols = shownColumns(set, all);
  return h("div", { class: "table-wrap" }, h("table", { class: "grid-table compact" },
    h("thead", {}, h("tr", {}, cols.map((i) => h("th", { class: set.numeric[i] ? "num" : "", text: set.columns[i] })))),
    h("tbody", {}, rows.map((r) => h("tr", {}, cols.map((i) => h("td", { class: set.numeric[i] ? "num" : "" }, cell(r[i], 48))))))),
  set.rows.length > max ? h("p", { class: "subtle small", text: `last ${max} of ${set.rows.length} rows${set.truncated ? " (more in the store)" : ""}` }) : null);
}

export async function render(main, { params, ctx }) {
  const tag = params[0];
  const title = h("h1", { class: "run-title", text: tag });
  const badge = h("span");
  const meta = h("div", { class: "meta" });
  const downloads = h("div", { class: "downloads" }, h("span", { class: "subtle small", text: "W3C PROV:" }),
    PROV_LINKS.map(([fmt, label]) => downloadLink(api.provPath(tag, fmt), label,
      (err) => put(alertBox, h("div", { class: "error-box", text: `PROV ${label}: ${err.message}` })), { dataset: { prov: fmt } })));
  const queryLink = h("a", { class: "btn small", text: "SQL" });
  const alertBox = h("div");
  const kpis = h("div", { class: "kpis" });
  const view = newView("epoch");
  const controls = chartControls(view, () => drawCharts(true), ["epoch", "time"]);
  const charts = section("Training metrics", h("span", { class: "subtle small live-note" }), controls);
  const hyper = section("Hyperparameters");
  const test = section("Test metrics");
  const system = section("Hardware and processes");
  const adapt = section("Learning-rate adaptations");
  const tasks = section("Tasks");
  const lineage = section("Data lineage", h("span", { class: "legend small" },
    h("span", { class: "lg activity" }, "task"), h("span", { class: "lg entity" }, "data set"),
    h("span", { class: "subtle", text: "→ used / generated, dashed: depends on" })));
  let showInternal = false;
  const internalBox = h("input", { type: "checkbox", id: "show-internal", "aria-label": "show provenance columns" });
  internalBox.addEventListener("change", () => { showInternal = internalBox.checked; update(); });
  const dataSec = section("Data sets", h("label", { class: "ctl small" }, internalBox,
    "provenance columns (producer_task_id, consumer_task_id, rank)"));
  const models = section("Model files", h("span", { class: "subtle small",
    text: "served from the path the run recorded, while its sha256 still matches" }));
  main.append(
    h("div", { class: "crumbs" }, h("a", { href: "#/", text: "← Executions" })),
    h("div", { class: "page-head run-head" }, h("div", { class: "grow" }, h("div", { class: "title-row" }, title, badge), meta),
      h("div", { class: "head-actions" }, downloads, queryLink)),
    alertBox, kpis, charts.el,
    h("div", { class: "two-col" }, hyper.el, h("div", {}, test.el, system.el)),
    adapt.el, models.el, tasks.el, lineage.el, dataSec.el,
  );
  let dataTab = null;
  const sigs = {};
  const changed = (key, value) => {
    const sig = JSON.stringify(value);
    if (sigs[key] === sig) return false;
    sigs[key] = sig;
    return true;
  };
  let doc = null;

  function update() {
    const running = doc.status === "RUNNING";
    title.textContent = doc.tag; // the page may be named by `latest`, a run name or a prefix
    put(badge, statusBadge(doc.status));
    const hp = rowsOf(doc.sets.itrainmodel)[0] || {};
    const epochs = rowsOf(doc.sets.otrainmodel);
    const last = epochs[epochs.length - 1] || {};
    const testRow = rowsOf(doc.sets.otestmodel).slice(-1)[0];
    put(meta, 
      h("span", {}, "dataflow ", doc.dataflow ? h("a", { href: `#/dataflows/${encodeURIComponent(doc.dataflow)}`, text: doc.dataflow }) : "—"),
      h("span", { text: `started ${fmtTime(doc.start_time)}` }),
      h("span", { text: doc.end_time ? `ended ${fmtTime(doc.end_time)}` : running ? "running" : "" }),
      doc.scientist ? h("span", { text: `by ${doc.scientist}` }) : null,
      running && doc.idle_s !== null ? h("span", { class: "subtle", text: `last span ${fmtDuration(doc.idle_s)} ago` }) : null,
    );
    const schema = doc.dataflow ? `SET SCHEMA "${doc.dataflow}"; ` : "";
    const q = `${schema}SELECT * FROM otrainmodel WHERE execution_tag = '${doc.tag.replace(/'/g, "''")}' ORDER BY epoch;`;
    queryLink.href = `#/query?sql=${encodeURIComponent(q)}`;
    if (changed("alert", [doc.status, doc.error])) {
      put(alertBox, 
        doc.status === "FAILED" ? h("div", { class: "error-box" }, h("strong", { text: "Failed. " }), doc.error || "no error message recorded") : "",
        doc.status === "KILLED" ? h("div", { class: "warn-box" }, h("strong", { text: "Killed? " }),
          `Recorded as running, but no span arrived for ${fmtDuration(doc.idle_s)} and its process is gone from this host.`) : "");
    }
    const planned = typeof hp.num_epochs === "number" ? hp.num_epochs : null;
    put(kpis, 
      h("div", { class: "kpi" }, h("div", { class: "kpi-label", text: "Epochs" }),
        h("div", { class: "kpi-value", id: "kpi-epochs", text: `${epochs.length}${planned ? ` / ${fmtNum(planned)}` : ""}` }),
        planned ? h("div", { class: "progress" }, h("div", { style: { width: `${Math.min(100, (100 * epochs.length) / planned)}%` } })) : null),
      h("div", { class: "kpi" }, h("div", { class: "kpi-label", text: "Duration" }), h("div", { class: "kpi-value", text: fmtDuration(doc.duration_s) })),
      h("div", { class: "kpi" }, h("div", { class: "kpi-label", text: "Loss" }), h("div", { class: "kpi-value", text: fmtNum(last.loss) }),
        last.val_loss !== undefined ? h("div", { class: "kpi-sub", text: `val ${fmtNum(last.val_loss)}` }) : null),
      h("div", { class: "kpi" }, h("div", { class: "kpi-label", text: "Accuracy" }), h("div", { class: "kpi-value", text: fmtNum(last.accuracy) }),
        last.val_accuracy !== undefined ? h("div", { class: "kpi-sub", text: `val ${fmtNum(last.val_accuracy)}` }) : null),
      h("div", { class: "kpi accent" }, h("div", { class: "kpi-label", text: "Test accuracy" }),
        h("div", { class: "kpi-value", text: testRow ? fmtNum(testRow.accuracy) : running ? "…" : "—" }),
        testRow && testRow.loss !== undefined ? h("div", { class: "kpi-sub", text: `loss ${fmtNum(testRow.loss)}` }) : null),
    );
    charts.el.querySelector(".live-note").textContent = running ? "updating live" : "";
    drawCharts(false);
    if (changed("hyper", doc.sets.itrainmodel || null)) {
      const hpProvenance = provenanceColumns(doc.sets.itrainmodel);
      clear(hyper.body).append(Object.keys(hp).length ? kv(Object.entries(hp).filter(([k, v]) =>
        v !== null && !hpProvenance.has(k))) :
        h("p", { class: "empty-inline", text: "No hyperparameters (itrainmodel) recorded." }));
    }
    if (changed("test", doc.sets.otestmodel || null)) {
      const testProvenance = provenanceColumns(doc.sets.otestmodel);  // the time it was tested stays
      clear(test.body).append(testRow ? kv(Object.entries(testRow).filter(([k, v]) => v !== null &&
        (k === "emitted_at" || !testProvenance.has(k))).map(([k, v]) => [k, k === "emitted_at" ? fmtTime(v) : v])) :
        h("p", { class: "empty-inline", text: running ? "The model is not tested yet." : "No test metrics (otestmodel) recorded." }));
    }
    if (changed("system", [doc.hardware, doc.processes, doc.service])) {
      const hw = doc.hardware || {};
      clear(system.body).append(kv([
        ["host", hw.host_name], ["CPU", hw.cpu_model ? `${hw.cpu_model} × ${hw.cpu_count ?? "?"}` : null],
        ["memory", fmtBytes(hw.memory_bytes)], ["GPUs", hardwareText({ gpus: hw.gpus })], ["OS", hw.os],
        ["container", hw.container], ["service", doc.service],
        ["processes", doc.processes.map((p) => `pid ${p.pid}${p.rank !== null ? ` (rank ${p.rank})` : ""} on ${p.host_name || "?"}`).join(", ") || "—"],
      ]));
    }
    const adaptations = doc.sets.oadaptation;
    adapt.el.hidden = !adaptations;
    if (adaptations && changed("adapt", [adaptations, showInternal])) clear(adapt.body).append(dataTable(adaptations, showInternal));
    drawModels();
    if (changed("tasks", [doc.tasks, running ? doc.now : null])) {
      const order = doc.transformations.map((t) => t.tag);
      const origin = parseTime(doc.start_time) || parseTime(doc.tasks[0]?.start_time) || new Date();
      const endOfRun = doc.status === "KILLED" ? parseTime(doc.last_activity) : parseTime(doc.now);
      clear(tasks.body).append(doc.tasks.length ? h("div", { class: "timeline-wrap" }, timeline({
        origin,
        now: endOfRun,
        tasks: doc.tasks.filter((t) => t.start_time).map((t) => ({
          id: t.id, label: `${t.dt_tag} #${t.id}${t.rank !== null && t.rank !== undefined ? ` r${t.rank}` : ""}`,
          start: parseTime(t.start_time), end: parseTime(t.end_time), status: t.status, error: t.error,
          color: TASK_PALETTE[Math.max(0, order.indexOf(t.dt_tag)) % TASK_PALETTE.length],
        })),
      })) : h("p", { class: "empty-inline", text: "No task recorded yet." }));
    }
    if (changed("lineage", doc.lineage)) {
      if (doc.lineage.nodes.length) {
        const wrap = h("div", { class: "graph-wrap" }, lineageGraph(doc));
        clear(lineage.body).append(wrap);
        panZoom(wrap);
      } else {
        clear(lineage.body).append(h("p", { class: "empty-inline", text: "No data recorded yet." }));
      }
    }
    const setTags = Object.keys(doc.sets);
    if (changed("data", [doc.sets, dataTab, showInternal])) {
      if (!dataTab || !setTags.includes(dataTab)) dataTab = setTags.includes("otrainmodel") ? "otrainmodel" : setTags[0];
      clear(dataSec.body);
      if (!setTags.length) dataSec.body.append(h("p", { class: "empty-inline", text: "No data recorded yet." }));
      else {
        dataSec.body.append(h("div", { class: "tabs" }, setTags.map((t) => h("button", {
          class: ["tab", t === dataTab ? "active" : ""], text: `${t} (${doc.sets[t].rows.length})`,
          onclick: () => { dataTab = t; update(); },
        }))), dataTable(doc.sets[dataTab], showInternal));
      }
    }
  }

  function drawCharts(force) {
    if (!doc) return;
    const specs = metricCharts(doc, view.x);
    if (!changed("charts", [specs, view.x]) && !force) return;
    controls.sync();
    clear(charts.body);
    if (!specs.length) {
      charts.body.append(h("p", { class: "empty-inline", text: doc.status === "RUNNING" ? "Waiting for the first epoch…" :
        "This execution recorded no per-epoch metrics (otrainmodel)." }));
      return;
    }
    const options = chartOptions(view, () => drawCharts(true));
    charts.body.append(h("div", { class: "chart-grid" }, specs.map((c) => h("div", { class: "chart-card", dataset: { metric: c.metric } },
      h("h3", { text: c.title }), lineChart({ series: c.series, markers: c.markers, ...options })))));
  }

  function drawModels() {
    const rows = rowsOf(doc.sets.otrainedmodel);
    models.el.hidden = !rows.length;
    if (!rows.length || !changed("models", doc.sets.otrainedmodel)) return;
    clear(models.body).append(h("div", { class: "table-wrap" }, h("table", { class: "grid-table compact models" },
      h("thead", {}, h("tr", {}, ["model", "file", "epoch", "size", "sha256", ""].map((c) => h("th", { text: c })))),
      h("tbody", {}, rows.map((r) => {
        const digest = typeof r.sha256 === "string" && /^[0-9a-f]{64}$/i.test(r.sha256) ? r.sha256.toLowerCase() : null;
        const path = api.modelPath(doc.tag, digest || "");
        return h("tr", { dataset: { sha256: digest || "" } },
          h("td", { text: r.model_name ?? "—" }), h("td", { class: "mono small" }, cell(r.model_dir ?? null, 70)),
          h("td", { class: "num", text: fmtNum(r.epoch) }), h("td", { class: "num", text: fmtBytes(r.size_bytes) }),
          h("td", { class: "mono small", title: digest || "", text: digest ? `${digest.slice(0, 12)}…` : "not recorded" }),
          h("td", {}, digest ? [downloadLink(path, "Download",
            (err) => put(alertBox, h("div", { class: "error-box", text: `Model ${r.model_dir}: ${err.message}` })),
            { class: "btn small download-model" }), " ", h("a", { class: "btn small", href: `#/lineage?digest=${digest}`, text: "Lineage" })] :
            h("span", { class: "subtle small", text: "no digest: not served" })));
      })))));
  }

  main.append(h("p", { class: "loading", id: "exec-loading", text: "Loading…" }));
  ctx.poll(async () => {
    try {
      doc = await api.execution(tag);
    } catch (err) {
      main.querySelector("#exec-loading")?.remove();
      if (err.status === 404) {
        clear(main).append(h("div", { class: "crumbs" }, h("a", { href: "#/", text: "← Executions" })),
          h("div", { class: "empty card" }, h("h2", { text: "No such execution" }), h("p", { text: err.message })));
        ctx.stop();
        return;
      }
      throw err;
    }
    main.querySelector("#exec-loading")?.remove();
    update();
  }, () => (doc && doc.status !== "RUNNING" ? 15000 : 1500));
}
