// The controls shared by the charts of a page: the x axis (epochs, wall time, or percent of
// the run when runs of different lengths are compared), a log scale, smoothing and the zoom
// (drag across a chart to zoom every chart of the page, double-click or "Reset zoom" to undo).

import { fmtNum, h } from "./util.js";

const X_MODES = { epoch: "epoch", time: "wall time", progress: "% of run" };

/** A view: {x, logY, smoothing, zoom}; the choice of log and smoothing is kept in this browser. */
export function newView(x = "epoch") {
  let saved = {};
  try { saved = JSON.parse(localStorage.getItem("dlprov.chartview") || "{}"); } catch { /* none */ }
  return { x, logY: Boolean(saved.logY), smoothing: Number(saved.smoothing) || 0, zoom: null };
}

function keep(view) {
  try { localStorage.setItem("dlprov.chartview", JSON.stringify({ logY: view.logY, smoothing: view.smoothing })); } catch { /* private */ }
}

/** Seconds as a clock: 75 -> "1:15", 3725 -> "1:02:05". */
export function fmtClock(sec) {
  if (typeof sec !== "number" || !Number.isFinite(sec)) return "—";
  const t = Math.round(sec), hh = Math.floor(t / 3600), mm = Math.floor((t % 3600) / 60), ss = t % 60;
  const p = (n) => String(n).padStart(2, "0");
  return hh ? `${hh}:${p(mm)}:${p(ss)}` : `${mm}:${p(ss)}`;
}

/** The x axis of a view, for lineChart: label, format, integer ticks. */
export function xAxis(view) {
  if (view.x === "time") return { xLabel: "wall time (m:ss since start)", xFormat: fmtClock, integerX: false };
  if (view.x === "progress") return { xLabel: "% of the run", xFormat: (v) => `${fmtNum(v)}%`, integerX: false };
  return { xLabel: "epoch", xFormat: fmtNum, integerX: true };
}

/** lineChart options from a view (the zoom calls `redraw`). */
export function chartOptions(view, redraw) {
  return { ...xAxis(view), logY: view.logY, smoothing: view.smoothing, xDomain: view.zoom,
    onZoom: (domain) => { view.zoom = domain; redraw(); } };
}

/** The toolbar: x axis, log scale, smoothing, reset zoom. `modes`: the x axes offered. */
export function chartControls(view, redraw, modes = ["epoch", "time"]) {
  const xSel = h("select", { "aria-label": "x axis", class: "small-select" },
    modes.map((k) => h("option", { value: k, text: `x: ${X_MODES[k]}`, selected: view.x === k })));
  xSel.addEventListener("change", () => { view.x = xSel.value; view.zoom = null; redraw(); });
  const log = h("input", { type: "checkbox", checked: view.logY, "aria-label": "log scale" });
  log.addEventListener("change", () => { view.logY = log.checked; keep(view); redraw(); });
  const value = h("span", { class: "subtle small smooth-value", text: view.smoothing.toFixed(2) });
  const slider = h("input", { type: "range", min: 0, max: 0.95, step: 0.05, value: String(view.smoothing),
    "aria-label": "smoothing" });
  slider.addEventListener("input", () => {
    view.smoothing = Number(slider.value);
    value.textContent = view.smoothing.toFixed(2);
    keep(view);
    redraw();
  });
  const reset = h("button", { class: "btn small reset-zoom", text: "Reset zoom", hidden: !view.zoom,
    onclick: () => { view.zoom = null; redraw(); } });
  const bar = h("div", { class: "chart-controls" }, xSel,
    h("label", { class: "ctl" }, log, "log scale"),
    h("label", { class: "ctl" }, "smoothing", slider, value), reset,
    h("span", { class: "subtle small hint", text: "drag across a chart to zoom, double-click to reset" }));
  bar.sync = () => { reset.hidden = !view.zoom; };
  return bar;
}
