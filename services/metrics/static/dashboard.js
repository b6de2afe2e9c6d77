// The Leadflow dashboard: reads the metrics API and draws plain SVG; refreshes every 5 s.
"use strict";

const REFRESH_MS = 5000;

function filters() {
  const form = new FormData(document.getElementById("filters"));
  const params = new URLSearchParams();
  // Dates as picked, in this browser's time zone (months too); the "to" day is included.
  if (form.get("from")) params.set("from", form.get("from"));
  if (form.get("to")) params.set("to", form.get("to"));
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone) params.set("tz", zone);
  if (form.get("channel")) params.set("channel", form.get("channel"));
  return params;
}

// The viewer token (or the admin token), asked for once and kept for this browser tab only.
const TOKEN_KEY = "leadflow.token";

class SignInNeeded extends Error {}

function askForToken(message) {
  const form = document.getElementById("sign-in");
  document.getElementById("sign-in-message").textContent = message;
  form.hidden = false;
  document.getElementById("token").focus();
}

async function getJson(path, params, signal) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) throw new SignInNeeded("a viewer token is needed");
  const response = await fetch(params && [...params].length ? `${path}?${params}` : path, {
    headers: { Authorization: `Bearer ${token}` },
    signal,
  });
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    throw new SignInNeeded("that token was not accepted");
  }
  if (!response.ok) {
    // a problem+json names the field and why ("to: must be after `from`"): say that, not a status
    const problem = await response.json().catch(() => ({}));
    const errors = (problem.errors || []).map((e) => `${e.field}: ${e.reason}`);
    throw new Error(errors.length ? errors.join("; ") : `${path}: ${problem.title || response.status}`);
  }
  return response.json();
}

const NO_CHANNEL = "no channel";
const nothing = { p50: null, p90: null, p99: null };
const noHandOffs = { to_first_webhook_seconds: nothing, to_acknowledgement_seconds: nothing, sla_compliance: null, sla_pending: 0, touches_to_conversion: null };

async function drawFunnel(params, signal) {
  const funnel = await getJson("/v1/funnel", params, signal);
  const stages = funnel.stages.map((s) => ({ label: s.stage, count: s.count }));
  bars(document.getElementById("funnel"), stages, (s) => s.count, count);
  rows(document.querySelector("#funnel-table tbody"), funnel.stages.map((s) => [s.stage, count(s.count), percent(s.conversion_from_previous)]));
  const steps = funnel.stages.slice(1).map((s) => `${s.stage} ${percent(s.conversion_from_previous)}`);
  const rebuild = funnel.rebuilding;
  const partial = rebuild ? ` · rebuilding: ${percent(rebuild.done / Math.max(rebuild.events, 1))} replayed, figures partial` : "";
  // overall_conversion runs from the first stage shown to the last, not from every lead counted
  const span = funnel.stages.length ? `${funnel.stages[0].stage} → ${funnel.stages[funnel.stages.length - 1].stage}` : "overall";
  write(document.getElementById("overall"), `${count(funnel.total)} leads · ${span} ${percent(funnel.overall_conversion)} · ${steps.join(" · ")}${partial}`);
}

async function drawMoney(params, signal) {
  const now = new Date();
  const window = new URLSearchParams({
    from: params.get("from") || new Date(now.getFullYear() - 1, now.getMonth(), 1).toISOString(),
    // the start of tomorrow here: today's customers and spend, not tomorrow's (a day's spend counts where its midnight is)
    to: params.get("to") || new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1).toISOString(),
    group_by: "channel",
  });
  if (params.get("tz")) window.set("tz", params.get("tz"));
  const [cac, ltv] = await Promise.all([getJson("/v1/cac", window, signal), getJson("/v1/ltv", new URLSearchParams({ group_by: "channel" }), signal)]);
  // spend entered without a channel (and leads without one) are the API's group null: that
  // channel-less row, not every channel's
  const byChannel = new Map();
  for (const row of cac.rows) {
    const key = row.group ?? NO_CHANNEL;
    const entry = byChannel.get(key) || { label: key, costs: 0, customers: 0 };
    entry.costs += row.costs;
    entry.customers += row.customers;
    byChannel.set(key, entry);
  }
  const ltvByChannel = new Map(ltv.rows.map((row) => [row.group ?? NO_CHANNEL, row.ltv_revenue]));
  const every = [...byChannel.values()].map((c) => ({ ...c, cac: c.customers ? c.costs / c.customers : 0 }));
  for (const [label] of ltvByChannel) {
    if (!byChannel.has(label)) every.push({ label, costs: 0, customers: 0, cac: 0 });
  }
  const chosen = params.get("channel");  // the channel filter narrows the rows as it does the funnel
  const channels = chosen ? every.filter((c) => c.label === chosen) : every;
  // a channel that spent and won nobody has no CAC (the API's null), not a CAC of 0: the worst, not the cheapest
  // and one that won customers with no spend entered has an unknown CAC, as the API says, not a free one
  const cacText = (c) => (c.customers ? (c.costs ? amount(c.cac) : "no spend entered") : c.costs ? "no customers" : "–");
  bars(document.getElementById("money"), channels, (c) => c.cac, (v, c) => (c.customers || !c.costs ? cacText(c) : `no customers (${amount(c.costs)} spent)`));
  rows(document.querySelector("#money-table tbody"), channels.map((c) => [c.label, cacText(c), count(c.customers), amount(ltvByChannel.get(c.label))]));
  // the API sums amounts as entered, whatever their currency: the page says so, as the API does
  const note = cac.currency_note;
  write(document.getElementById("currency"), `${note.charAt(0).toUpperCase()}${note.slice(1)}.`);
  const overall = ltv.overall;
  write(document.getElementById("ltv"), overall.customers
    ? `Every channel, all time: LTV ${amount(overall.ltv_revenue)} revenue, ${amount(overall.ltv_margin)} margin · LTV:CAC ${ltv.ltv_to_cac ?? "–"}`
    : "No purchases recorded yet.");
}

async function drawSpeed(params, signal) {
  // the report has no channel filter: with one chosen, its row of the report by channel
  const channel = params.get("channel");
  const asked = new URLSearchParams([...params].filter(([name]) => name !== "channel"));
  if (channel) asked.set("group_by", "channel");
  const speed = await getJson("/v1/speed-to-lead", asked, signal);
  const o = channel ? speed.rows.find((row) => row.group === channel) || noHandOffs : speed.overall;
  write(document.getElementById("speed-of"), channel ? ` (${channel})` : "");
  definitions(document.getElementById("speed"), [
    ["Capture → rep webhook p50", seconds(o.to_first_webhook_seconds.p50)],
    ["p90 / p99", `${seconds(o.to_first_webhook_seconds.p90)} / ${seconds(o.to_first_webhook_seconds.p99)}`],
    ["Capture → acknowledged p50", seconds(o.to_acknowledgement_seconds.p50)],
    [`Acknowledged within ${speed.sla_seconds / 60} min`, percent(o.sla_compliance)],
    ["Waiting, inside the SLA", count(o.sla_pending)],
    ["Touches to conversion", o.touches_to_conversion ?? "–"],
  ]);
}

async function drawProposals(params, signal) {
  const sent = new URLSearchParams([...params].filter(([name]) => name !== "channel"));
  const p = await getJson("/v1/proposals", sent, signal);
  definitions(document.getElementById("proposals"), [
    ["Sent", count(p.sent)],
    ["Answered", p.answered_late ? `${count(p.answered)} (${count(p.answered_late)} late)` : count(p.answered)],
    ["Median days to an answer", p.median_days_to_answer ?? "–"],
    ["Stale: no answer in time", count(p.stale), p.stale > 0],
    ["Waiting, still in time", count(p.open)],
    ["Replaced by a newer one", count(p.replaced)],
  ]);
}

async function drawHealth(signal) {
  const health = await getJson("/v1/health", undefined, signal);
  const entries = [];
  for (const [group, topics] of Object.entries(health.consumer_lag)) {
    const total = Object.values(topics).reduce((a, b) => a + b, 0);
    entries.push([`${group} lag`, count(total), total > 1000]);
  }
  for (const [group, dead] of Object.entries(health.dlq)) entries.push([`${group} DLQ`, count(dead), dead > 0]);
  for (const [service, backlog] of Object.entries(health.outbox_backlog)) {
    if (backlog !== null) entries.push([`${service} outbox`, count(backlog), backlog > 1000]);
  }
  entries.push(["Webhook failures (1 h)", percent(health.webhooks_last_hour.failure_ratio), (health.webhooks_last_hour.failure_ratio || 0) > 0.05]);
  entries.push(["Capture → webhook p99 (1 day)", seconds(health.capture_to_webhook_seconds.p99)]);
  for (const problem of health.problems) entries.push(["note", problem, true]);
  definitions(document.getElementById("health"), entries);
}

// A problem is a status a screen reader says, once: written only when it changes. The time of
// the last update is not, or it would be read aloud every 5 s.
function say(problem, time) {
  write(document.getElementById("updated"), problem);
  document.getElementById("updated-at").textContent = time;
}

// The filters as last applied: the refresh every 5 s does not take a field still being typed in.
let applied = filters();
// The refresh under way: Apply cuts it short (its answers would draw the filters before it over
// the applied ones), and the refresh every 5 s waits for it rather than pile up behind it.
let running = null;

async function refresh() {
  running?.abort();
  const mine = new AbortController();
  running = mine;
  const params = applied;
  const { signal } = mine;
  const results = await Promise.allSettled([drawFunnel(params, signal), drawMoney(params, signal), drawSpeed(params, signal), drawProposals(params, signal), drawHealth(signal)]);
  if (signal.aborted) return; // a newer refresh draws and says how it went
  running = null;
  const failed = results.filter((r) => r.status === "rejected");
  const signIn = failed.find((r) => r.reason instanceof SignInNeeded);
  if (signIn) {
    askForToken(`Sign in: ${signIn.reason.message}.`);
    say("", "");
    return;
  }
  // what is on screen is no longer what the filters ask for: greyed, and said so
  document.body.classList.toggle("stale", failed.length > 0);
  if (failed.length) say(`not updated, the figures shown are older: ${failed[0].reason.message}`, "");
  else say("", `updated ${new Date().toLocaleTimeString()}`);
  document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
}

document.getElementById("sign-in").addEventListener("submit", (event) => {
  event.preventDefault();
  const field = document.getElementById("token");
  sessionStorage.setItem(TOKEN_KEY, field.value.trim());
  field.value = "";
  event.target.hidden = true;
  // the focused field has just been hidden: without this, focus falls to the body
  document.querySelector("#filters input").focus();
  refresh();
});

document.getElementById("filters").addEventListener("submit", (event) => {
  event.preventDefault();
  applied = filters();
  refresh();
});
refresh();
// Updates every 5 s can be paused while someone reads or compares the figures (WCAG 2.2.2).
const live = document.getElementById("live");
live.addEventListener("change", () => {
  if (live.checked && document.getElementById("sign-in").hidden) refresh();
});
setInterval(() => {
  if (live.checked && document.getElementById("sign-in").hidden && !running) refresh();
}, REFRESH_MS);
