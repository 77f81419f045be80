// restorebox dashboard: the Drills pages (issue 19). Uses app.js's h, fill, api, badge,
// act, megabytes and route; loaded after it.
"use strict";

// A small history chart as inline SVG (no build step, no library): one line per series of
// numbers, each scaled to its own range, oldest on the left.
function sparkline(points, label) {
  const width = 220, height = 36, pad = 3;
  const values = points.filter((v) => v !== null && v !== undefined);
  if (values.length < 2) return h("span", { class: "muted" }, "—");
  const low = Math.min(...values), high = Math.max(...values);
  const span = high - low || 1;
  const step = (width - 2 * pad) / (points.length - 1);
  const coords = points.map((v, i) => v === null || v === undefined ? null
    : [pad + i * step, height - pad - ((v - low) / span) * (height - 2 * pad)]);
  const path = coords.filter(Boolean).map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${label}: from ${low} to ${high}`);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "path");
  line.setAttribute("d", path);
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "currentColor");
  line.setAttribute("stroke-width", "1.5");
  svg.append(line);
  const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
  title.textContent = `${label}: ${values.join(", ")}`;
  svg.append(title);
  return h("div", { class: "spark" }, h("span", { class: "muted" }, label), svg);
}

function age(iso) {
  if (!iso) return "—";
  const hours = (Date.now() - new Date(iso)) / 3.6e6;
  return hours < 48 ? `${hours.toFixed(1)} h` : `${(hours / 24).toFixed(0)} d`;
}

async function showDrills(current) {
  const main = document.getElementById("main");
  const data = await api("GET", "/v1/series");
  if (!current()) return;
  const histories = await Promise.all(data.series.map((s) =>
    api("GET", `/v1/series/${encodeURIComponent(s.name)}/drills`).then((d) => d.drills)));
  if (!current()) return;
  fill(main,
    h("div", { class: "toolbar" }, h("h1", {}, "Drills"),
      h("span", { class: "muted" }, "Every backup restored on its own and compared with the last good one")),
    data.drills_file_error ? h("p", { class: "error", role: "alert" }, data.drills_file_error) : null,
    data.series.length === 0
      ? h("div", { class: "empty" }, "No backups yet: each one that lands in the backups folder is drilled.")
      : h("table", { id: "series" },
          h("thead", {}, h("tr", {}, ["Series", "Newest backup", "Arriving", "Last drill",
            "History", ""].map((t) => h("th", {}, t)))),
          h("tbody", {}, data.series.map((s, i) => {
            const past = histories[i].slice().reverse().filter((d) => d.status === "done");
            const last = s.last_drill;
            // The largest table of the newest drill that carried rows: its history too.
            const carried = past.slice().reverse().find((d) => Object.keys(d.largest_tables || {}).length);
            const largest = carried ? Object.keys(carried.largest_tables)[0] : null;
            return h("tr", { dataset: { series: s.name } },
              h("td", { class: "name" }, h("code", {}, s.name),
                h("div", { class: "muted" }, `${s.backups.length} backups`)),
              h("td", { class: "nowrap" }, age(s.newest_at), " ago"),
              h("td", {}, s.stale ? badge("stale") : badge("ok")),
              h("td", {}, last
                ? h("a", { href: `#/drills/${last.id}` }, badge(last.verdict || last.status))
                : h("span", { class: "muted" }, "none yet")),
              h("td", { class: "history" },
                sparkline(past.map((d) => d.total_rows), "rows"),
                largest ? sparkline(past.map((d) => (d.largest_tables || {})[largest]), largest) : null,
                sparkline(past.map((d) => d.restore_seconds), "restore s"),
                sparkline(past.map((d) => d.backup_bytes), "bytes")),
              h("td", {}, h("button", { class: "primary", onclick: () => act(async () => {
                const started = await api("POST", `/v1/series/${encodeURIComponent(s.name)}/drills`);
                location.hash = `#/drills/${started.id}`;
              }) }, "Drill now")));
          }))));
  if (histories.some((list) => list.some((d) => d.status === "running"))) {
    refreshTimer = setTimeout(route, 3000);
  }
}

async function showDrill(id, current) {
  const main = document.getElementById("main");
  const drill = await api("GET", `/v1/drills/${encodeURIComponent(id)}`);
  if (!current()) return;
  const rows = drill.facts ? drill.facts.rows : {};
  const before = drill.baseline_facts ? drill.baseline_facts.rows : {};
  const tables = [...new Set([...Object.keys(before), ...Object.keys(rows)])].sort();
  fill(main,
    h("div", { class: "toolbar" }, h("h1", {}, "Drill ", h("span", { class: "mono" }, drill.id)),
      h("a", { href: "#/drills" }, "All series")),
    h("div", { class: "card" }, h("dl", { class: "facts" },
      h("dt", {}, "Series"), h("dd", {}, drill.series),
      h("dt", {}, "Verdict"), h("dd", { id: "drill-verdict" }, badge(drill.verdict || drill.status)),
      h("dt", {}, "Backups"), h("dd", {}, drill.backups.join(" → ")),
      h("dt", {}, "Compared with"), h("dd", {}, drill.baseline
        ? h("a", { href: `#/drills/${drill.baseline}` }, drill.baseline) : "nothing yet (the first good drill)"),
      h("dt", {}, "Restore"), h("dd", {}, drill.restore_seconds === null ? "—" : `${drill.restore_seconds} s`),
      h("dt", {}, "Started"), h("dd", {}, new Date(drill.started_at).toLocaleString()))),
    h("h2", {}, "Findings"),
    drill.findings.length === 0
      ? h("div", { class: "empty" }, drill.status === "done" ? "Nothing found." : "Running…")
      : h("table", { id: "findings" },
          h("thead", {}, h("tr", {}, ["Severity", "Code", "Object", "Before", "After", "What"]
            .map((t) => h("th", {}, t)))),
          h("tbody", {}, drill.findings.map((f) => h("tr", { class: f.ignored ? "muted" : "" },
            h("td", {}, badge(f.severity)), h("td", {}, h("code", {}, f.code)),
            h("td", { class: "name" }, f.object || ""), h("td", {}, f.before ?? ""),
            h("td", {}, f.after ?? ""),
            h("td", {}, f.message, f.ignored ? h("div", { class: "muted" }, `ignored: ${f.ignored}`) : null))))),
    tables.length ? [h("h2", {}, "Rows, before and after"),
      h("table", { id: "rows" },
        h("thead", {}, h("tr", {}, ["Table", "Last good", "This backup", "Change"].map((t) => h("th", {}, t)))),
        h("tbody", {}, tables.map((t) => {
          const a = before[t], b = rows[t];
          const change = a === undefined || b === undefined ? "" : b - a;
          return h("tr", {}, h("td", { class: "name" }, h("code", {}, t)),
            h("td", {}, a ?? "—"), h("td", {}, b ?? "—"),
            h("td", { class: change < 0 ? "error" : "" }, change === "" ? "" : (change > 0 ? `+${change}` : change)));
        })))] : null);
  if (drill.status !== "done") refreshTimer = setTimeout(route, 2000);
}
