// The list of executions: status (killed detected), start, duration, hardware,
// hyperparameters and last metrics; filtering (words and expressions such as accuracy>0.9,
// kept in the address), sorting (best first), picking runs to compare. Live.

import { api } from "../api.js";
import { matchFilter, metricGoal, parseFilter, unknownFields } from "../metrics.js";
import { clear, executionHref, put, fmtAgo, fmtDuration, fmtNum, fmtTime, h, hardwareText, parseTime, statusBadge }
  from "../util.js";

const STATUSES = ["running", "finished", "failed", "killed"];

function hyperText(hp) {
  const parts = [];
  const has = (k) => hp[k] !== undefined && hp[k] !== null;
  if (has("optimizer_name")) parts.push(String(hp.optimizer_name));
  if (has("learning_rate")) parts.push(`lr ${fmtNum(hp.learning_rate)}`);
  if (has("num_epochs")) parts.push(`${fmtNum(hp.num_epochs)} epochs`);
  if (has("batch_size")) parts.push(`batch ${fmtNum(hp.batch_size)}`);
  if (has("num_layers")) parts.push(`${fmtNum(hp.num_layers)} layer${hp.num_layers === 1 ? "" : "s"}`);
  return parts.join(" · ") || "—";
}

const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);

/** A run's fields for the filter: hyperparameters, last-epoch metrics, test.<metric>, and its record. */
export function runFields(e) {
  const out = { ...e.hyperparameters, ...e.metrics };
  for (const [k, v] of Object.entries(e.test || {})) out[`test.${k}`] = v;
  Object.assign(out, { status: e.status.toLowerCase(), tag: e.tag, dataflow: e.dataflow, epochs: e.epochs,
    duration: e.duration_s, scientist: e.scientist, host: e.hardware?.host_name });
  return out;
}

const COLUMNS = [
  { key: "status", label: "Status", sort: (e) => e.status },
  { key: "tag", label: "Execution", sort: (e) => e.tag },
  { key: "start", label: "Started", sort: (e) => e.start_time || "" },
  { key: "duration", label: "Duration", sort: (e) => e.duration_s ?? -1, num: true },
  { key: "epochs", label: "Epochs", sort: (e) => e.epochs, num: true },
  { key: "loss", label: "Loss", sort: (e) => num(e.metrics.loss), num: true, goal: metricGoal("loss") },
  { key: "acc", label: "Accuracy", sort: (e) => num(e.metrics.accuracy), num: true, goal: metricGoal("accuracy") },
  { key: "vacc", label: "Val. acc.", sort: (e) => num(e.metrics.val_accuracy), num: true, goal: metricGoal("val_accuracy") },
  { key: "tacc", label: "Test acc.", sort: (e) => num(e.test.accuracy), num: true, goal: metricGoal("test accuracy") },
  { key: "hp", label: "Hyperparameters", sort: (e) => hyperText(e.hyperparameters) },
  { key: "hw", label: "Hardware", sort: (e) => hardwareText(e.hardware) },
];

export async function render(main, { query, ctx }) {
  const state = {
    filter: query.get("q") || "",
    status: query.get("status") || "",
    dataflow: query.get("dataflow") || "",
    sortKey: (query.get("sort") || "-start").replace(/^-/, ""),
    sortDir: (query.get("sort") || "-start").startsWith("-") ? -1 : 1,
    selected: new Set(),
    doc: null,
  };
  const count = h("span", { class: "subtle" });
  const compareBtn = h("button", { class: "btn primary", disabled: true, text: "Compare selected", onclick: () => {
    location.hash = `#/compare?${[...state.selected].map((t) => `run=${encodeURIComponent(t)}`).join("&")}`;
  } });
  const search = h("input", { type: "search", placeholder: "Filter: words, accuracy>0.9, lr<0.01, test.accuracy>=0.8…",
    value: state.filter, class: "search", "aria-label": "filter executions",
    title: "Words match the tag, dataflow, host, optimizer…; name<value, >, <=, >=, = , != and ~ (contains) compare " +
      "a hyperparameter (lr = learning_rate), a last-epoch metric (accuracy, val_loss), a test metric (test.accuracy), " +
      "epochs, duration (s) or status" });
  const hint = h("div", { class: "filter-hint subtle small", id: "filter-hint" });
  search.addEventListener("input", () => { state.filter = search.value; remember(); draw(); });
  const statusSel = h("select", { "aria-label": "status" }, h("option", { value: "", text: "All statuses" }),
    STATUSES.map((st) => h("option", { value: st, text: st, selected: st === state.status })));
  statusSel.addEventListener("change", () => { state.status = statusSel.value; remember(); draw(); });
  const flowSel = h("select", { "aria-label": "dataflow" }, h("option", { value: "", text: "All dataflows" }));
  flowSel.addEventListener("change", () => { state.dataflow = flowSel.value; remember(); draw(); });
  /** The filter lives in the address (#/?q=...&status=...): a reload or a shared link keeps it. */
  function remember() {
    const qs = new URLSearchParams();
    if (state.filter) qs.set("q", state.filter);
    if (state.status) qs.set("status", state.status);
    if (state.dataflow) qs.set("dataflow", state.dataflow);
    if (state.sortKey !== "start" || state.sortDir !== -1) qs.set("sort", `${state.sortDir > 0 ? "" : "-"}${state.sortKey}`);
    const text = qs.toString();
    history.replaceState(null, "", `${location.pathname}${location.search}#/${text ? `?${text}` : ""}`);
  }
  const head = h("thead");
  const body = h("tbody");
  const table = h("table", { class: "grid-table executions" }, head, body);
  const content = h("div");
  main.append(
    h("div", { class: "page-head" }, h("div", {}, h("h1", { text: "Executions" }), count),
      h("div", { class: "toolbar" }, search, statusSel, flowSel, compareBtn)),
    hint, content,
  );

  function drawHead() {
    clear(head).append(h("tr", {}, h("th", { class: "pick" }),
      COLUMNS.map((c) => h("th", {
        class: [c.num ? "num" : "", "sortable", state.sortKey === c.key ? (state.sortDir > 0 ? "asc" : "desc") : ""],
        onclick: () => {
          if (state.sortKey === c.key) state.sortDir = -state.sortDir;
          else { state.sortKey = c.key; state.sortDir = c.goal === "min" ? 1 : c.num || c.key === "start" ? -1 : 1; }
          remember();
          draw();
        },
        text: c.label,
      }))));
  }

  function matches(e, parsed) {
    if (state.status && e.status.toLowerCase() !== state.status) return false;
    if (state.dataflow && e.dataflow !== state.dataflow) return false;
    if (!parsed.terms.length) return true;
    const hay = [e.tag, e.dataflow, e.scientist, e.service, hardwareText(e.hardware), hyperText(e.hyperparameters)].join(" ");
    return matchFilter(parsed, runFields(e), hay);
  }

  function row(e) {
    const pick = h("input", { type: "checkbox", checked: state.selected.has(e.tag), "aria-label": `select ${e.tag}` });
    pick.addEventListener("change", () => {
      if (pick.checked) state.selected.add(e.tag); else state.selected.delete(e.tag);
      updateCompare();
    });
    const started = parseTime(e.start_time);
    const ago = started && state.doc ? (parseTime(state.doc.now) - started) / 1000 : null;
    const running = e.status === "RUNNING";
    return h("tr", { dataset: { tag: e.tag, status: e.status } },
      h("td", { class: "pick" }, pick),
      h("td", {}, statusBadge(e.status)),
      h("td", { class: "tag-cell" }, h("a", { href: executionHref(e.tag), class: "run-link", text: e.tag }),
        h("div", { class: "subtle small" }, e.dataflow || "", e.scientist ? ` · ${e.scientist}` : "",
          e.tasks.total ? ` · ${e.tasks.total} tasks` : "")),
      h("td", { title: fmtTime(e.start_time) }, fmtTime(e.start_time), h("div", { class: "subtle small", text: fmtAgo(ago) })),
      h("td", { class: "num" }, fmtDuration(e.duration_s),
        running && e.idle_s > 10 ? h("div", { class: "subtle small", text: `quiet ${fmtDuration(e.idle_s)}` }) : null),
      h("td", { class: "num" }, e.epochs ? String(e.epochs) : "—",
        e.hyperparameters.num_epochs && running ? h("span", { class: "subtle", text: ` / ${fmtNum(e.hyperparameters.num_epochs)}` }) : null),
      h("td", { class: "num", text: fmtNum(e.metrics.loss) }),
      h("td", { class: "num", text: fmtNum(e.metrics.accuracy) }),
      h("td", { class: "num", text: fmtNum(e.metrics.val_accuracy) }),
      h("td", { class: "num strong", text: fmtNum(e.test.accuracy) }),
      h("td", { class: "small", title: hyperText(e.hyperparameters), text: hyperText(e.hyperparameters) }),
      h("td", { class: "small clip", title: hardwareText(e.hardware), text: hardwareText(e.hardware) }),
    );
  }

  function updateCompare() {
    const n = state.selected.size;
    compareBtn.textContent = n ? `Compare ${n} selected` : "Compare selected";
    compareBtn.disabled = n < 2;
    compareBtn.title = n < 2 ? "tick two or more runs" : "";
  }

  function draw() {
    const doc = state.doc;
    if (!doc) return;
    const all = doc.executions;
    for (const tag of [...state.selected]) if (!all.some((e) => e.tag === tag)) state.selected.delete(tag);
    const flows = [...new Set(all.map((e) => e.dataflow).filter(Boolean))].sort();
    if (flowSel.options.length - 1 !== flows.length) {
      put(flowSel, h("option", { value: "", text: "All dataflows" }),
        flows.map((f) => h("option", { value: f, text: f, selected: f === state.dataflow })));
    }
    const running = all.filter((e) => e.status === "RUNNING").length;
    count.textContent = `${all.length} run${all.length === 1 ? "" : "s"}${running ? ` · ${running} running` : ""} · live`;
    clear(content);
    if (!all.length) {
      const base = `${location.protocol}//${location.host}`;
      content.append(h("div", { class: "empty card", id: "no-runs" },
        h("h2", { text: "No runs yet" }),
        h("p", { text: "Runs appear here, live, as soon as a training sends its first span to this collector." }),
        h("p", { text: "Zero code, for a Keras or PyTorch script:" }),
        h("pre", { text: `DLPROV_ENDPOINT=${base} opentelemetry-instrument python train.py` }),
        h("p", { text: "Or from Python:" }),
        h("pre", { text: `import dlprov_otel\ndlprov_otel.configure(endpoint="${base}")` }),
        h("p", {}, "Or run ", h("code", { text: "dlprov demo" }), " and open its store with ",
          h("code", { text: "dlprov ui --store ./dlprov-data" }), ".")));
      return;
    }
    const col = COLUMNS.find((c) => c.key === state.sortKey) || COLUMNS[2];
    const parsed = parseFilter(state.filter);
    const unknown = unknownFields(parsed, all.map(runFields));
    hint.textContent = unknown.length ? `No run has ${unknown.map((k) => `“${k}”`).join(", ")}: ` +
      "names are hyperparameters (lr, batch_size…), last-epoch metrics (accuracy, val_loss…), test.<metric>, epochs, duration, status." : "";
    const shown = all.filter((e) => matches(e, parsed)).sort((a, b) => {
      const x = col.sort(a), y = col.sort(b);
      if (x === y) return 0;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * state.sortDir;
    });
    drawHead();
    clear(body).append(...shown.map(row));
    if (!shown.length) {
      body.append(h("tr", {}, h("td", { colspan: COLUMNS.length + 1, class: "empty-row",
        text: "No execution matches the filter." })));
    }
    content.append(h("div", { class: "table-wrap card flush" }, table));
    updateCompare();
  }

  const placeholder = h("p", { class: "loading", text: "Loading executions…" });
  content.append(placeholder);
  ctx.poll(async () => {
    try {
      state.doc = await api.executions();
    } catch (err) {
      if (!state.doc) clear(content).append(h("div", { class: "error-box", text: `Cannot list the executions: ${err.message}` }));
      throw err;
    }
    draw();
  }, 2000);
}
