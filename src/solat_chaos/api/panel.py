"""The health panel served at `GET /`: one small page a person reads at a glance.

Self-contained (inline style and script, nothing loaded from elsewhere). It renders what
`/health` and `/execution/positions` say and fetches them again every two seconds. Ages are
rendered from the health document as they come, each with its stale flag, so an age the
engine adds later (the trade stream's) appears without a change here.
"""

PANEL_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>solat-chaos engine</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 56em;
         color: #1d1d1f; background: #fafafa; }
  h1 { font-size: 1.3em; margin: 0 0 .6em; }
  .cards { display: flex; gap: .8em; flex-wrap: wrap; }
  .card { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .6em 1em;
          min-width: 9em; }
  .card .label { font-size: .8em; color: #666; text-transform: uppercase; }
  .card .value { font-size: 1.5em; font-weight: 600; }
  .ok { color: #17803d; } .bad { color: #c0262d; } .warn { color: #a35f00; }
  table { border-collapse: collapse; margin: .4em 0 1em; background: #fff; }
  th, td { border: 1px solid #ddd; padding: .25em .7em; text-align: left; }
  tr.stale td, tr.stale th { background: #fde8e8; }
  h2 { font-size: 1em; margin: 1.2em 0 .2em; }
  #refreshed { color: #666; font-size: .85em; }
</style>
</head>
<body>
<h1>solat-chaos engine <span id="status" class="warn">loading…</span></h1>
<div class="cards">
  <div class="card"><div class="label">trading state</div>
    <div class="value" id="trading-state">?</div></div>
  <div class="card"><div class="label">kill switch</div>
    <div class="value" id="kill-switch">?</div></div>
  <div class="card"><div class="label">pending outcomes</div>
    <div class="value" id="pending">?</div></div>
  <div class="card"><div class="label">in doubt</div>
    <div class="value" id="in-doubt">?</div></div>
</div>
<h2>Ages</h2>
<table><thead><tr><th>source</th><th>age</th><th>state</th></tr></thead>
<tbody id="ages"></tbody></table>
<h2>Reasons</h2>
<ul id="reasons"></ul>
<h2>Open positions</h2>
<table><thead><tr><th>deal id</th><th>epic</th><th>direction</th><th>size</th></tr></thead>
<tbody id="positions"></tbody></table>
<p id="refreshed"></p>
<noscript>This page needs JavaScript; <a href="/health">/health</a> has the same facts.</noscript>
<script>
"use strict";
function text(id, value, cls) {
  const el = document.getElementById(id);
  el.textContent = value;
  if (cls !== undefined) el.className = cls;
}
function row(cells, cls) {
  const tr = document.createElement("tr");
  if (cls) tr.className = cls;
  for (const cell of cells) {
    const td = document.createElement("td");
    td.textContent = cell;
    tr.appendChild(td);
  }
  return tr;
}
function render(health, positions) {
  text("status", health.status, health.status === "ok" ? "ok" : "bad");
  text("trading-state", health.trading_state,
       health.trading_state === "ACTIVE" ? "value ok" : "value bad");
  text("kill-switch", health.kill_switch_active ? "ACTIVE" : "off",
       health.kill_switch_active ? "value bad" : "value ok");
  text("pending", String(health.outcomes_pending),
       health.outcomes_pending ? "value bad" : "value ok");
  text("in-doubt", String(health.in_doubt), health.in_doubt ? "value warn" : "value ok");
  const ages = document.getElementById("ages");
  ages.replaceChildren();
  for (const [name, age] of Object.entries(health.ages)) {
    const stale = health.stale[name];
    const tr = row([name, age === null ? "never" : age.toFixed(1) + " s",
                    stale ? "STALE" : "fresh"], stale ? "stale" : "");
    tr.dataset.age = name;
    ages.appendChild(tr);
  }
  const reasons = document.getElementById("reasons");
  reasons.replaceChildren();
  for (const reason of health.reasons) {
    const li = document.createElement("li");
    li.textContent = reason;
    reasons.appendChild(li);
  }
  if (!health.reasons.length) reasons.textContent = "none: nothing stale, pending or halted";
  const book = document.getElementById("positions");
  book.replaceChildren();
  for (const p of positions.positions) {
    book.appendChild(row([p.deal_id, p.epic, p.direction, String(p.size)]));
  }
  if (!positions.positions.length) book.appendChild(row(["none", "", "", ""]));
  text("refreshed", "refreshed " + new Date().toLocaleTimeString());
}
async function read(url) {
  const answer = await fetch(url, {cache: "no-store"});
  if (!answer.ok) throw new Error(url + " answered HTTP " + answer.status);
  return answer.json();
}
async function refresh() {
  try {
    const [health, positions] = await Promise.all([read("/health"), read("/execution/positions")]);
    render(health, positions);
  } catch (e) {
    text("status", "cannot read the service: " + e.message, "bad");
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
"""
