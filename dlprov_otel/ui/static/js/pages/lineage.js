// "Where did this file come from?": drop a model, checkpoint or data file (its sha256 is
// computed here, in the browser; the file is not uploaded) or paste a digest, and see the
// run(s) that produced or used it: recipe, hyperparameters, input data digests, epochs and
// test metrics. The digest is kept in the address: #/lineage?digest=HEX.

import { api, downloadLink } from "../api.js";
import { sha256File } from "../sha256.js";
import { cell, clear, executionHref, fmtNum, fmtTime, h, statusBadge } from "../util.js";

const HEX = /^(?:sha256:)?([0-9a-f]{64})$/i;

/** A digest as typed or pasted ("sha256:" prefix, spaces, upper case), or null. */
export function normalDigest(text) {
  const m = HEX.exec(String(text || "").trim());
  return m ? m[1].toLowerCase() : null;
}

function kv(obj) {
  const entries = Object.entries(obj || {}).filter(([, v]) => v !== null && v !== undefined);
  if (!entries.length) return h("p", { class: "empty-inline", text: "none recorded" });
  return h("table", { class: "kv" }, h("tbody", {}, entries.map(([k, v]) => h("tr", {}, h("th", { text: k }), h("td", {}, cell(v, 90))))));
}

function digestLink(d) {
  const n = normalDigest(d);
  return n ? h("a", { class: "digest", href: `#/lineage?digest=${n}`, title: n, text: `${n.slice(0, 16)}…` }) : cell(d, 40);
}

const ROLE = { output: "produced by this run", input: "used by this run", recipe: "part of this run's recipe" };

function runCard(run) {
  const e = run.execution;
  const artifacts = run.artifacts.map((a) => h("li", { dataset: { role: a.role } },
    h("strong", { text: ROLE[a.role] || a.role }), ` — ${a.set}.${a.column}`,
    a.task ? ` of task ${a.task.dt_tag} #${a.task.id}` : "",
    Object.keys(a.values || {}).length ? h("div", { class: "subtle small" },
      Object.entries(a.values).filter(([k]) => k !== a.column).slice(0, 6).map(([k, v]) => `${k}: ${typeof v === "number" ? fmtNum(v) : v}`).join(" · ")) : ""));
  const recipeTable = (items) => h("div", { class: "table-wrap" }, h("table", { class: "grid-table compact recipe" },
    h("thead", {}, h("tr", {}, h("th", { text: "recipe" }), h("th", { text: "value" }), h("th", { text: "sha256" }))),
    h("tbody", {}, items.map((r) => h("tr", { dataset: { recipe: r.name } }, h("td", { class: "mono small", text: r.name }),
      h("td", { class: "recipe-value" }, cell(r.value, r.name === "git.diff" ? 400 : 120)),
      h("td", {}, r.digest ? digestLink(r.digest) : ""))))));
  const packages = run.recipe.filter((r) => r.name.startsWith("package."));
  const recipe = run.recipe.length ? h("div", {}, recipeTable(run.recipe.filter((r) => !r.name.startsWith("package."))),
    packages.length ? h("details", { class: "packages" }, h("summary", { text: `${packages.length} imported packages and their versions` }),
      recipeTable(packages)) : null) :
    h("p", { class: "empty-inline", text: "No recipe recorded (a run from before recipes were recorded)." });
  const inputs = run.inputs.length ? h("ul", { class: "inputs" }, run.inputs.map((i) => h("li", {},
    h("span", { class: "mono small", text: i.set }), " ",
    i.digest ? digestLink(i.digest) : h("span", { class: "subtle small", text: "no digest recorded" }),
    h("div", { class: "subtle small", text: Object.entries(i.values || {}).slice(0, 4)
      .map(([k, v]) => `${k}: ${typeof v === "number" ? fmtNum(v) : String(v).split("/").pop()}`).join(" · ") })))) :
    h("p", { class: "empty-inline", text: "No input data digests recorded." });
  const ep = run.epochs;
  const epochs = ep ? h("div", {}, h("p", { text: `${ep.count} epoch row(s) in ${ep.set}` }),
    h("div", { class: "two-col" }, h("div", {}, h("h4", { text: "last" }), kv(ep.last)),
      ep.best ? h("div", {}, h("h4", { text: `best ${ep.best.metric} (${ep.best.lower_is_better ? "lowest" : "highest"})` }),
        kv(ep.best.values)) : h("div"))) : h("p", { class: "empty-inline", text: "No per-epoch metrics." });
  return h("section", { class: "card lineage-run", dataset: { run: e.tag } },
    h("div", { class: "card-head" }, h("h2", {}, h("a", { href: executionHref(e.tag), class: "mono", text: e.tag })),
      statusBadge(e.status)),
    h("p", { class: "subtle small", text: `dataflow ${e.dataflow_tag || "—"} · started ${fmtTime(e.start_time)}` +
      `${e.end_time ? ` · ended ${fmtTime(e.end_time)}` : ""}${e.scientist ? ` · by ${e.scientist}` : ""}` }),
    h("ul", { class: "artifacts" }, artifacts),
    h("div", { class: "two-col" },
      h("div", {}, h("h3", { text: "Hyperparameters" }), run.hyperparameters.length ?
        run.hyperparameters.map((x) => kv(x.values)) : h("p", { class: "empty-inline", text: "none recorded" }),
      h("h3", { text: "Input data" }), inputs),
      h("div", {}, h("h3", { text: "Test metrics" }), run.test_metrics.length ? run.test_metrics.map((x) => kv(x.values)) :
        h("p", { class: "empty-inline", text: "none recorded" }), h("h3", { text: "Epochs" }), epochs)),
    h("h3", { text: "Recipe" }), recipe);
}

export async function render(main, { query }) {
  const status = h("div", { class: "subtle small", id: "digest-status" });
  const result = h("div", { id: "lineage-result" });
  const input = h("input", { type: "text", placeholder: "sha256 (64 hex digits, or sha256:…)", "aria-label": "digest",
    value: query.get("digest") || "", spellcheck: "false" });
  const fileInput = h("input", { type: "file", hidden: true, "aria-label": "file" });
  const zone = h("div", { class: "drop-zone", id: "drop-zone", tabindex: "0", role: "button" },
    h("strong", { text: "Drop a model, checkpoint or data file here" }), " or ",
    h("a", { href: "#", text: "choose one", onclick: (ev) => { ev.preventDefault(); fileInput.click(); } }),
    h("div", { class: "small", text: "Its sha256 is computed in this browser; the file is not sent anywhere." }));
  main.append(h("div", { class: "page-head" }, h("div", {}, h("h1", { text: "Lineage of a file" }),
    h("span", { class: "subtle", text: "which run, code, data and hyperparameters made it" }))),
  h("section", { class: "card" }, zone, fileInput,
    h("form", { class: "digest-form", onsubmit: (ev) => { ev.preventDefault(); look(input.value); } }, input,
      h("button", { class: "btn primary", type: "submit", text: "Look up" })), status), result);

  async function look(text, fileName = null) {
    const digest = normalDigest(text);
    if (!digest) {
      status.textContent = `“${String(text).trim().slice(0, 80)}” is not a sha256 (64 hexadecimal digits).`;
      return;
    }
    input.value = digest;
    history.replaceState(null, "", `${location.pathname}${location.search}#/lineage?digest=${digest}`);
    status.textContent = `${fileName ? `${fileName}: ` : ""}sha256 ${digest} — looking it up…`;
    clear(result);
    try {
      const doc = await api.lineage(digest);
      status.textContent = `${fileName ? `${fileName}: ` : ""}sha256 ${digest} — ${doc.runs.length} run(s)`;
      status.append(h("span", { class: "downloads prov-lineage" }, " W3C PROV of this lineage: ",
        [["json", "PROV-JSON"], ["provn", "PROV-N"], ["svg", "SVG"]].map(([fmt, label]) => downloadLink(
          api.lineageProvPath(digest, fmt), label,
          (err) => result.prepend(h("div", { class: "error-box", text: `PROV ${label}: ${err.message}` })),
          { dataset: { prov: fmt } }))));
      result.append(...doc.runs.map(runCard));
    } catch (err) {
      status.textContent = "";
      result.append(h("div", { class: err.status === 404 ? "warn-box" : "error-box", id: "lineage-missing" },
        h("strong", { text: err.status === 404 ? "Unknown file. " : "Lookup failed. " }),
        err.status === 404 ? `No stored artifact has sha256 ${digest}${fileName ? ` (${fileName})` : ""}.` : err.message));
    }
  }

  async function digestOf(file) {
    status.textContent = `${file.name}: computing its sha256…`;
    try {
      const hex = await sha256File(file, (f) => { status.textContent = `${file.name}: computing its sha256… ${Math.round(f * 100)}%`; });
      await look(hex, file.name);
    } catch (err) {
      status.textContent = `${file.name}: cannot read it (${err.message || err})`;
    }
  }
  fileInput.addEventListener("change", () => { if (fileInput.files[0]) digestOf(fileInput.files[0]); });
  zone.addEventListener("dragover", (ev) => { ev.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (ev) => {
    ev.preventDefault();
    zone.classList.remove("over");
    const file = ev.dataTransfer?.files?.[0];
    if (file) digestOf(file);
  });
  zone.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); fileInput.click(); } });
  input.addEventListener("paste", () => setTimeout(() => { if (normalDigest(input.value)) look(input.value); }, 0));
  if (query.get("digest")) look(query.get("digest"));
}
