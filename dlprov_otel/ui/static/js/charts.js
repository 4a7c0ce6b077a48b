// Charts drawn as SVG by hand: line charts (per-epoch metrics, overlaid runs; zoom, log scale,
// smoothing, markers whose labels never overlap), a scatter plot (hyperparameter against
// metric) and a task timeline. No library, no network.

import { textWidth } from "./graph.js";
import { smooth } from "./metrics.js";
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

/** Ticks of a log10 axis over [lo, hi] (values > 0): decades, with 2 and 5 when few decades. */
export function logTicks(lo, hi) {
  const a = Math.floor(Math.log10(lo)), b = Math.ceil(Math.log10(hi));
  const mults = b - a <= 2 ? [1, 2, 5] : [1];
  const step = Math.max(1, Math.ceil((b - a) / 6));
  const out = [];
  for (let e = a; e <= b; e += step) for (const k of mults) {
    const v = Number((k * 10 ** e).toPrecision(12));
    if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(v);
  }
  return out.length ? out : [lo, hi];
}

/**
 * Learning-rate (or other) markers placed so that no two labels overlap: one marker per x
 * (the changes at one x merged), labels in up to two rows, and a label that fits nowhere left
 * out (its details stay in the marker's hover title and in the chart's tooltip).
 * markers: [{x, label, title}]; X: x -> pixel; [left, right]: the plot's extent; width(text).
 */
export function placeMarkers(markers, X, [left, right], width) {
  const byX = new Map();
  for (const mk of markers) {
    const prev = byX.get(mk.x);
    byX.set(mk.x, prev ? { ...mk, title: `${prev.title || prev.label}\n${mk.title || mk.label}` } : { ...mk });
  }
  const placed = [...byX.values()].sort((a, b) => a.x - b.x);
  const rowEnd = [-Infinity, -Infinity];
  for (const mk of placed) {
    mk.row = null;
    if (!mk.label) continue;
    const w = width(mk.label), px = X(mk.x);
    for (let r = 0; r < rowEnd.length && mk.row === null; r++) {
      for (const [x0, anchor] of [[px + 4, "start"], [px - 4 - w, "end"]]) {
        if (x0 >= Math.max(left, rowEnd[r] + 6) && x0 + w <= right) {
          mk.row = r; mk.anchor = anchor; mk.lx = anchor === "start" ? px + 4 : px - 4;
          rowEnd[r] = x0 + w;
          break;
        }
      }
    }
  }
  return placed;
}

const labelWidth = (text) => textWidth(text, "600 10.5px") + 2; // .marker text, in viewBox units (about CSS px)

/**
 * A line chart. series: [{name, color, dash, points: [[x, y], ...], step, id}]; markers:
 * [{x, label, title}] (vertical lines, e.g. learning-rate changes). Options: logY, smoothing
 * (0..0.99, the raw line stays faint behind), xDomain [a, b] (a zoom), onZoom(domain|null)
 * (drag across the plot to zoom, double-click to reset). Returns a <div class="chart">.
 */
export function lineChart({ series, xLabel = "epoch", yLabel = "", markers = [], width = 440, height = 230,
  integerX = true, yFormat = null, xFormat = fmtNum, empty = "no values yet", showLegend = true,
  logY = false, smoothing = 0, xDomain = null, onZoom = null }) {
  const m = { top: 22, right: 14, bottom: 36, left: 54 };
  const iw = width - m.left - m.right, ih = height - m.top - m.bottom;
  const wrap = h("div", { class: "chart" });
  if (showLegend) wrap.append(legend(series));
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart-svg", role: "img",
    "aria-label": `${series.map((x) => x.name).join(", ")} by ${xLabel}` });
  wrap.append(svg);
  const finite = (v) => typeof v === "number" && Number.isFinite(v) && (!logY || v > 0);
  const xsAll = extent(series.flatMap((x) => x.points.map((p) => p[0])).concat(markers.map((mk) => mk.x)));
  let [x0, x1] = xDomain || xsAll || [0, 1];
  if (x0 === x1) { x0 -= 0.5; x1 += 0.5; } // one epoch: centred, no negative epoch on the axis
  const inView = (x) => x >= x0 && x <= x1;
  const drawn = series.map((se) => ({ ...se, raw: se.points, points: smooth(se.points, se.step ? 0 : smoothing) }));
  const ys = extent(drawn.flatMap((x) => x.points.concat(smoothing && !x.step ? x.raw : [])
    .filter((p) => inView(p[0]) && finite(p[1])).map((p) => p[1])));
  svg.dataset.x0 = String(x0); svg.dataset.x1 = String(x1); svg.dataset.log = logY ? "1" : "0";
  if (!xsAll || !ys) {
    svg.append(s("text", { x: width / 2, y: height / 2, class: "chart-empty", "text-anchor": "middle",
      text: xsAll && logY ? "no values above 0 for a log scale" : empty }));
    return wrap;
  }
  let Y, yTicks;
  if (logY) {
    const lo = Math.log10(ys[0]), hi = Math.log10(ys[1]);
    const [l0, l1] = hi > lo ? [lo - (hi - lo) * 0.06, hi + (hi - lo) * 0.06] : [lo - 0.5, hi + 0.5];
    Y = (v) => m.top + ih - ((Math.log10(v) - l0) / (l1 - l0)) * ih;
    yTicks = logTicks(10 ** l0, 10 ** l1);
  } else {
    const [y0, y1] = padDomain(ys);
    Y = (v) => m.top + ih - ((v - y0) / (y1 - y0)) * ih;
    yTicks = niceTicks(y0, y1, 5);
  }
  const X = (v) => m.left + ((v - x0) / (x1 - x0)) * iw;
  const clipId = `clip${++clipSeq}`;
  svg.append(s("defs", {}, s("clipPath", { id: clipId }, s("rect", { x: m.left, y: m.top - 2, width: iw, height: ih + 4 }))));
  const g = s("g");
  svg.append(g);
  const yFmt = yFormat || (logY ? fmtNum : tickFormat(yTicks));
  for (const t of yTicks) {
    g.append(s("line", { x1: m.left, x2: m.left + iw, y1: Y(t), y2: Y(t), class: "grid" }));
    g.append(s("text", { x: m.left - 6, y: Y(t) + 4, "text-anchor": "end", class: "tick", text: yFmt(t) }));
  }
  const span = x1 - x0;
  const xTicks = niceTicks(x0, x1, Math.min(8, Math.max(2, integerX ? Math.round(span) : 6)), integerX && span >= 2);
  for (const t of xTicks) {
    g.append(s("line", { x1: X(t), x2: X(t), y1: m.top + ih, y2: m.top + ih + 4, class: "axis" }));
    g.append(s("text", { x: X(t), y: m.top + ih + 17, "text-anchor": "middle", class: "tick", text: xFormat(t) }));
  }
  g.append(s("line", { x1: m.left, x2: m.left + iw, y1: m.top + ih, y2: m.top + ih, class: "axis" }));
  g.append(s("line", { x1: m.left, x2: m.left, y1: m.top, y2: m.top + ih, class: "axis" }));
  g.append(s("text", { x: m.left + iw / 2, y: height - 4, "text-anchor": "middle", class: "axis-label",
    text: xLabel }));
  if (logY) g.append(s("text", { x: m.left + 4, y: m.top + ih - 4, class: "axis-label log-note", text: "log scale" }));
  if (yLabel) {
    g.append(s("text", { x: 12, y: m.top + ih / 2, "text-anchor": "middle", class: "axis-label",
      transform: `rotate(-90 12 ${m.top + ih / 2})`, text: yLabel }));
  }
  const marks = placeMarkers(markers.filter((mk) => inView(mk.x)), X, [m.left, m.left + iw], labelWidth);
  for (const mk of marks) {
    const mg = s("g", { class: "marker", dataset: { x: String(mk.x) } });
    mg.append(s("line", { x1: X(mk.x), x2: X(mk.x), y1: m.top, y2: m.top + ih }));
    // the flag above the plot: hovering it (it is outside the overlay) shows the details
    mg.append(s("path", { class: "flag", d: `M${X(mk.x) - 4},${m.top - 9}h8l-4,7z` }));
    if (mk.row !== null && mk.row !== undefined) {
      mg.append(s("text", { x: mk.lx, y: m.top + 11 + mk.row * 13, "text-anchor": mk.anchor, text: mk.label }));
    }
    mg.append(s("title", { text: mk.title || mk.label || "" }));
    g.append(mg);
  }
  const plot = s("g", { "clip-path": `url(#${clipId})` });
  g.append(plot);
  const visible = Math.max(0, ...drawn.map((x) => x.points.filter((p) => inView(p[0])).length));
  const dense = visible > 60; // long runs: lines only, no dots
  for (const se of drawn) {
    const sg = s("g", { class: ["series", dense ? "dense" : ""], dataset: { series: se.id || se.name } });
    if (smoothing && !se.step) sg.append(s("path", { d: pathOf(se.raw, X, Y, finite, false, x1), class: "raw", fill: "none",
      stroke: se.color, "stroke-width": 1.2, "stroke-dasharray": se.dash ? "6 4" : null }));
    sg.append(s("path", { d: pathOf(se.points, X, Y, finite, se.step, x1), class: "line", fill: "none", stroke: se.color,
      "stroke-width": dense ? 1.6 : 2, "stroke-dasharray": se.dash ? "6 4" : null, "stroke-linejoin": "round" }));
    if (!dense) {
      se.points.forEach(([x, y], i) => {
        if (!finite(y) || !inView(x)) return;
        sg.append(s("circle", { cx: X(x).toFixed(1), cy: Y(y).toFixed(1), r: 3.2, fill: se.color,
          class: "pt", dataset: { x: String(x), y: String(se.raw[i][1]) } }));
      });
    }
    plot.append(sg);
  }
  hover({ wrap, svg, drawn, marks, m, iw, ih, x0, x1, X, xLabel, xFormat, onZoom });
  return wrap;
}

let clipSeq = 0;

/** The SVG path of points (y values that are not finite skipped, the line joined across them). */
function pathOf(points, X, Y, finite, step, xEnd) {
  let d = "", prev = null;
  for (const [x, y] of points) {
    if (!finite(y) || typeof x !== "number") continue;
    if (prev === null) d += `M${X(x).toFixed(1)},${Y(y).toFixed(1)}`;
    else if (step) d += `H${X(x).toFixed(1)}V${Y(y).toFixed(1)}`;
    else d += `L${X(x).toFixed(1)},${Y(y).toFixed(1)}`;
    prev = [x, y];
  }
  if (step && prev && prev[0] < xEnd) d += `H${X(xEnd).toFixed(1)}`;
  return d;
}

/** The point of `points` nearest to x (null when x is outside the series' own range). */
function nearest(points, x) {
  let best = null;
  for (const p of points) {
    if (typeof p[1] !== "number" || !Number.isFinite(p[1])) continue;
    if (best === null || Math.abs(p[0] - x) < Math.abs(best[0] - x)) best = p;
  }
  if (!best) return null;
  const xs = points.map((p) => p[0]);
  const lo = Math.min(...xs), hi = Math.max(...xs);
  const slack = xs.length > 1 ? (hi - lo) / (xs.length - 1) / 2 : 0.5;
  return x < lo - slack || x > hi + slack ? { ended: x > hi ? hi : lo } : best;
}

/** The tooltip (every series at the cursor; a run that ended before says so) and the drag zoom. */
function hover({ wrap, svg, drawn, marks, m, iw, ih, x0, x1, X, xLabel, xFormat, onZoom }) {
  const cross = s("line", { class: "crosshair", y1: m.top, y2: m.top + ih, visibility: "hidden" });
  const brush = s("rect", { class: "brush", y: m.top, height: ih, width: 0, visibility: "hidden" });
  const tip = h("div", { class: "tooltip", hidden: true });
  svg.append(cross, brush);
  wrap.append(tip);
  const overlay = s("rect", { x: m.left, y: m.top, width: iw, height: ih, class: ["overlay", onZoom ? "zoomable" : ""] });
  svg.append(overlay);
  const toX = (ev) => {
    const pt = svg.createSVGPoint();
    pt.x = ev.clientX; pt.y = ev.clientY;
    const loc = pt.matrixTransform(svg.getScreenCTM().inverse());
    return Math.min(x1, Math.max(x0, x0 + ((loc.x - m.left) / iw) * (x1 - x0)));
  };
  let dragFrom = null;
  overlay.addEventListener("pointermove", (ev) => {
    const xv = toX(ev);
    if (dragFrom !== null) {
      brush.setAttribute("x", Math.min(X(dragFrom), X(xv)));
      brush.setAttribute("width", Math.abs(X(xv) - X(dragFrom)));
      brush.setAttribute("visibility", "visible");
    }
    const hits = drawn.map((se) => ({ se, p: nearest(se.points.filter((q) => q[0] >= x0 && q[0] <= x1), xv) }));
    const at = hits.find((x) => x.p && !x.p.ended)?.p?.[0] ?? xv;
    cross.setAttribute("x1", X(at)); cross.setAttribute("x2", X(at));
    cross.setAttribute("visibility", "visible");
    const mk = marks.find((k) => Math.abs(X(k.x) - X(at)) < 6);
    put(tip, h("div", { class: "tip-title", text: `${xLabel} ${xFormat(at)}` }),
      hits.map(({ se, p }) => (p ? h("div", {}, h("span", { class: "swatch", style: { background: se.color, borderColor: se.color } }),
        p.ended !== undefined ? `${se.name}: — (ends at ${xFormat(p.ended)})` :
          `${se.name}: ${fmtNum(p[1])}${se.points !== se.raw ? ` (raw ${fmtNum(se.raw.find((q) => q[0] === p[0])?.[1])})` : ""}`) : null)),
      mk ? h("div", { class: "tip-marker", text: mk.title || mk.label }) : null);
    tip.hidden = false;
    const box = wrap.getBoundingClientRect();
    const left = ev.clientX - box.left + 14;
    tip.style.left = `${Math.max(0, Math.min(left, box.width - 190))}px`;
    tip.style.top = `${ev.clientY - box.top + 10}px`;
  });
  overlay.addEventListener("pointerleave", () => {
    tip.hidden = true; cross.setAttribute("visibility", "hidden");
    dragFrom = null; brush.setAttribute("visibility", "hidden");
  });
  if (!onZoom) return;
  overlay.addEventListener("pointerdown", (ev) => { ev.preventDefault(); dragFrom = toX(ev); }); // mouse, pen or finger
  overlay.addEventListener("pointerup", (ev) => {
    if (dragFrom === null) return;
    const a = Math.min(dragFrom, toX(ev)), b = Math.max(dragFrom, toX(ev));
    dragFrom = null;
    brush.setAttribute("visibility", "hidden");
    if (X(b) - X(a) >= 6) onZoom([a, b]);
  });
  overlay.addEventListener("dblclick", () => onZoom(null));
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
