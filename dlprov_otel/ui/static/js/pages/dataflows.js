// Dataflows: the list, and one dataflow's prospective graph (transformations, their input and
// output sets with typed attributes) drawn from the catalog tables.

import { api, downloadLink } from "../api.js";
import { drawGraph, panZoom, textWidth } from "../graph.js";
import { clear, executionHref, fmtTime, h, put, s, statusBadge } from "../util.js";

export async function renderList(main, { ctx }) {
  const content = h("div", { class: "flow-list" }, h("p", { class: "loading", text: "Loading dataflows…" }));
  main.append(h("div", { class: "page-head" }, h("div", {}, h("h1", { text: "Dataflows" }),
    h("span", { class: "subtle", text: "prospective provenance: what a run is made of" }))), content);
  ctx.poll(async () => {
    const flows = await api.dataflows();
    clear(content);
    if (!flows.length) {
      content.append(h("div", { class: "empty card" }, h("h2", { text: "No dataflows yet" }),
        h("p", { text: "A dataflow is recorded when a training saves it (Dataflow(...).save()) or starts its first task." })));
      return;
    }
    for (const f of flows) {
      content.append(h("a", { class: "card flow-card", href: `#/dataflows/${encodeURIComponent(f.tag)}`, dataset: { dataflow: f.tag } },
        h("div", { class: "flow-name" }, h("strong", { text: f.tag }), h("span", { class: "pill", text: `v${f.version}` })),
        h("div", { class: "flow-chain", text: f.transformations.join(" → ") || "no transformations" }),
        h("div", { class: "subtle small", text: `${f.transformations.length} transformations · ${f.sets} sets · ` +
          `${f.executions} execution${f.executions === 1 ? "" : "s"}${f.last_run ? ` · last run ${fmtTime(f.last_run)}` : ""}` })));
    }
  }, 5000);
}

function graphOf(doc, onPick) {
  // the fonts of the CSS classes node-title, attr and attr-type
  const FONT = "600 12px", TYPE = "9.5px";
  const MONO = '11px ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace';
  const produced = new Set(doc.transformations.flatMap((t) => t.output));
  const nodes = [];
  for (const t of doc.transformations) {
    nodes.push({ id: `t:${t.tag}`, kind: "transformation", label: t.tag, w: Math.max(110, textWidth(t.tag, FONT) + 30), h: 38 });
  }
  for (const st of doc.sets) {
    const attrs = st.attributes.filter((a) => a.declared);
    const extra = st.attributes.length - attrs.length;
    const lines = attrs.map((a) => [a.name + (a.optional ? "?" : ""), a.type]);
    if (extra) lines.push([`+${extra} observed`, ""]);
    const w = Math.max(textWidth(st.tag, FONT) + 50, ...lines.map(([n, t]) => textWidth(n, MONO) + textWidth(t, TYPE) + 30));
    nodes.push({ id: `s:${st.tag}`, kind: "set", label: st.tag, set: st, lines, param: !produced.has(st.tag),
      w: Math.max(120, w), h: 28 + lines.length * 15 + 6 });
  }
  const edges = [];
  for (const t of doc.transformations) {
    for (const i of t.input) edges.push({ from: `s:${i}`, to: `t:${t.tag}` });
    for (const o of t.output) edges.push({ from: `t:${t.tag}`, to: `s:${o}` });
  }
  const drawNode = (n) => {
    if (n.kind === "transformation") {
      const g = s("g", { class: "node activity transformation", dataset: { node: n.id } });
      g.append(s("rect", { width: n.w, height: n.h, rx: 5 }),
        s("text", { x: n.w / 2, y: n.h / 2 + 4, "text-anchor": "middle", class: "node-title", text: n.label }),
        s("title", { text: `transformation ${n.label}` }));
      return g;
    }
    const g = s("g", { class: ["node", "set", n.param ? "param" : "dataset"], dataset: { node: n.id } });
    g.append(s("rect", { width: n.w, height: n.h, rx: 6 }), s("line", { x1: 0, x2: n.w, y1: 24, y2: 24, class: "divider" }),
      s("text", { x: 9, y: 16, class: "node-title", text: n.label }),
      s("text", { x: n.w - 9, y: 16, "text-anchor": "end", class: "node-count", text: n.set.elements ? `${n.set.elements}` : "" }));
    n.lines.forEach(([name, type], i) => {
      g.append(s("text", { x: 9, y: 40 + i * 15, class: type ? "attr" : "attr extra", text: name }),
        s("text", { x: n.w - 9, y: 40 + i * 15, "text-anchor": "end", class: "attr-type", text: type }));
    });
    g.append(s("title", { text: `set ${n.label}: ${n.set.elements} element(s) stored; click for its attributes` }));
    g.addEventListener("click", () => onPick(n.set));
    return g;
  };
  return drawGraph(nodes, edges, { drawNode, dir: "LR", rankSep: 44, nodeSep: 16, label: `dataflow ${doc.tag}` });
}

export async function renderOne(main, { params, query, ctx }) {
  const tag = params[0];
  const version = query.get("version");
  const body = h("div", {}, h("p", { class: "loading", text: "Loading…" }));
  main.append(h("div", { class: "crumbs" }, h("a", { href: "#/dataflows", text: "← Dataflows" })), body);
  let doc;
  try {
    doc = await api.dataflow(tag, version);
  } catch (err) {
    clear(body).append(h("div", { class: "empty card" }, h("h2", { text: err.status === 404 ? "No such dataflow" : "Cannot load the dataflow" }),
      h("p", { text: err.message })));
    return;
  }
  const picked = h("div", { class: "picked" });
  const pick = (st) => {
    put(picked, h("h3", {}, "Set ", h("code", { text: st.tag }), h("span", { class: "subtle small", text: ` · ${st.elements} element(s) in the store` })),
      h("table", { class: "grid-table compact" }, h("thead", {}, h("tr", {}, ["attribute", "type", "optional", "declared"].map((c) => h("th", { text: c })))),
        h("tbody", {}, st.attributes.map((a) => h("tr", {}, h("td", {}, h("code", { text: a.name })), h("td", { text: a.type }),
          h("td", { text: a.optional ? "yes" : "no" }), h("td", { text: a.declared ? "in the spec" : "observed" }))))));
  };
  const versionSel = h("select", { "aria-label": "version" }, doc.versions.map((v) => h("option", {
    value: v.version, text: `version ${v.version} · ${fmtTime(v.created_at)}`, selected: v.version === doc.version })));
  versionSel.addEventListener("change", () => { location.hash = `#/dataflows/${encodeURIComponent(tag)}?version=${versionSel.value}`; });
  const provBtns = [["json", "PROV-JSON"], ["provn", "PROV-N"], ["png", "PNG"]].map(([fmt, label]) => downloadLink(
    api.provPath(tag, fmt, "dataflows"), label, (err) => put(picked, h("div", { class: "error-box", text: `PROV ${label}: ${err.message}` })),
    { dataset: { prov: fmt } }));
  const graphWrap = h("div", { class: "graph-wrap" }, graphOf(doc, pick));
  clear(body).append(
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Dataflow ", h("code", { text: tag })),
      h("span", { class: "subtle", text: `${doc.transformations.length} transformations · ${doc.sets.length} sets · spec ${doc.spec_hash}` })),
      h("div", { class: "toolbar" }, versionSel, h("span", { class: "subtle small", text: "W3C PROV of all runs:" }), provBtns)),
    h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", { text: "Prospective graph" }),
      h("span", { class: "legend small" }, h("span", { class: "lg activity" }, "transformation"),
        h("span", { class: "lg param" }, "input parameters"), h("span", { class: "lg dataset" }, "data set"),
        h("span", { class: "subtle", text: "attribute? = optional · number = elements stored" }))),
    graphWrap, picked),
    h("div", { class: "two-col" },
      h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", { text: "Transformations" })),
        h("table", { class: "grid-table compact" }, h("thead", {}, h("tr", {}, ["transformation", "inputs", "outputs", "depends on"].map((c) => h("th", { text: c })))),
          h("tbody", {}, doc.transformations.map((t) => h("tr", {}, h("td", {}, h("strong", { text: t.tag })), h("td", { text: t.input.join(", ") }),
            h("td", { text: t.output.join(", ") }), h("td", { text: t.dependencies.join(", ") || "—" })))))),
      h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", { text: `Executions (${doc.executions.length})` })),
        doc.executions.length ? h("table", { class: "grid-table compact" }, h("tbody", {}, doc.executions.slice(0, 50).map((e) =>
          h("tr", {}, h("td", {}, statusBadge(e.status)), h("td", {}, h("a", { href: executionHref(e.tag), text: e.tag })),
            h("td", { class: "subtle", text: fmtTime(e.start_time) }))))) : h("p", { class: "empty-inline", text: "No runs of this dataflow yet." }))),
  );
  panZoom(graphWrap);
  const first = doc.sets.find((x) => x.tag === "itrainmodel") || doc.sets[0];
  if (first) pick(first);
  ctx.onLeave(() => {});
}
