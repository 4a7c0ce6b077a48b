// A small layered ("Sugiyama") graph layout and its SVG drawing, for the dataflow and the
// lineage graphs: layers by longest path, dummy nodes on long edges, barycenter ordering,
// and coordinates from an isotonic regression (nodes as close to their neighbours as their
// order allows).

import { h, s } from "./util.js";

let markerSeq = 0;
const ctx = document.createElement("canvas").getContext("2d");

/** Width of `text` in pixels in `font` (CSS font shorthand; "11px" alone: the page's family). */
export function textWidth(text, font = "12px") {
  ctx.font = /^[\d\s.a-z]*px$/.test(font) ? `${font} ${getComputedStyle(document.body).fontFamily}` : font;
  return ctx.measureText(String(text)).width;
}

function breakCycles(ids, out) {
  const state = new Map();
  const reversed = new Set();
  const visit = (v) => {
    state.set(v, 1);
    for (const w of out.get(v)) {
      if (state.get(w) === 1) reversed.add(`${v}\u0000${w}`);
      else if (!state.has(w)) visit(w);
    }
    state.set(v, 2);
  };
  for (const v of ids) if (!state.has(v)) visit(v);
  return reversed;
}

/** Pool-adjacent-violators: the nondecreasing sequence closest to `q` (least squares). */
function isotonic(q) {
  const blocks = [];
  for (const v of q) {
    blocks.push({ sum: v, n: 1 });
    while (blocks.length > 1 && blocks[blocks.length - 2].sum / blocks[blocks.length - 2].n
      > blocks[blocks.length - 1].sum / blocks[blocks.length - 1].n) {
      const b = blocks.pop();
      blocks[blocks.length - 1].sum += b.sum;
      blocks[blocks.length - 1].n += b.n;
    }
  }
  return blocks.flatMap((b) => Array(b.n).fill(b.sum / b.n));
}

/**
 * Lay out nodes [{id, w, h}] and edges [{from, to}] left to right (dir "LR") or top to
 * bottom ("TB"). Returns {width, height, nodes: Map(id -> {x, y, w, h}), edges: [{edge, points}]}.
 */
export function layoutGraph(nodes, edges, { dir = "LR", rankSep = 60, nodeSep = 16, margin = 12 } = {}) {
  const LR = dir === "LR";
  const ids = nodes.map((n) => n.id);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const good = edges.filter((e) => byId.has(e.from) && byId.has(e.to) && e.from !== e.to);
  const out = new Map(ids.map((id) => [id, []]));
  for (const e of good) out.get(e.from).push(e.to);
  const reversed = breakCycles(ids, out);
  const dag = good.map((e) => (reversed.has(`${e.from}\u0000${e.to}`) ? { ...e, from: e.to, to: e.from, rev: true } : e));
  const preds = new Map(ids.map((id) => [id, []]));
  const succs = new Map(ids.map((id) => [id, []]));
  for (const e of dag) { preds.get(e.to).push(e.from); succs.get(e.from).push(e.to); }

  // layers: longest path from the sources; a source then moves next to its first consumer
  const layer = new Map();
  const depth = (v, seen = new Set()) => {
    if (layer.has(v)) return layer.get(v);
    seen.add(v);
    const l = Math.max(-1, ...preds.get(v).filter((p) => !seen.has(p)).map((p) => depth(p, seen))) + 1;
    layer.set(v, l);
    return l;
  };
  ids.forEach((v) => depth(v));
  for (const v of ids) {
    if (!preds.get(v).length && succs.get(v).length) layer.set(v, Math.min(...succs.get(v).map((w) => layer.get(w))) - 1);
  }

  // dummy nodes on edges that span several layers
  const size = new Map(nodes.map((n) => [n.id, LR ? { r: n.w, o: n.h } : { r: n.h, o: n.w }]));
  const chains = [];
  const adjUp = new Map(ids.map((id) => [id, []]));
  const adjDown = new Map(ids.map((id) => [id, []]));
  let dummy = 0;
  for (const e of dag) {
    const chain = [e.from];
    for (let l = layer.get(e.from) + 1; l < layer.get(e.to); l++) {
      const d = `\u0000d${dummy++}`;
      layer.set(d, l);
      size.set(d, { r: 0, o: 4 });
      adjUp.set(d, []); adjDown.set(d, []);
      chain.push(d);
    }
    chain.push(e.to);
    for (let i = 0; i + 1 < chain.length; i++) { adjDown.get(chain[i]).push(chain[i + 1]); adjUp.get(chain[i + 1]).push(chain[i]); }
    chains.push({ edge: e, chain });
  }
  const nLayers = Math.max(0, ...layer.values()) + 1;
  const layers = Array.from({ length: nLayers }, () => []);
  for (const v of layer.keys()) layers[layer.get(v)].push(v);

  // ordering: barycenters, sweeping down and up
  const pos = new Map();
  layers.forEach((L) => L.forEach((v, i) => pos.set(v, i)));
  const sweep = (L, adj) => {
    const bary = new Map(L.map((v) => {
      const ns = adj.get(v);
      return [v, ns.length ? ns.reduce((a, w) => a + pos.get(w), 0) / ns.length : pos.get(v)];
    }));
    L.sort((a, b) => bary.get(a) - bary.get(b) || pos.get(a) - pos.get(b));
    L.forEach((v, i) => pos.set(v, i));
  };
  for (let it = 0; it < 12; it++) {
    if (it % 2 === 0) for (let l = 1; l < nLayers; l++) sweep(layers[l], adjUp);
    else for (let l = nLayers - 2; l >= 0; l--) sweep(layers[l], adjDown);
  }

  // coordinates along the order axis
  const coord = new Map();
  for (const L of layers) {
    let c = 0;
    L.forEach((v, i) => {
      if (i) c += size.get(L[i - 1]).o / 2 + nodeSep + size.get(v).o / 2;
      coord.set(v, c);
    });
    const mid = c / 2;
    L.forEach((v) => coord.set(v, coord.get(v) - mid));
  }
  const place = (L, adj) => {
    const desired = L.map((v) => {
      const ns = adj.get(v);
      return ns.length ? ns.reduce((a, w) => a + coord.get(w), 0) / ns.length : coord.get(v);
    });
    const offset = [0];
    for (let i = 1; i < L.length; i++) offset.push(offset[i - 1] + size.get(L[i - 1]).o / 2 + nodeSep + size.get(L[i]).o / 2);
    const fitted = isotonic(desired.map((d, i) => d - offset[i]));
    L.forEach((v, i) => coord.set(v, fitted[i] + offset[i]));
  };
  const both = new Map([...adjUp.keys()].map((v) => [v, [...adjUp.get(v), ...adjDown.get(v)]]));
  for (let it = 0; it < 16; it++) {
    if (it % 3 === 0) for (let l = 1; l < nLayers; l++) place(layers[l], adjUp);
    else if (it % 3 === 1) for (let l = nLayers - 2; l >= 0; l--) place(layers[l], adjDown);
    else for (let l = 0; l < nLayers; l++) place(layers[l], both);
  }

  // coordinates along the rank axis: one band per layer
  const bandSize = layers.map((L) => Math.max(0, ...L.map((v) => size.get(v).r)));
  const bandStart = [];
  let r = margin;
  for (let l = 0; l < nLayers; l++) { bandStart.push(r); r += bandSize[l] + rankSep; }
  const minO = Math.min(...[...coord.entries()].map(([v, c]) => c - size.get(v).o / 2));
  const maxO = Math.max(...[...coord.entries()].map(([v, c]) => c + size.get(v).o / 2));
  const center = (v) => {
    const l = layer.get(v);
    const rc = bandStart[l] + bandSize[l] / 2;
    const oc = coord.get(v) - minO + margin;
    return LR ? [rc, oc] : [oc, rc];
  };
  const boxes = new Map();
  for (const n of nodes) {
    const [cx, cy] = center(n.id);
    boxes.set(n.id, { x: cx - n.w / 2, y: cy - n.h / 2, w: n.w, h: n.h });
  }
  const port = (id, outgoing) => {
    const b = boxes.get(id);
    if (LR) return [outgoing ? b.x + b.w : b.x, b.y + b.h / 2];
    return [b.x + b.w / 2, outgoing ? b.y + b.h : b.y];
  };
  const routed = chains.map(({ edge, chain }) => {
    const pts = [port(chain[0], true), ...chain.slice(1, -1).map(center), port(chain[chain.length - 1], false)];
    return { edge, points: edge.rev ? pts.reverse() : pts };
  });
  const extentR = r - rankSep + margin;
  const extentO = maxO - minO + 2 * margin;
  return { width: LR ? extentR : extentO, height: LR ? extentO : extentR, nodes: boxes, edges: routed, dir };
}

function pathThrough(points, LR) {
  let d = `M${points[0][0].toFixed(1)},${points[0][1].toFixed(1)}`;
  for (let i = 1; i < points.length; i++) {
    const [x0, y0] = points[i - 1], [x1, y1] = points[i];
    if (LR) {
      const dx = (x1 - x0) / 2;
      d += `C${(x0 + dx).toFixed(1)},${y0.toFixed(1)} ${(x1 - dx).toFixed(1)},${y1.toFixed(1)} ${x1.toFixed(1)},${y1.toFixed(1)}`;
    } else {
      const dy = (y1 - y0) / 2;
      d += `C${x0.toFixed(1)},${(y0 + dy).toFixed(1)} ${x1.toFixed(1)},${(y1 - dy).toFixed(1)} ${x1.toFixed(1)},${y1.toFixed(1)}`;
    }
  }
  return d;
}

/**
 * Draw a laid-out graph. drawNode(node, box) returns an SVG element placed at the box;
 * edgeClass(edge) names the edge's CSS class. Returns the <svg>.
 */
export function drawGraph(nodes, edges, { drawNode, edgeClass = () => "edge", dir = "LR", label = "graph",
  rankSep, nodeSep } = {}) {
  const lay = layoutGraph(nodes, edges, { dir, rankSep, nodeSep });
  const id = `arrow${++markerSeq}`;
  const svg = s("svg", { viewBox: `0 0 ${Math.ceil(lay.width)} ${Math.ceil(lay.height)}`, class: "graph-svg",
    width: Math.ceil(lay.width), height: Math.ceil(lay.height), role: "img", "aria-label": label });
  svg.append(s("defs", {}, s("marker", { id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7,
    orient: "auto-start-reverse" }, s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }))));
  const eg = s("g", { class: "edges" });
  for (const { edge, points } of lay.edges) {
    eg.append(s("path", { d: pathThrough(points, dir === "LR"), class: edgeClass(edge), "marker-end": `url(#${id})`,
      dataset: { from: edge.from, to: edge.to } }));
  }
  svg.append(eg);
  const ng = s("g", { class: "nodes" });
  const byId = new Map(nodes.map((n) => [n.id, n]));
  for (const [nid, box] of lay.nodes) {
    const el = drawNode(byId.get(nid), box);
    el.setAttribute("transform", `translate(${box.x.toFixed(1)},${box.y.toFixed(1)})`);
    ng.append(el);
  }
  svg.append(ng);
  return svg;
}

/**
 * Fit, zoom and pan for a graph drawn by drawGraph inside `wrap` (called once `wrap` is in the
 * document): buttons Fit, + and −, ctrl/⌘ + wheel (or a pinch) zooms at the pointer, dragging
 * pans. The view is the SVG's viewBox; `svg.dataset.scale` holds the zoom (1: natural size).
 */
export function panZoom(wrap, { maxHeight = 600, minScale = 0.6 } = {}) {
  const svg = wrap.querySelector("svg");
  if (!svg) return null;
  const W = Number(svg.getAttribute("width")), H = Number(svg.getAttribute("height"));
  const room = Math.max(120, wrap.clientWidth - 2);
  const fitScale = Math.min(1.5, room / W, maxHeight / H);
  const shownH = Math.max(140, Math.min(maxHeight, Math.ceil(H * Math.max(fitScale, Math.min(1, minScale)))));
  svg.setAttribute("width", "100%");
  svg.setAttribute("height", String(shownH));
  svg.setAttribute("preserveAspectRatio", "xMinYMin meet");
  const view = { x: 0, y: 0, scale: 1 };
  const size = () => ({ w: svg.clientWidth || room, h: shownH });
  const apply = () => {
    const { w, h: hh } = size();
    svg.setAttribute("viewBox", `${view.x.toFixed(2)} ${view.y.toFixed(2)} ${(w / view.scale).toFixed(2)} ${(hh / view.scale).toFixed(2)}`);
    svg.dataset.scale = view.scale.toFixed(4);
  };
  const fit = () => {
    const { w, h: hh } = size();
    view.scale = Math.min(1.5, w / W, hh / H);
    view.x = -(w / view.scale - W) / 2;
    view.y = -(hh / view.scale - H) / 2;
    apply();
  };
  const zoomAt = (factor, px, py) => { // px, py: the point (in screen pixels from the SVG's corner) kept still
    const next = Math.min(4, Math.max(0.1, view.scale * factor));
    view.x += px / view.scale - px / next;
    view.y += py / view.scale - py / next;
    view.scale = next;
    apply();
  };
  const centre = () => { const { w, h: hh } = size(); return [w / 2, hh / 2]; };
  const tools = h("div", { class: "graph-tools" },
    h("button", { class: "btn small", "data-zoom": "fit", title: "show the whole graph", text: "Fit", onclick: fit }),
    h("button", { class: "btn small", "data-zoom": "in", title: "zoom in", text: "+", onclick: () => zoomAt(1.25, ...centre()) }),
    h("button", { class: "btn small", "data-zoom": "out", title: "zoom out", text: "−", onclick: () => zoomAt(0.8, ...centre()) }));
  wrap.classList.add("pannable");
  wrap.prepend(tools);
  svg.addEventListener("wheel", (ev) => {
    if (!ev.ctrlKey && !ev.metaKey) return; // a plain wheel scrolls the page
    ev.preventDefault();
    const r = svg.getBoundingClientRect();
    zoomAt(Math.exp(-ev.deltaY * 0.002), ev.clientX - r.left, ev.clientY - r.top);
  }, { passive: false });
  let drag = null;
  svg.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0) return;
    drag = { id: ev.pointerId, x: ev.clientX, y: ev.clientY, vx: view.x, vy: view.y, moved: false };
  });
  svg.addEventListener("pointermove", (ev) => {
    if (!drag || ev.pointerId !== drag.id) return;
    const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    if (!drag.moved) {
      if (Math.abs(dx) + Math.abs(dy) < 4) return;
      drag.moved = true; // a pan, not a click: keep the pointer until it is released
      svg.setPointerCapture(ev.pointerId);
      wrap.classList.add("panning");
    }
    view.x = drag.vx - dx / view.scale;
    view.y = drag.vy - dy / view.scale;
    apply();
  });
  const end = (ev) => {
    if (!drag || ev.pointerId !== drag.id) return;
    if (drag.moved) { // the click that ends a pan picks nothing
      const swallow = (e) => e.stopPropagation();
      svg.addEventListener("click", swallow, { capture: true, once: true });
      setTimeout(() => svg.removeEventListener("click", swallow, { capture: true }), 0);
    }
    drag = null;
    wrap.classList.remove("panning");
  };
  svg.addEventListener("pointerup", end);
  svg.addEventListener("pointercancel", end);
  // the start: the whole graph when it stays readable, else its left (or top) part at a readable size
  if (fitScale >= minScale) fit();
  else { view.scale = minScale; apply(); }
  return { fit, zoomAt, view };
}
