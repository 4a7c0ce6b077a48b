// DOM and formatting helpers. Every value from the store goes through textContent or
// setAttribute, never innerHTML: run tags and attribute values are user data.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") el.textContent = String(v);
    else if (k === "class") el.setAttribute("class", Array.isArray(v) ? v.filter(Boolean).join(" ") : v);
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "value" && "value" in el) el.value = v;
    else if (k === "checked" || k === "disabled" || k === "selected") el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** An HTML element: h("a", {href: "#/", class: "x"}, "text", child). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** Replace the children of `el` (arrays flattened; null, undefined and false skipped). */
export function put(el, ...children) {
  clear(el);
  return build(el, {}, children);
}

/** A store timestamp (naive UTC ISO text) as a Date. */
export function parseTime(text) {
  if (!text) return null;
  const iso = /[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : text + "Z";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

export function fmtTime(value) {
  const d = value instanceof Date ? value : parseTime(value);
  if (!d) return "—";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${pad(Math.floor(seconds % 60))} s`;
  const hh = Math.floor(m / 60);
  if (hh < 48) return `${hh} h ${pad(m % 60)} min`;
  return `${Math.floor(hh / 24)} d ${hh % 24} h`;
}

export function fmtAgo(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 5) return "just now";
  return `${fmtDuration(seconds).replace(/ \d+ (s|min)$/, "")} ago`;
}

/** A number for people: 4 significant digits, integers as they are, tiny/huge in e-notation. */
export function fmtNum(v) {
  if (v === null || v === undefined || v === "") return "—";
  if (typeof v !== "number") return String(v);
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

export function fmtBytes(n) {
  if (!n) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(n < 10 && i ? 1 : 0)} ${units[i]}`;
}

/** A cell value for tables: numbers formatted, long text cut (the full text in a tooltip). */
export function cell(v, max = 60) {
  if (v === null || v === undefined) return h("span", { class: "null", text: "NULL" });
  const text = typeof v === "number" ? fmtNum(v) : String(v);
  if (text.length <= max) return text;
  return h("span", { title: text, text: text.slice(0, max - 1) + "…" });
}

export function statusBadge(status) {
  const st = (status || "UNKNOWN").toUpperCase();
  return h("span", { class: ["badge", `st-${st.toLowerCase()}`], dataset: { status: st } },
    st === "RUNNING" ? h("span", { class: "pulse" }) : null, st.toLowerCase());
}

export const enc = (tag) => encodeURIComponent(tag);

export function executionHref(tag) {
  return `#/executions/${enc(tag)}`;
}

export function hardwareText(hw) {
  if (!hw) return "—";
  const parts = [];
  if (hw.host_name) parts.push(hw.host_name);
  if (hw.cpu_model) parts.push(`${hw.cpu_model}${hw.cpu_count ? ` ×${hw.cpu_count}` : ""}`);
  const gpus = Array.isArray(hw.gpus) ? hw.gpus : [];
  parts.push(gpus.length ? gpus.map((g) => (typeof g === "string" ? g : g.name || JSON.stringify(g))).join(", ") : "no GPU");
  return parts.join(" · ");
}

/** Numeric columns of otrainmodel that are not metrics (besides the provenance columns). */
export const NOT_METRICS = new Set(["epoch", "timestamp", "samples", "batches", "step"]);

/** Names of a set document's provenance columns (task ids, rank, emission time): the server marks them. */
export function provenanceColumns(set) {
  return new Set(set ? set.columns.filter((c, i) => set.provenance[i]) : []);
}

export function debounce(fn, ms) {
  let t = null;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

/** Rows (arrays) of a set document as objects. */
export function rowsOf(set) {
  if (!set) return [];
  return set.rows.map((r) => Object.fromEntries(set.columns.map((c, i) => [c, r[i]])));
}

/** Save text or a Blob as a file. */
export function saveFile(name, content, type = "text/plain") {
  const blob = content instanceof Blob ? content : new Blob([content], { type });
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name, style: { display: "none" } });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(url); a.remove(); }, 1000);
}

export function toCSV(columns, rows) {
  const q = (v) => {
    if (v === null || v === undefined) return "";
    const t = String(v);
    return /[",\r\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
  };
  return [columns.map(q).join(","), ...rows.map((r) => r.map(q).join(","))].join("\r\n") + "\r\n";
}
