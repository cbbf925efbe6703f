// The status page served at `/`: one self-contained HTML document (no CDN, no external file) that
// polls ./status every 2 s and draws small SVG charts by hand: sessions per second, messages by
// the answer the MTA got, each child's mean latency, child failures. The numbers are also plain
// text in the page (ids sessions-total, messages-total, …) so a reader or a test can find them.
export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>milterkit manager status</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.2em; color: #222; background: #fafafa; }
  h1 { font-size: 1.3em; margin: 0 0 .3em; }
  .facts { color: #555; margin-bottom: 1em; }
  .cards { display: flex; flex-wrap: wrap; gap: .8em; margin-bottom: 1em; }
  .card { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .6em 1em; min-width: 8em; }
  .card b { display: block; font-size: 1.6em; }
  .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1em; }
  figure { margin: 0; background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .5em; }
  figcaption { font-weight: 600; margin-bottom: .3em; }
  svg { width: 100%; height: 160px; display: block; }
  .legend span { margin-right: 1em; white-space: nowrap; }
  .legend i { display: inline-block; width: .8em; height: .8em; margin-right: .3em; vertical-align: middle; }
  table { border-collapse: collapse; background: #fff; margin-top: 1em; width: 100%; }
  th, td { border: 1px solid #ddd; padding: .3em .6em; text-align: left; }
  td.up { color: #17803d; font-weight: 600; } td.down { color: #c0392b; font-weight: 600; }
  #error { color: #c0392b; }
</style>
</head>
<body>
<h1>milterkit manager <span id="version"></span></h1>
<div class="facts">pid <span id="pid"></span><span id="worker"></span> · up <span id="uptime"></span> · configuration <span id="config-source"></span>, loaded <span id="config-loaded"></span> <span id="notes"></span></div>
<div id="error"></div>
<div class="cards">
  <div class="card">sessions<b id="sessions-total">–</b></div>
  <div class="card">open sessions<b id="sessions-open">–</b></div>
  <div class="card">messages<b id="messages-total">–</b></div>
  <div class="card">sessions/s<b id="sessions-rate">–</b></div>
  <div class="card">child failures<b id="failures-total">–</b></div>
  <div class="card">reloads ok / failed<b id="reloads">–</b></div>
</div>
<div class="charts">
  <figure><figcaption>Sessions per second</figcaption><svg id="chart-rate" viewBox="0 0 400 160" preserveAspectRatio="none"></svg></figure>
  <figure><figcaption>Messages by answer (per interval)</figcaption><svg id="chart-status" viewBox="0 0 400 160" preserveAspectRatio="none"></svg><div class="legend" id="legend-status"></div></figure>
  <figure><figcaption>Child mean latency (ms, per interval)</figcaption><svg id="chart-latency" viewBox="0 0 400 160" preserveAspectRatio="none"></svg><div class="legend" id="legend-latency"></div></figure>
  <figure><figcaption>Child failures (per interval)</figcaption><svg id="chart-errors" viewBox="0 0 400 160" preserveAspectRatio="none"></svg></figure>
</div>
<table><thead><tr><th>answer</th><th>sessions</th><th>messages</th></tr></thead><tbody id="by-status"></tbody></table>
<table><thead><tr><th>child</th><th>spec</th><th>state</th><th>answers</th><th>failures</th><th>mean latency</th><th>last error</th></tr></thead><tbody id="children"></tbody></table>
<script>
"use strict";
const COLORS = { pass: "#3b82f6", accept: "#17803d", reject: "#c0392b", discard: "#8e44ad", "temporary-failure": "#e67e22", quarantine: "#795548", abort: "#7f8c8d", error: "#000000", stop: "#16a085" };
const PALETTE = ["#3b82f6", "#e67e22", "#17803d", "#8e44ad", "#c0392b", "#16a085", "#795548"];
const MAX = 90;
const history = [];
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);

function polyline(values, max, color) {
  if (values.length < 2) return "";
  const step = 400 / (MAX - 1), off = 400 - (values.length - 1) * step;
  const pts = values.map((v, i) => (off + i * step).toFixed(1) + "," + (155 - (v / max) * 145).toFixed(1)).join(" ");
  return '<polyline fill="none" stroke-width="2" stroke="' + color + '" points="' + pts + '"/>';
}
function axis(max, unit) {
  return '<line x1="0" y1="155" x2="400" y2="155" stroke="#bbb"/><text x="2" y="12" font-size="10" fill="#777">' + esc(max.toPrecision(3) + " " + unit) + "</text>";
}
function bars(stacks, colorOf) {
  const max = Math.max(1, ...stacks.map((s) => sum(s)));
  const w = 400 / MAX, off = 400 - stacks.length * w;
  let out = "";
  stacks.forEach((s, i) => {
    let y = 155;
    for (const [k, v] of Object.entries(s)) {
      if (!v) continue;
      const h = (v / max) * 145;
      y -= h;
      out += '<rect x="' + (off + i * w).toFixed(1) + '" y="' + y.toFixed(1) + '" width="' + Math.max(1, w - 1).toFixed(1) + '" height="' + h.toFixed(1) + '" fill="' + colorOf(k) + '"><title>' + esc(k + ": " + v) + "</title></rect>";
    }
  });
  return axis(max, "") + out;
}
function delta(a, b) {
  const out = {};
  for (const k of new Set([...Object.keys(a || {}), ...Object.keys(b || {})])) out[k] = Math.max(0, (b[k] || 0) - ((a || {})[k] || 0));
  return out;
}

function render(s) {
  $("version").textContent = s.version;
  $("pid").textContent = s.pid;
  $("worker").textContent = s.worker != null ? " (worker " + s.worker + ")" : "";
  $("uptime").textContent = Math.round(s.uptime_seconds) + " s";
  $("config-source").textContent = s.configuration.source;
  $("config-loaded").textContent = s.configuration.loaded_at;
  $("notes").textContent = s.configuration.notes.join("; ");
  $("sessions-total").textContent = s.sessions.total;
  $("sessions-open").textContent = s.sessions.open;
  $("messages-total").textContent = s.messages.total;
  const failures = s.children.reduce((a, c) => a + c.failures, 0);
  $("failures-total").textContent = failures;
  $("reloads").textContent = s.reloads.ok + " / " + s.reloads.failed;
  const statuses = [...new Set([...Object.keys(s.sessions.by_status), ...Object.keys(s.messages.by_status)])].sort();
  $("by-status").innerHTML = statuses.map((k) => '<tr data-status="' + esc(k) + '"><td>' + esc(k) + "</td><td>" + (s.sessions.by_status[k] || 0) + "</td><td>" + (s.messages.by_status[k] || 0) + "</td></tr>").join("");
  $("children").innerHTML = s.children.map((c) =>
    '<tr data-child="' + esc(c.name) + '"><td>' + esc(c.name) + "</td><td>" + esc(c.spec) + '</td><td class="' + c.state + '">' + c.state + "</td><td>" + c.answers + "</td><td>" + c.failures + "</td><td>" +
    (c.mean_latency_seconds == null ? "–" : (c.mean_latency_seconds * 1000).toFixed(2) + " ms") + "</td><td>" + esc(c.last_error || "") + "</td></tr>").join("");

  // Intervals on the manager's clock (its uptime), not the browser's.
  const now = s.uptime_seconds;
  const prev = history[history.length - 1];
  const point = { t: now, total: s.sessions.total, failures, messages: s.messages.by_status, children: {} };
  for (const c of s.children) point.children[c.name] = { n: c.answers, sum: c.latency_sum_seconds };
  if (prev) {
    const dt = Math.max(0.001, now - prev.t);
    point.rate = (point.total - prev.total) / dt;
    point.byStatus = delta(prev.messages, point.messages);
    point.errors = Math.max(0, failures - prev.failures);
    point.latency = {};
    for (const [name, c] of Object.entries(point.children)) {
      const p = prev.children[name] || { n: 0, sum: 0 };
      point.latency[name] = c.n > p.n ? ((c.sum - p.sum) / (c.n - p.n)) * 1000 : null;
    }
  }
  history.push(point);
  if (history.length > MAX) history.shift();
  draw();
}

function draw() {
  const pts = history.filter((p) => p.rate !== undefined);
  const rates = pts.map((p) => p.rate);
  const rmax = Math.max(1, ...rates);
  $("sessions-rate").textContent = rates.length ? rates[rates.length - 1].toFixed(2) : "–";
  $("chart-rate").innerHTML = axis(rmax, "/s") + polyline(rates, rmax, "#3b82f6");
  $("chart-status").innerHTML = bars(pts.map((p) => p.byStatus), (k) => COLORS[k] || "#999");
  const seen = [...new Set(pts.flatMap((p) => Object.keys(p.byStatus)))];
  $("legend-status").innerHTML = seen.map((k) => '<span><i style="background:' + (COLORS[k] || "#999") + '"></i>' + esc(k) + "</span>").join("");
  const names = Object.keys(history.length ? history[history.length - 1].children : {});
  const lmax = Math.max(0.001, ...pts.flatMap((p) => Object.values(p.latency).filter((v) => v != null)));
  $("chart-latency").innerHTML = axis(lmax, "ms") + names.map((n, i) => polyline(pts.map((p) => p.latency[n] ?? 0), lmax, PALETTE[i % PALETTE.length])).join("");
  $("legend-latency").innerHTML = names.map((n, i) => '<span><i style="background:' + PALETTE[i % PALETTE.length] + '"></i>' + esc(n) + "</span>").join("");
  $("chart-errors").innerHTML = bars(pts.map((p) => ({ error: p.errors })), () => "#c0392b");
}

async function poll() {
  try {
    const r = await fetch("status", { cache: "no-store" });
    render(await r.json());
    $("error").textContent = "";
  } catch (e) {
    $("error").textContent = "cannot read status: " + e;
  }
}
poll();
setInterval(poll, 2000);
</script>
</body>
</html>
`;
