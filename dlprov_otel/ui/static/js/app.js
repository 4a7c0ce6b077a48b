// The dashboard's shell: hash routes, polling that stops when the page changes, and the
// connection banner (collector unreachable, store unavailable, token needed).

import { getToken, health, onConnection, setToken } from "./api.js";
import * as compare from "./pages/compare.js";
import * as dataflows from "./pages/dataflows.js";
import * as execution from "./pages/execution.js";
import * as executions from "./pages/executions.js";
import * as lineage from "./pages/lineage.js";
import * as query from "./pages/query.js";
import { clear, h } from "./util.js";

const routes = [
  [/^\/?$/, executions.render, "executions"],
  [/^\/executions\/?$/, executions.render, "executions"],
  [/^\/executions\/(.+)$/, execution.render, "executions"],
  [/^\/dataflows\/?$/, dataflows.renderList, "dataflows"],
  [/^\/dataflows\/(.+)$/, dataflows.renderOne, "dataflows"],
  [/^\/compare\/?$/, compare.render, "compare"],
  [/^\/query\/?$/, query.render, "query"],
  [/^\/lineage\/?$/, lineage.render, "lineage"],
];

let current = null; // the page's context: stopped when another page is shown

function makeContext() {
  const ctx = {
    alive: true,
    cleanups: [],
    /** Run fn now and then every ms milliseconds (never overlapping) while the page is shown. */
    poll(fn, ms) {
      let timer = null;
      const tick = async () => {
        if (!ctx.alive) return;
        try { await fn(); } catch (err) { console.debug("poll", err); }
        if (ctx.alive) timer = setTimeout(tick, typeof ms === "function" ? ms() : ms);
      };
      tick();
      ctx.cleanups.push(() => clearTimeout(timer));
    },
    onLeave(fn) { ctx.cleanups.push(fn); },
    stop() {
      ctx.alive = false;
      for (const fn of ctx.cleanups) fn();
    },
  };
  return ctx;
}

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, qs] = raw.split("?");
  return { path, query: new URLSearchParams(qs || "") };
}

export function navigate(path) {
  location.hash = path;
}

function route() {
  if (current) current.stop();
  const { path, query } = parseHash();
  const main = clear(document.getElementById("main"));
  for (const [re, render, nav] of routes) {
    const m = re.exec(path);
    if (!m) continue;
    document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.nav === nav));
    current = makeContext();
    const params = m.slice(1).map((p) => decodeURIComponent(p));
    Promise.resolve(render(main, { params, query, ctx: current })).catch((err) => {
      main.append(h("div", { class: "error-box", text: `This page failed: ${err.message || err}` }));
    });
    window.scrollTo(0, 0);
    return;
  }
  main.append(h("div", { class: "empty" }, h("h2", { text: "Not found" }),
    h("p", {}, "No page ", h("code", { text: path }), ". ", h("a", { href: "#/", text: "Back to the executions" }))));
}

// --- connection state ------------------------------------------------------------------------
let shown = null; // the state the banner shows

function showBanner(state) {
  const banner = document.getElementById("banner");
  shown = state;
  document.body.classList.toggle("offline", !state.ok && state.status !== 401);
  if (state.ok) {
    banner.hidden = true;
    clear(banner);
    return;
  }
  clear(banner);
  banner.className = "banner";
  if (state.status === 401) {
    banner.classList.add("warn");
    const input = h("input", { type: "password", placeholder: "bearer token", autocomplete: "off", "aria-label": "token" });
    const save = () => { setToken(input.value.trim()); route(); };
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") save(); });
    banner.append(h("strong", { text: "This collector requires a token. " }),
      h("span", { text: getToken() ? "The saved token was refused. " : "" }), input,
      h("button", { class: "btn", onclick: save, text: "Use token" }));
  } else if (state.status === 0) {
    banner.classList.add("error");
    banner.append(h("strong", { text: "Collector unreachable. " }),
      h("span", { text: `${state.message}. Retrying…` }));
  } else if (state.status === 503) {
    banner.classList.add("error");
    banner.append(h("strong", { text: "Provenance store unavailable. " }), h("span", { text: `${state.message}. Retrying…` }));
  } else {
    banner.classList.add("error");
    banner.append(h("strong", { text: `Error ${state.status}. ` }), h("span", { text: state.message }));
  }
  banner.hidden = false;
}

async function checkHealth() {
  const { status, doc } = await health();
  const conn = document.getElementById("conn");
  conn.classList.toggle("ok", status === 200);
  conn.classList.toggle("down", status !== 200);
  conn.querySelector(".conn-text").textContent =
    status === 200 ? "store ok" : status === 0 ? "collector unreachable" : "store unavailable";
  conn.title = status === 200 ? `provenance store: ${doc.store}` : doc.error || "";
  if (status === 200 && shown && !shown.ok && (shown.status === 0 || shown.status === 503)) showBanner({ ok: true });
  else if (status === 0) showBanner({ ok: false, status: 0, message: `no answer from ${location.host}` });
  else if (status === 503) showBanner({ ok: false, status: 503, message: doc.error || "the store does not answer" });
}

onConnection(showBanner);
window.addEventListener("hashchange", route);
route();
checkHealth();
setInterval(checkHealth, 4000);
