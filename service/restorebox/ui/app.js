// restorebox dashboard: plain JavaScript, no build step, served by the service at /ui.
// The API token comes from the URL fragment (/ui#token=...), which browsers never send to
// a server, or from the sign-in form; it is kept in sessionStorage (this tab only).
"use strict";

const TOKEN_KEY = "restorebox.token";
const SETTLED = new Set(["ready", "failed", "deleted", "expired"]);
const streams = new Map(); // sandbox id -> AbortController of its event stream
let refreshTimer = null;
// Views load asynchronously: each route() gets a number, and a view whose route was
// overtaken (the user moved on, or a refresh started) while it waited draws nothing.
let routeNumber = 0;

// -- small helpers ---------------------------------------------------------------------
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// replaceChildren() takes nodes only: flatten lists, drop empty slots.
function fill(parent, ...children) {
  parent.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

function badge(value, fallback = "") {
  return value ? h("span", { class: `badge ${value}` }, value) : h("span", { class: "muted" }, fallback);
}

function megabytes(bytes) {
  if (bytes === null || bytes === undefined) return "";
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(0)} kB`;
  if (bytes < 1e9) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${(bytes / 1e9).toFixed(2)} GB`;
}

function timeLeft(expiresAt) {
  const seconds = Math.round((new Date(expiresAt) - Date.now()) / 1000);
  if (seconds <= 0) return "expiring";
  if (seconds < 90) return `${seconds} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
  }
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: {
      Authorization: `Bearer ${token()}`,
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin("That token was refused; paste a valid one.");
    throw new ApiError(401, null);
  }
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function notify(message) {
  const main = document.getElementById("main");
  const note = h("p", { class: "error", role: "alert" }, message);
  main.prepend(note);
  setTimeout(() => note.remove(), 8000);
}

// Run an action; then (whether it worked or not) redraw the view with `after`, so the page
// shows the service's state, and only then show an error (a redraw would wipe it).
async function act(fn, after) {
  let failure = null;
  try { await fn(); } catch (error) {
    if (error.status === 401) return;
    failure = error.message;
  }
  if (after) await after();
  if (failure) notify(failure);
}

// An action under way on the engine (a delete, a reset) can take seconds: say so at once,
// and take its buttons out of reach until the view is redrawn. No refresh may draw over it
// meanwhile: the timer stops, and a view still loading is overtaken.
function underWay(button, label) {
  clearTimeout(refreshTimer);
  routeNumber += 1;
  for (const other of button.closest(".actions").querySelectorAll("button")) other.disabled = true;
  button.textContent = label;
}

// -- live events (Server-Sent Events read with fetch, so the token goes in a header) --
function follow(id, onEvent) {
  if (streams.has(id)) return;
  const controller = new AbortController();
  streams.set(id, controller);
  (async () => {
    try {
      const response = await fetch(`/v1/sandboxes/${encodeURIComponent(id)}/events`, {
        headers: { Authorization: `Bearer ${token()}` },
        signal: controller.signal,
      });
      if (!response.ok || !response.body) return;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = "message", data = "";
          for (const line of frame.split("\n")) {
            if (line.startsWith("event: ")) event = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (data) onEvent(event, JSON.parse(data));
        }
      }
    } catch (error) {
      if (error.name !== "AbortError") console.warn("event stream ended", error);
    } finally {
      streams.delete(id);
    }
  })();
}

function stopFollowing() {
  for (const controller of streams.values()) controller.abort();
  streams.clear();
}

// -- views -----------------------------------------------------------------------------
function progressCell(sandbox) {
  const p = sandbox.progress;
  if (!p) {
    return h("td", { class: "progress" },
      SETTLED.has(sandbox.status) ? h("span", { class: "muted" }, "—") : "starting");
  }
  const parts = [p.phase];
  if (p.step && p.steps > 1) parts.push(`step ${p.step}/${p.steps}`);
  let percent = null;
  if (p.bytes_total) {
    percent = Math.min(100, (100 * (p.bytes_done || 0)) / p.bytes_total);
    parts.push(`${megabytes(p.bytes_done || 0)} of ${megabytes(p.bytes_total)}`);
  }
  return h("td", { class: "progress" },
    h("div", {}, parts.join(" · ")),
    percent === null ? null : h("div", { class: "bar", role: "progressbar",
      "aria-valuenow": percent.toFixed(0), "aria-valuemin": 0, "aria-valuemax": 100 },
      h("span", { style: `width: ${percent.toFixed(1)}%` })));
}

function urlCell(url) {
  if (!url) return h("td", {}, h("span", { class: "muted" }, "—"));
  const copy = h("button", { class: "copy", title: "Copy the connection URL" }, "Copy");
  copy.addEventListener("click", async () => {
    try { await navigator.clipboard.writeText(url); copy.textContent = "Copied"; }
    catch { copy.textContent = "Select it"; }
    setTimeout(() => { copy.textContent = "Copy"; }, 1500);
  });
  return h("td", {}, h("div", { class: "url" }, h("code", { title: url }, url), copy));
}

function sandboxActions(sandbox, after) {
  const live = !["deleted", "expired", "deleting"].includes(sandbox.status);
  const path = `/v1/sandboxes/${sandbox.id}`;
  return h("div", { class: "actions" },
    live && sandbox.status === "ready" && sandbox.snapshot_id
      ? h("button", { onclick: (event) => {
          underWay(event.currentTarget, "Resetting…");
          act(() => api("POST", `${path}/reset`, {}), after);
        } }, "Reset") : null,
    live ? h("button", { onclick: () => act(async () => {
      const left = Math.max(0, (new Date(sandbox.expires_at) - Date.now()) / 1000);
      await api("PATCH", path, { ttl_seconds: Math.round(left + 3600) });
    }, after) }, "Extend 1 h") : null,
    live ? h("button", { class: "danger", onclick: (event) => {
      if (!confirm(`Delete sandbox ${sandbox.id} and everything in it?`)) return;
      underWay(event.currentTarget, "Deleting…");
      act(() => api("DELETE", path), after);
    } }, "Delete") : null);
}

function sandboxRow(sandbox, refresh) {
  return h("tr", { dataset: { id: sandbox.id } },
    h("td", {}, h("a", { href: `#/sandboxes/${sandbox.id}`, class: "mono" }, sandbox.id)),
    h("td", { class: "name" }, (sandbox.backups || []).join(", ") || h("span", { class: "muted" }, "empty")),
    h("td", {}, badge(sandbox.status)),
    h("td", {}, badge(sandbox.verdict, "—")),
    progressCell(sandbox),
    h("td", { class: "nowrap" }, SETTLED.has(sandbox.status) && sandbox.status !== "ready" ? "—" : timeLeft(sandbox.expires_at)),
    urlCell(sandbox.connection_url),
    h("td", {}, sandboxActions(sandbox, refresh)));
}

async function showSandboxes(current) {
  const main = document.getElementById("main");
  const data = await api("GET", "/v1/sandboxes");
  if (!current()) return;
  const refresh = () => route();
  const rows = data.sandboxes.map((s) => sandboxRow(s, refresh));
  fill(main, 
    h("div", { class: "toolbar" }, h("h1", {}, "Sandboxes"),
      h("span", { class: "muted" }, `${data.sandboxes.length} live`)),
    rows.length === 0
      ? h("div", { class: "empty" }, "No sandboxes. Make one from ", h("a", { href: "#/backups" }, "a backup"), ".")
      : h("table", { id: "sandboxes" },
          h("thead", {}, h("tr", {}, ["Sandbox", "Backups", "Status", "Verdict", "Progress",
            "Time left", "Connection URL", ""].map((t) => h("th", {}, t)))),
          h("tbody", {}, rows)));
  for (const sandbox of data.sandboxes) {
    if (SETTLED.has(sandbox.status)) continue;
    follow(sandbox.id, (event, state) => {
      const row = main.querySelector(`tr[data-id="${CSS.escape(state.id)}"]`);
      if (!row) return;
      const merged = { ...data.sandboxes.find((s) => s.id === state.id), ...state };
      row.replaceWith(sandboxRow(merged, refresh));
      if (event === "end") refresh();
    });
  }
}

function reportSection(sandbox) {
  const restore = sandbox.restore;
  const parts = [];
  if (restore) {
    parts.push(h("h2", {}, "Restore"),
      h("table", { id: "steps" },
        h("thead", {}, h("tr", {}, ["Backup", "Format", "Content", "Tool", "Size", "Seconds",
          "Exit", "Errors", "Triggers off"].map((t) => h("th", {}, t)))),
        h("tbody", {}, restore.steps.map((step) => h("tr", {},
          h("td", {}, step.backup), h("td", {}, step.format), h("td", {}, step.content),
          h("td", {}, step.tool), h("td", {}, megabytes(step.bytes)),
          h("td", {}, step.duration_seconds), h("td", {}, step.exit_code ?? "—"),
          h("td", {}, step.errors_total), h("td", {}, step.triggers_disabled ? "yes" : "no"))))));
    if (restore.error_groups && restore.error_groups.length) {
      parts.push(h("h2", {}, `Errors (${restore.errors_total})`),
        h("table", { id: "errors" },
          h("thead", {}, h("tr", {}, ["Count", "Error", "Hint", "Platform"].map((t) => h("th", {}, t)))),
          h("tbody", {}, restore.error_groups.map((g) => h("tr", {},
            h("td", {}, g.count), h("td", {}, h("code", {}, g.template)),
            h("td", {}, g.hint || ""), h("td", {}, g.platform ? "yes" : "no"))))));
    }
    if (restore.warnings && restore.warnings.length) {
      parts.push(h("h2", {}, "Warnings"), h("ul", {}, restore.warnings.map((w) => h("li", {}, w))));
    }
  }
  parts.push(...maskingSection(sandbox.masking));
  if (sandbox.probes && sandbox.probes.length) {
    parts.push(h("h2", {}, "Probes"),
      h("table", { id: "probes" },
        h("thead", {}, h("tr", {}, ["Probe", "Status", "Detail", "Seconds"].map((t) => h("th", {}, t)))),
        h("tbody", {}, sandbox.probes.map((p) => h("tr", {},
          h("td", { title: p.description }, p.name), h("td", {}, badge(p.status)),
          h("td", {}, p.detail), h("td", {}, p.duration_seconds))))));
  }
  return parts;
}

// What masking did (report.masking): the columns, what the policy left out, any leak.
function maskingSection(masking) {
  if (!masking) return [];
  const leaks = masking.leaks || [];
  const parts = [
    h("h2", {}, "Masking"),
    h("p", { id: "masking-summary" },
      `Policy: ${masking.source}${masking.strict ? " (strict)" : ""}; `,
      `${masking.columns.length} columns in ${masking.seconds} s; `,
      leaks.length ? badge("fail") : badge("pass"),
      leaks.length ? ` ${leaks.length} leaks found` : " no original value left"),
    h("table", { id: "masked-columns" },
      h("thead", {}, h("tr", {}, ["Table", "Column", "Strategy", "Rows", "Why"].map((t) => h("th", {}, t)))),
      h("tbody", {}, masking.columns.map((c) => h("tr", {},
        h("td", {}, c.table), h("td", {}, c.column), h("td", {}, h("code", {}, c.strategy)),
        h("td", {}, c.rows), h("td", {}, c.via))))),
  ];
  if (masking.suspicious && masking.suspicious.length) {
    parts.push(h("h3", {}, "Looks personal, not in the policy"),
      h("table", { id: "suspicious-columns" },
        h("thead", {}, h("tr", {}, ["Table", "Column", "Type", "Why"].map((t) => h("th", {}, t)))),
        h("tbody", {}, masking.suspicious.map((c) => h("tr", {},
          h("td", {}, c.table), h("td", {}, c.column), h("td", {}, c.type),
          h("td", {}, c.reasons.join("; ")))))));
  }
  if (leaks.length) {
    parts.push(h("h3", {}, "Original values found"),
      h("ul", { id: "masking-leaks", class: "error" }, leaks.map((l) => h("li", {},
        l.where === "file" ? `file ${l.column}` : `${l.table}.${l.column}: ${l.values} rows`))));
  }
  const notes = [...(masking.labels_not_understood || []).map((n) => `label not understood: ${n}`),
    ...(masking.warnings || [])];
  if (notes.length) parts.push(h("ul", {}, notes.map((n) => h("li", {}, n))));
  return parts;
}

async function showSandbox(id, current) {
  const main = document.getElementById("main");
  const sandbox = await api("GET", `/v1/sandboxes/${encodeURIComponent(id)}`);
  if (!current()) return;
  const again = () => route();
  fill(main, 
    h("div", { class: "toolbar" }, h("h1", {}, "Sandbox ", h("span", { class: "mono" }, sandbox.id)),
      sandboxActions(sandbox, again)),
    h("div", { class: "card" }, h("dl", { class: "facts" },
      h("dt", {}, "Status"), h("dd", { id: "status" }, badge(sandbox.status)),
      h("dt", {}, "Verdict"), h("dd", { id: "verdict" }, badge(sandbox.verdict, "not yet")),
      h("dt", {}, "Backups"), h("dd", {}, (sandbox.backups || []).join(", ") || "none"),
      h("dt", {}, "PostgreSQL"), h("dd", {}, sandbox.postgres_version || ""),
      h("dt", {}, "Connection URL"), h("dd", {}, urlCell(sandbox.connection_url).firstChild || "—"),
      h("dt", {}, "Time left"), h("dd", {}, timeLeft(sandbox.expires_at)),
      sandbox.from_snapshot ? [h("dt", {}, "Copied from"), h("dd", {}, `snapshot ${sandbox.snapshot_id}`)] : null,
      sandbox.masking ? [h("dt", {}, "Masked"), h("dd", {}, `yes (${sandbox.masking.source})`)] : null,
      sandbox.error ? [h("dt", {}, "Error"), h("dd", { class: "error" }, `${sandbox.error.code}: ${sandbox.error.message}`)] : null)),
    h("table", { id: "live" }, h("tbody", {}, h("tr", {}, progressCell(sandbox)))),
    reportSection(sandbox));
  if (!SETTLED.has(sandbox.status)) {
    follow(sandbox.id, (event, state) => {
      const live = main.querySelector("#live tr");
      if (live) live.replaceChildren(progressCell({ ...sandbox, ...state }));
      const status = main.querySelector("#status");
      if (status) status.replaceChildren(badge(state.status));
      if (event === "end") again();
    });
  }
}

// The images /healthz reports ("ready", "building", ...): one line above the backups.
function imagesLine(health) {
  const images = Object.entries((health && health.images) || {});
  if (images.length === 0) return null;
  return h("p", { id: "images", class: "muted" }, "Images: ",
    images.map(([major, state], i) => [i ? " · " : "",
      `PostgreSQL ${major} `, badge(state === "ready" ? "ready" : state)]));
}

// Backups ticked for a set, in the order they were ticked (a roles file, then the schema,
// then the data): restored into one sandbox in that order.
let chosen = [];

function setBar(after) {
  const bar = h("div", { id: "set", class: "toolbar set", hidden: chosen.length < 2 },
    h("span", {}, `Restore in this order: ${chosen.join(" → ")}`),
    h("div", { class: "actions" },
      h("button", { class: "quiet-dark", onclick: () => { chosen = []; after(); } }, "Clear"),
      h("button", { class: "primary", onclick: () => act(async () => {
        const made = await api("POST", "/v1/sandboxes", { backup: chosen });
        chosen = [];
        location.hash = `#/sandboxes/${made.id}`;
      }) }, `Create sandbox from ${chosen.length} backups`)));
  return bar;
}

async function showBackups(current) {
  const main = document.getElementById("main");
  const [data, health] = await Promise.all([
    api("GET", "/v1/backups"),
    fetch("/healthz").then((r) => r.json()).catch(() => null),
  ]);
  if (!current()) return;
  const names = new Set(data.backups.map((b) => b.name));
  chosen = chosen.filter((name) => names.has(name));
  const redraw = () => { const bar = main.querySelector("#set"); bar.replaceWith(setBar(redraw));
    for (const box of main.querySelectorAll("#backups input[type=checkbox]")) {
      const at = chosen.indexOf(box.value);
      box.checked = at >= 0;
      box.nextSibling.textContent = at >= 0 ? String(at + 1) : "";
    } };
  const tick = (event) => {
    const name = event.currentTarget.value;
    chosen = event.currentTarget.checked ? [...chosen, name] : chosen.filter((n) => n !== name);
    redraw();
  };
  fill(main, 
    h("div", { class: "toolbar" }, h("h1", {}, "Backups"),
      h("span", { class: "muted" }, "Tick several to restore them into one sandbox, in the order ticked")),
    imagesLine(health),
    setBar(redraw),
    data.backups.length === 0 && data.inspecting.length === 0
      ? h("div", { class: "empty" }, "No backups in the backups folder.")
      : h("table", { id: "backups" },
          h("thead", {}, h("tr", {}, ["Set", "Backup", "Format", "Content", "Size", "From",
            ""].map((t) => h("th", {}, t)))),
          h("tbody", {},
            data.backups.map((b) => h("tr", { dataset: { name: b.name } },
              h("td", { class: "nowrap" },
                h("input", { type: "checkbox", value: b.name, class: "pick",
                  "aria-label": `Add ${b.name} to a set`, onchange: tick }),
                h("span", { class: "order" }, "")),
              h("td", { class: "name" }, h("code", {}, b.name)), h("td", {}, `${b.format}${b.compression !== "none" ? ` (${b.compression})` : ""}`),
              h("td", {}, b.content), h("td", { class: "nowrap" }, megabytes(b.size_bytes)),
              h("td", {}, b.source_server_version ? `PostgreSQL ${b.source_server_version}` : ""),
              h("td", {}, h("button", { class: "primary", onclick: () => act(async () => {
                const made = await api("POST", "/v1/sandboxes", { backup: b.name });
                location.hash = `#/sandboxes/${made.id}`;
              }) }, "Create sandbox")))),
            data.inspecting.map((name) => h("tr", {}, h("td", {}), h("td", {}, h("code", {}, name)),
              h("td", { colspan: 5, class: "muted" }, "inspecting…"))))),
    data.unreadable.length
      ? [h("h2", {}, "Unreadable"), h("ul", {}, data.unreadable.map((u) => h("li", {}, `${u.name}: ${u.error.message}`)))]
      : null);
  redraw();
  // New backups are read and hashed in the background, images built: look again.
  const building = Object.values((health && health.images) || {}).includes("building");
  if (data.inspecting.length || building) refreshTimer = setTimeout(route, building ? 5000 : 1000);
}

// With a store, what a snapshot holds on its own (shared blocks are its copies' too) and
// the size of its files; on the overlay path, its image's own layer.
function snapshotSize(s) {
  if (s.size_basis !== "exclusive") return h("td", { class: "nowrap" }, megabytes(s.size_bytes));
  return h("td", { class: "nowrap", title: "its own blocks, of its files' size (the rest is shared)" },
    `${megabytes(s.size_bytes)} own of ${megabytes(s.logical_bytes)}`);
}

async function showSnapshots(current) {
  const main = document.getElementById("main");
  const data = await api("GET", "/v1/snapshots");
  if (!current()) return;
  fill(main, 
    h("h1", {}, "Snapshots"),
    data.snapshots.length === 0
      ? h("div", { class: "empty" }, "No snapshots yet: the first restore of a backup keeps one.")
      : h("table", { id: "snapshots" },
          h("thead", {}, h("tr", {}, ["Snapshot", "Kind", "Backups", "Size", "Verdict", "Made",
            "Last used", ""].map((t) => h("th", {}, t)))),
          h("tbody", {}, data.snapshots.map((s) => h("tr", {},
            h("td", {}, h("code", {}, s.name || s.id)), h("td", {}, s.masked ? `${s.kind}, masked` : s.kind),
            h("td", {}, s.backups.join(", ")), snapshotSize(s),
            h("td", {}, badge(s.verdict, "—")),
            h("td", {}, new Date(s.created_at).toLocaleString()),
            h("td", {}, new Date(s.last_used_at).toLocaleString()),
            h("td", {}, h("div", { class: "actions" },
              h("button", { class: "primary", onclick: () => act(async () => {
                const made = await api("POST", "/v1/sandboxes", { snapshot: s.id });
                location.hash = `#/sandboxes/${made.id}`;
              }) }, "Copy"),
              h("button", { class: "danger", onclick: (event) => {
                if (!confirm(`Delete snapshot ${s.name || s.id}?`)) return;
                underWay(event.currentTarget, "Deleting…");
                act(() => api("DELETE", `/v1/snapshots/${s.id}`), route);
              } }, "Delete"))))))));
}

// -- sign-in and routing -----------------------------------------------------------------
function showLogin(message) {
  stopFollowing();
  document.getElementById("forget").hidden = true;
  const main = document.getElementById("main");
  fill(main, document.getElementById("login").content.cloneNode(true));
  const error = document.getElementById("token-error");
  if (message) { error.textContent = message; error.hidden = false; }
  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
    route();
  });
}

async function route() {
  const number = ++routeNumber;
  const current = () => number === routeNumber;
  clearTimeout(refreshTimer);
  stopFollowing();
  if (!token()) return showLogin();
  document.getElementById("forget").hidden = false;
  const path = location.hash.replace(/^#/, "") || "/";
  for (const link of document.querySelectorAll("header nav a")) {
    const view = link.dataset.view;
    link.classList.toggle("active", (view === "sandboxes" && (path === "/" || path.startsWith("/sandboxes")))
      || path.startsWith(`/${view}`));
  }
  try {
    const match = path.match(/^\/sandboxes\/([A-Za-z0-9_-]+)$/);
    if (match) await showSandbox(match[1], current);
    else if (path === "/backups") await showBackups(current);
    else if (path === "/snapshots") await showSnapshots(current);
    else if (path === "/drills") await showDrills(current);
    else if (path.startsWith("/drills/")) await showDrill(path.slice(8), current);
    else {
      await showSandboxes(current);
      if (current()) refreshTimer = setTimeout(route, 5000); // new sandboxes and time left
    }
  } catch (error) {
    if (!current()) return;
    if (error.status === 404) fill(document.getElementById("main"), h("div", { class: "empty" }, error.message));
    else if (error.status !== 401) notify(error.message);
  }
}

function takeTokenFromFragment() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const given = params.get("token");
  if (given) {
    sessionStorage.setItem(TOKEN_KEY, given);
    // Out of the address bar and history at once.
    history.replaceState(null, "", `${location.pathname}#/`);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  takeTokenFromFragment();
  document.getElementById("forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    route();
  });
  window.addEventListener("hashchange", () => { takeTokenFromFragment(); route(); });
  route();
});
