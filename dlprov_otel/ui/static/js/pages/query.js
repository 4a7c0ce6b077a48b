// A read-only SQL console over the store (the collector's /v1/sql and its guard): results as
// a table, CSV download, the seed's queries one click away.

import { api, sql } from "../api.js";
import { cell, clear, h, put, saveFile, toCSV } from "../util.js";

const MAX_SHOWN = 1000;

// The seed's queries come from the server (the store's schema module names the tables).
async function examples(flow) {
  const queries = await api.queries(flow);
  return [...queries.map((q) => [q.label, q.sql]), ["tables", "\\d"]];
}

export async function render(main, { query }) {
  const initial = query.get("sql") || "";
  const editor = h("textarea", { class: "sql-editor", spellcheck: "false", "aria-label": "SQL", rows: 5, value: initial });
  const runBtn = h("button", { class: "btn primary", id: "run-sql", text: "Run" });
  const csvBtn = h("button", { class: "btn", id: "csv", text: "Download CSV", disabled: true });
  const status = h("span", { class: "subtle small", id: "sql-status" });
  const result = h("div", { id: "sql-result" });
  const exampleBox = h("div", { class: "examples" });
  main.append(
    h("div", { class: "page-head" }, h("div", {}, h("h1", { text: "Query" }),
      h("span", { class: "subtle", text: "read-only SQL over the provenance store (MonetDB); statements run in one session" }))),
    h("section", { class: "card" }, exampleBox, editor,
      h("div", { class: "sql-actions" }, runBtn, csvBtn, status, h("span", { class: "subtle small hint", text: "Ctrl+Enter runs" }))),
    result,
  );
  let last = null;
  const fill = async (flow) => {
    const list = await examples(flow);
    if (!editor.value) editor.value = (list.find(([label]) => label === "executions") || list[0])[1];
    put(exampleBox, h("span", { class: "subtle small", text: "Examples:" }), list.map(([label, text]) =>
      h("button", { class: "chip mono", title: `${label}: run it`, text, dataset: { example: label },
        onclick: () => { editor.value = text; run(); } })));
  };
  api.dataflows().then((flows) => {
    const flow = !flows.length || flows.some((f) => f.tag === "mnist") ? "mnist" : flows[0].tag;
    return fill(flow);
  }).catch(() => fill("mnist").catch(() => {}));

  async function run() {
    const text = editor.value.trim();
    if (!text) return;
    history.replaceState(null, "", `#/query?sql=${encodeURIComponent(text)}`);
    runBtn.disabled = true;
    status.textContent = "running…";
    const t0 = performance.now();
    try {
      const doc = await sql(text);
      last = doc;
      const ms = Math.round(performance.now() - t0);
      const n = doc.rows.length;
      status.textContent = doc.columns.length ? `${n} row${n === 1 ? "" : "s"} · ${ms} ms` : `OK · ${ms} ms`;
      csvBtn.disabled = !doc.columns.length;
      const shown = doc.rows.slice(0, MAX_SHOWN);
      clear(result).append(doc.columns.length ? h("section", { class: "card flush" }, h("div", { class: "table-wrap tall" },
        h("table", { class: "grid-table compact results" },
          h("thead", {}, h("tr", {}, doc.columns.map((c) => h("th", { text: c })))),
          h("tbody", {}, shown.map((r) => h("tr", {}, r.map((v) => h("td", { class: typeof v === "number" ? "num" : "" }, cell(v, 70)))))))),
        n > MAX_SHOWN ? h("p", { class: "subtle small pad", text: `showing ${MAX_SHOWN} of ${n} rows; the CSV has them all` }) : null,
        n === 0 ? h("p", { class: "empty-inline pad", text: "No rows." }) : null) :
        h("div", { class: "card" }, h("p", { text: "The statement returned no result set." })));
    } catch (err) {
      last = null;
      csvBtn.disabled = true;
      status.textContent = "";
      const refused = err.status === 403;
      clear(result).append(h("div", { class: refused ? "error-box refused" : "error-box", id: "sql-error" },
        h("strong", { text: refused ? "Refused. " : err.status === 400 ? "Query failed. " : `Error ${err.status || ""}. ` }),
        err.message.replace(/^refused: /, ""),
        refused ? h("div", { class: "small", text: "This console is read-only: SELECT, WITH, VALUES, EXPLAIN, PLAN, SET SCHEMA and \\d." }) : null));
    } finally {
      runBtn.disabled = false;
    }
  }
  runBtn.addEventListener("click", run);
  editor.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); }
  });
  csvBtn.addEventListener("click", () => {
    if (last) saveFile("dlprov-query.csv", toCSV(last.columns, last.rows), "text/csv");
  });
  if (query.get("sql")) run();
}
