// Talking to the collector: the dashboard's JSON API (/ui/api/...) and read-only SQL (/v1/sql).
// A bearer token, when the collector wants one, is kept in this browser's localStorage.

import { h, saveFile } from "./util.js";

const TOKEN_KEY = "dlprov.token";
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status; // 0: the collector did not answer at all
  }
}

export function getToken() {
  try { return localStorage.getItem(TOKEN_KEY) || ""; } catch { return ""; }
}

export function setToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch { /* private mode: the token lives until reload */ }
}

/** Be told of the connection's state: {ok: true} or {ok: false, status, message}. */
export function onConnection(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function report(state) {
  for (const fn of listeners) fn(state);
}

async function call(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let resp;
  try {
    resp = await fetch(path, { ...options, headers, cache: "no-store" });
  } catch (err) {
    const e = new ApiError(0, `cannot reach the DLProv collector at ${location.host} (${err.message || err})`);
    report({ ok: false, status: 0, message: e.message });
    throw e;
  }
  if (!resp.ok) {
    let message = `HTTP ${resp.status}`;
    try {
      const doc = await resp.json();
      message = doc.error || doc.message || message;
    } catch { /* not JSON */ }
    const e = new ApiError(resp.status, message);
    // 401 and a down store concern every page; a refused query or unknown tag only this one
    if (resp.status === 401 || resp.status === 503 || resp.status >= 500) report({ ok: false, status: resp.status, message });
    else report({ ok: true });
    throw e;
  }
  report({ ok: true });
  return resp;
}

export async function getJSON(path) {
  const resp = await call(path);
  return resp.json();
}

/** Run read-only SQL; returns {columns, rows}. A refusal is an ApiError with status 403. */
export async function sql(text) {
  const resp = await call("/v1/sql", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ sql: text }),
  });
  return resp.json();
}

/** Fetch a file (with the token) and return it as a Blob with the server's file name. */
export async function fetchFile(path) {
  const resp = await call(path, { headers: { Accept: "*/*" } });
  const disposition = resp.headers.get("Content-Disposition") || "";
  const m = /filename="([^"]+)"/.exec(disposition);
  return { blob: await resp.blob(), name: m ? m[1] : path.split("/").pop() };
}

/**
 * A link that downloads `path` with the token (a plain link would go without it) and saves it
 * under the server's file name; a refusal goes to onError(err, label).
 */
export function downloadLink(path, label, onError, attrs = {}) {
  return h("a", { class: "btn small", ...attrs, href: path, text: label, onclick: async (ev) => {
    ev.preventDefault();
    const btn = ev.currentTarget;
    btn.classList.add("busy");
    try {
      const { blob, name } = await fetchFile(path);
      saveFile(name, blob);
    } catch (err) {
      onError(err, label);
    } finally {
      btn.classList.remove("busy");
    }
  } });
}

export async function health() {
  try {
    const resp = await fetch("/health", { cache: "no-store" });
    return { status: resp.status, doc: await resp.json() };
  } catch (err) {
    return { status: 0, doc: { error: String(err.message || err) } };
  }
}

export const api = {
  executions: () => getJSON("/ui/api/executions"),
  execution: (tag) => getJSON(`/ui/api/executions/${encodeURIComponent(tag)}`),
  dataflows: () => getJSON("/ui/api/dataflows"),
  dataflow: (tag, version) =>
    getJSON(`/ui/api/dataflows/${encodeURIComponent(tag)}${version ? `?version=${version}` : ""}`),
  queries: (flow) => getJSON(`/ui/api/queries?dataflow=${encodeURIComponent(flow)}`),
  provPath: (tag, fmt, kind = "executions") => `/ui/api/${kind}/${encodeURIComponent(tag)}/prov.${fmt}`,
  modelPath: (tag, digest) => `/ui/api/executions/${encodeURIComponent(tag)}/models/${digest}`,
  lineage: (digest) => getJSON(`/ui/api/lineage?digest=${encodeURIComponent(digest)}`),
  lineageProvPath: (digest, fmt) => `/ui/api/lineage/prov.${fmt}?digest=${encodeURIComponent(digest)}`,
};
