// Charts drawn as SVG by hand: line charts (per-epoch metrics, overlaid runs), a scatter plot
// (hyperparameter against metric) and a task timeline. No library, no network.

import { fmtDuration, fmtNum, h, put, s } from "./util.js";

/** Colours of transformations (no red: red means failed). */
export const TASK_PALETTE = ["#3b82f6", "#f59e0b", "#10b981", "#8b5cf6", "#06b6d4", "#ec4899", "#84cc16", "#6366f1"];

export const PALETTE = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777",
  "#4b5563", "#65a30d"];

/** About `count` round tick values covering [min, max]. */
export function niceTicks(min, max, count = 5, integer = false) {
  if (!(max > min)) return [min];
  const raw = (max - min) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((v) => v >= raw) || 10 * mag;
  if (integer) step = Math.max(1, Math.round(step));
  const first = Math.ceil(min / step - 1e-9) * step;
  const ticks = [];
  for (let v = first; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** A formatter for the values of one axis: as many decimals as the tick step needs. */
export function tickFormat(ticks) {
  if (ticks.length < 2) return fmtNum;
  const step = Math.abs(ticks[1] - ticks[0]);
  const big = Math.max(...ticks.map(Math.abs));
  if (big >= 1e6 || (big < 1e-3 && big > 0)) {
    const digits = Math.max(1, Math.min(6, Math.ceil(Math.log10(big / step)) + 1));
    return (v) => (v === 0 ? "0" : v.toExponential(digits - 1));
  }
  let decimals = 0; // the fewest that write the step exactly (0.25 needs 2)
  while (decimals < 10 && Math.abs(Math.round(step * 10 ** decimals) - step * 10 ** decimals) > 1e-6) decimals++;
  return (v) => String(Number(v.toFixed(decimals)));
}

function extent(values) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (v === null || v === undefined || !Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo === Infinity ? null : [lo, hi];
}

function padDomain([lo, hi], frac = 0.06) {
  if (hi === lo) {
    const d = Math.abs(lo) * 0.1 || 1;
    return [lo - d, hi + d];
  }
  const d = (hi - lo) * frac;
  return [lo - d, hi + d];
}

function legend(items) {
  return h("div", { class: "legend" }, items.map((it) =>
    h("span", { class: "legend-item" },
      h("span", { class: ["swatch", it.dash ? "dashed" : ""], style: { borderColor: it.color, background: it.dash ? "transparent" : it.color } }),
      it.name)));
}

/**
 * A line chart. series: [{name, color, dash, points: [[x, y], ...], step, id}]; markers:
 * [{x, label}] (vertical lines, e.g. learning-rate adaptations). Returns a <div class="chart">.
 */
export function lineChart({ series, xLabel = "epoch", yLabel = "", markers = [], width = 440, height = 230,
  integerX = true, yFormat = null, xFormat = fmtNum, empty = "no values yet", showLegend = true }) {
  const m = { top: 12, right: 14, bottom: 36, left: 54 };
  const iw = width - m.left - m.right, ih = height - m.top - m.bottom;
  const wrap = h("div", { class: "chart" });
  if (showLegend) wrap.append(legend(series));
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart-svg", role: "img",
    "aria-label": `${series.map((x) => x.name).join(", ")} by ${xLabel}` });
  wrap.append(svg);
  const xs = extent(series.flatMap((x) => x.points.map((p) => p[0])).concat(markers.map((mk) => mk.x)));
  const ys = extent(series.flatMap((x) => x.points.map((p) => p[1])));
  if (!xs || !ys) {
    svg.append(s("text", { x: width / 2, y: height / 2, class: "chart-empty", "text-anchor": "middle", text: empty }));
    return wrap;
  }
  let [x0, x1] = xs;
  if (x0 === x1) { x0 -= 0.5; x1 += 0.5; } // one epoch: centred, no negative epoch on the axis
  const [y0, y1] = padDomain(ys);
  const X = (v) => m.left + ((v - x0) / (x1 - x0)) * iw;
  const Y = (v) => m.top + ih - ((v - y0) / (y1 - y0)) * ih;
  const g = s("g");
  svg.append(g);
  const yTicks = niceTicks(y0, y1, 5);
  const yFmt = yFormat || tickFormat(yTicks);
  for (const t of yTicks) {
    g.append(s("line", { x1: m.left, x2: m.left + iw, y1: Y(t), y2: Y(t), class: "grid" }));
    g.append(s("text", { x: m.left - 6, y: Y(t) + 4, "text-anchor": "end", class: "tick", text: yFmt(t) }));
  }
  for (const t of niceTicks(x0, x1, Math.min(8, Math.max(2, Math.round(x1 - x0))), integerX)) {
    g.append(s("line", { x1: X(t), x2: X(t), y1: m.top + ih, y2: m.top + ih + 4, class: "axis" }));
    g.append(s("text", { x: X(t), y: m.top + ih + 17, "text-anchor": "middle", class: "tick", text: xFormat(t) }));
  }
  g.append(s("line", { x1: m.left, x2: m.left + iw, y1: m.top + ih, y2: m.top + ih, class: "axis" }));
  g.append(s("line", { x1: m.left, x2: m.left, y1: m.top, y2: m.top + ih, class: "axis" }));
  g.append(s("text", { x: m.left + iw / 2, y: height - 4, "text-anchor": "middle", class: "axis-label", text: xLabel }));
  if (yLabel) {
    g.append(s("text", { x: 12, y: m.top + ih / 2, "text-anchor": "middle", class: "axis-label",
      transform: `rotate(-90 12 ${m.top + ih / 2})`, text: yLabel }));
  }
  for (const mk of markers) {
    const mg = s("g", { class: "marker" });
    mg.append(s("line", { x1: X(mk.x), x2: X(mk.x), y1: m.top, y2: m.top + ih }));
    if (mk.label) mg.append(s("text", { x: X(mk.x) + 4, y: m.top + 11, text: mk.label }));
    mg.append(s("title", { text: mk.title || mk.label || "" }));
    g.append(mg);
  }
  const dense = Math.max(...series.map((x) => x.points.length)) > 60;
  for (const se of series) {
    const sg = s("g", { class: "series", dataset: { series: se.id || se.name } });
    let d = "", prev = null;
    for (const [x, y] of se.points) {
      if (y === null || y === undefined || !Number.isFinite(y)) { prev = null; continue; }
      if (prev === null) d += `M${X(x).toFixed(1)},${Y(y).toFixed(1)}`;
      else if (se.step) d += `H${X(x).toFixed(1)}V${Y(y).toFixed(1)}`;
      else d += `L${X(x).toFixed(1)},${Y(y).toFixed(1)}`;
      prev = [x, y];
    }
    if (se.step && prev && prev[0] < x1) d += `H${X(x1).toFixed(1)}`;
    sg.append(s("path", { d, fill: "none", stroke: se.color, "stroke-width": 2,
      "stroke-dasharray": se.dash ? "6 4" : null, "stroke-linejoin": "round" }));
    for (const [x, y] of se.points) {
      if (y === null || y === undefined || !Number.isFinite(y)) continue;
      sg.append(s("circle", { cx: X(x).toFixed(1), cy: Y(y).toFixed(1), r: dense ? 1.5 : 3.2, fill: se.color,
        class: "pt", dataset: { x: String(x), y: String(y) } }));
    }
    g.append(sg);
  }
  // hover: the values of every series at the nearest x
  const allX = [...new Set(series.flatMap((x) => x.points.map((p) => p[0])))].sort((a, b) => a - b);
  const cross = s("line", { class: "crosshair", y1: m.top, y2: m.top + ih, visibility: "hidden" });
  const tip = h("div", { class: "tooltip", hidden: true });
  svg.append(cross);
  wrap.append(tip);
  const overlay = s("rect", { x: m.left, y: m.top, width: iw, height: ih, class: "overlay" });
  svg.append(overlay);
  overlay.addEventListener("mousemove", (ev) => {
    const pt = svg.createSVGPoint();
    pt.x = ev.clientX; pt.y = ev.clientY;
    const loc = pt.matrixTransform(svg.getScreenCTM().inverse());
    const xv = x0 + ((loc.x - m.left) / iw) * (x1 - x0);
    let best = allX[0];
    for (const v of allX) if (Math.abs(v - xv) < Math.abs(best - xv)) best = v;
    cross.setAttribute("x1", X(best)); cross.setAttribute("x2", X(best));
    cross.setAttribute("visibility", "visible");
    put(tip, h("div", { class: "tip-title", text: `${xLabel} ${xFormat(best)}` }),
      series.map((se) => {
        const p = se.points.find((q) => q[0] === best);
        return p ? h("div", {}, h("span", { class: "swatch", style: { background: se.color, borderColor: se.color } }),
          `${se.name}: ${fmtNum(p[1])}`) : null;
      }).filter(Boolean));
    tip.hidden = false;
    const box = wrap.getBoundingClientRect();
    const left = ev.clientX - box.left + 14;
    tip.style.left = `${Math.min(left, box.width - 180)}px`;
    tip.style.top = `${ev.clientY - box.top + 10}px`;
  });
  overlay.addEventListener("mouseleave", () => { tip.hidden = true; cross.setAttribute("visibility", "hidden"); });
  return wrap;
}

/** Points [{x, y, label, color}] with a numeric or categorical x. */
export function scatterChart({ points, xLabel, yLabel, width = 520, height = 280 }) {
  const m = { top: 16, right: 24, bottom: 42, left: 64 };
  const iw = width - m.left - m.right, ih = height - m.top - m.bottom;
  const wrap = h("div", { class: "chart" });
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart-svg", role: "img",
    "aria-label": `${yLabel} against ${xLabel}` });
  wrap.append(svg);
  const usable = points.filter((p) => p.y !== null && p.y !== undefined && Number.isFinite(p.y)
    && p.x !== null && p.x !== undefined);
  if (!usable.length) {
    svg.append(s("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "chart-empty",
      text: "no runs with both values" }));
    return wrap;
  }
  const categorical = usable.some((p) => typeof p.x !== "number");
  const cats = categorical ? [...new Set(usable.map((p) => String(p.x)))] : [];
  const xv = (p) => (categorical ? cats.indexOf(String(p.x)) : p.x);
  let [x0, x1] = categorical ? [-0.5, cats.length - 0.5] : padDomain(extent(usable.map(xv)), 0.1);
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  const [y0, y1] = padDomain(extent(usable.map((p) => p.y)), 0.1);
  const X = (v) => m.left + ((v - x0) / (x1 - x0)) * iw;
  const Y = (v) => m.top + ih - ((v - y0) / (y1 - y0)) * ih;
  const yTicks = niceTicks(y0, y1, 5);
  const yFmt = tickFormat(yTicks);
  for (const t of yTicks) {
    svg.append(s("line", { x1: m.left, x2: m.left + iw, y1: Y(t), y2: Y(t), class: "grid" }));
    svg.append(s("text", { x: m.left - 6, y: Y(t) + 4, "text-anchor": "end", class: "tick", text: yFmt(t) }));
  }
  const xNice = niceTicks(x0, x1, 5);
  const xFmt = tickFormat(xNice);
  const xticks = categorical ? cats.map((c, i) => [i, c]) : xNice.map((t) => [t, xFmt(t)]);
  for (const [t, label] of xticks) {
    svg.append(s("line", { x1: X(t), x2: X(t), y1: m.top + ih, y2: m.top + ih + 4, class: "axis" }));
    svg.append(s("text", { x: X(t), y: m.top + ih + 17, "text-anchor": "middle", class: "tick", text: label }));
  }
  svg.append(s("line", { x1: m.left, x2: m.left + iw, y1: m.top + ih, y2: m.top + ih, class: "axis" }));
  svg.append(s("line", { x1: m.left, x2: m.left, y1: m.top, y2: m.top + ih, class: "axis" }));
  svg.append(s("text", { x: m.left + iw / 2, y: height - 6, "text-anchor": "middle", class: "axis-label", text: xLabel }));
  svg.append(s("text", { x: 14, y: m.top + ih / 2, "text-anchor": "middle", class: "axis-label",
    transform: `rotate(-90 14 ${m.top + ih / 2})`, text: yLabel }));
  for (const p of usable) {
    const g = s("g", { class: "scatter-pt" });
    g.append(s("circle", { cx: X(xv(p)), cy: Y(p.y), r: 6, fill: p.color, stroke: "#fff", "stroke-width": 1.5 }));
    g.append(s("title", { text: `${p.label}\n${xLabel}: ${categorical ? p.x : fmtNum(p.x)}\n${yLabel}: ${fmtNum(p.y)}` }));
    svg.append(g);
  }
  return wrap;
}

/** A Gantt timeline of tasks: [{id, label, start: Date, end: Date|null, status, color}]. */
export function timeline({ tasks, origin, now, width = 1000 }) {
  const rowH = 24, labelW = 190, m = { top: 24, right: 70, bottom: 8 };
  const height = m.top + tasks.length * rowH + m.bottom;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "timeline-svg", role: "img",
    "aria-label": "task timeline" });
  if (!tasks.length) return svg;
  const t0 = origin.getTime();
  const t1 = Math.max(t0 + 1000, ...tasks.map((t) => (t.end || now).getTime()));
  const iw = width - labelW - m.right;
  const X = (ms) => labelW + ((ms - t0) / (t1 - t0)) * iw;
  for (const t of niceTicks(0, (t1 - t0) / 1000, 8)) {
    svg.append(s("line", { x1: X(t0 + t * 1000), x2: X(t0 + t * 1000), y1: m.top - 6, y2: height - m.bottom, class: "grid" }));
    svg.append(s("text", { x: X(t0 + t * 1000), y: m.top - 10, "text-anchor": "middle", class: "tick",
      text: `${fmtNum(t)} s` }));
  }
  tasks.forEach((t, i) => {
    const y = m.top + i * rowH;
    const g = s("g", { class: ["task-row", `st-${(t.status || "").toLowerCase()}`], dataset: { task: t.id } });
    g.append(s("text", { x: labelW - 8, y: y + rowH / 2 + 4, "text-anchor": "end", class: "task-label", text: t.label }));
    const end = t.end || now;
    const x = X(t.start.getTime());
    const w = Math.max(3, X(end.getTime()) - x);
    g.append(s("rect", { x, y: y + 4, width: w, height: rowH - 8, rx: 3, fill: t.color,
      class: ["bar", t.end ? "" : "running"] }));
    const secs = (end.getTime() - t.start.getTime()) / 1000;
    g.append(s("text", { x: x + w + 5, y: y + rowH / 2 + 4, class: "tick", text: fmtDuration(secs) + (t.end ? "" : " …") }));
    g.append(s("title", { text: `${t.label}: ${t.status}, ${fmtDuration(secs)}${t.error ? `\n${t.error}` : ""}` }));
    svg.append(g);
  });
  return svg;
}
