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

// why a token is asked for: the key of its words, said again in another language
class SignInNeeded extends Error {}
let signInReason = "tokenNeeded";

function sayWhySignIn() {
  document.getElementById("sign-in-message").textContent = text("signInAsk", { reason: text(signInReason) });
}

function askForToken(reason) {
  signInReason = reason;
  sayWhySignIn();
  const form = document.getElementById("sign-in");
  form.hidden = false;
  document.getElementById("token").focus();
}

async function getJson(path, params, signal) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) throw new SignInNeeded("tokenNeeded");
  const response = await fetch(params && [...params].length ? `${path}?${params}` : path, {
    headers: { Authorization: `Bearer ${token}` },
    signal,
  });
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    throw new SignInNeeded("tokenRefused");
  }
  if (!response.ok) {
    // a problem+json names the field and why ("to: must be after `from`"): say that, not a status
    const problem = await response.json().catch(() => ({}));
    const errors = (problem.errors || []).map((e) => `${e.field}: ${e.reason}`);
    throw new Error(errors.length ? errors.join("; ") : `${path}: ${problem.title || response.status}`);
  }
  return response.json();
}

const nothing = { p50: null, p90: null, p99: null };
const noHandOffs = { to_first_webhook_seconds: nothing, to_acknowledgement_seconds: nothing, sla_compliance: null, sla_pending: 0, touches_to_conversion: null };

// Each card reads its answers (load) and draws them (show): the last answers are drawn again, in
// the language just chosen, without asking the API (the updates may be paused).
const funnelCard = {
  load: (params, signal) => getJson("/v1/funnel", params, signal),
  show(funnel) {
    const stages = funnel.stages.map((s) => ({ name: s.stage, label: stageName(s.stage), count: s.count }));
    bars(document.getElementById("funnel"), stages, (s) => s.count, count);
    rows(document.querySelector("#funnel-table tbody"), funnel.stages.map((s) => [stageName(s.stage), count(s.count), percent(s.conversion_from_previous)]));
    const steps = funnel.stages.slice(1).map((s) => `${stageName(s.stage)} ${percent(s.conversion_from_previous)}`);
    const rebuild = funnel.rebuilding;
    const partial = rebuild ? ` · ${text("rebuilding", { share: percent(rebuild.done / Math.max(rebuild.events, 1)) })}` : "";
    // overall_conversion runs from the first stage shown to the last, not from every lead counted
    const ends = [funnel.stages[0], funnel.stages[funnel.stages.length - 1]];
    const span = funnel.stages.length ? ends.map((s) => stageName(s.stage)).join(" → ") : text("overall");
    write(document.getElementById("overall"), `${text("leadsTotal", { count: count(funnel.total) })} · ${span} ${percent(funnel.overall_conversion)} · ${steps.join(" · ")}${partial}`);
  },
};

// a day picked in the filters, as this browser's date
const picked = (value) => new Date(...value.split("-").map((part, i) => Number(part) - (i === 1 ? 1 : 0)));

const moneyCard = {
  async load(params, signal) {
    const now = new Date();
    const [from, to] = [params.get("from"), params.get("to")];
    // the start of tomorrow here: today's customers and spend, not tomorrow's (a day's spend counts where its midnight is);
    // a day after a chosen `from` past it, and the year before a chosen `to`: never a period ending before it starts
    let end = to ? new Date(to) : new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1);
    if (!to && from && end <= new Date(from)) end = new Date(new Date(from).getTime() + 86400000);
    const window = new URLSearchParams({
      from: from || new Date(end.getFullYear() - 1, end.getMonth(), 1).toISOString(),
      to: to || end.toISOString(),
      group_by: "channel",
    });
    if (params.get("tz")) window.set("tz", params.get("tz"));
    const [cac, ltv] = await Promise.all([getJson("/v1/cac", window, signal), getJson("/v1/ltv", new URLSearchParams({ group_by: "channel" }), signal)]);
    // the CAC's days as the reader counts them (a day picked is whole; the default ends today), beside LTV's all time
    const period = {
      from: from ? picked(from) : new Date(end.getFullYear() - 1, end.getMonth(), 1),
      to: to ? picked(to) : new Date(end.getFullYear(), end.getMonth(), end.getDate() - 1),
    };
    return { cac, ltv, period };
  },
  show({ cac, ltv, period }, params) {
    write(document.getElementById("money-period"), text("moneyPeriod", { from: day(period.from), to: day(period.to) }));
    // leads without a channel are the API's group null: that channel-less row, not every channel's;
    // each channel over the whole period as the API gives it (its `groups`), its CAC as the API
    // rounds it: the page summing the months itself showed 205,000.13 where the API said 205,000.12
    const byChannel = new Map();
    // costs entered without a channel (salaries...) are shared by every channel: a row of their
    // own with no CAC, not a channel that spent and won nobody; they count in "All channels"
    let shared = { name: null, costs: 0, others: {} };
    for (const group of cac.groups) {
      // customers of months with no spend entered (customers_left_out) cost something unknown:
      // counted as free, 9 of them beside 1 bought for 1,000 read a CAC of 100
      const unknown = group.customers_left_out;
      const entry = {
        name: group.group,
        costs: group.costs,
        customers: group.customers + unknown,
        unknown,
        cac: group.cac !== null && !unknown ? group.cac : 0,
        // spend and revenue in another currency than the report's: left out of its CAC, shown apart
        others: group.other_currencies || {},
      };
      if (group.shared) shared = entry;
      else byChannel.set(group.group, entry);
    }
    const ltvByChannel = new Map(ltv.rows.map((row) => [row.group, row.ltv_revenue]));
    const every = [...byChannel.values()];
    for (const [name] of ltvByChannel) {
      if (!byChannel.has(name)) every.push({ name, costs: 0, customers: 0, unknown: 0, cac: 0, others: {} });
    }
    for (const c of every) c.label = c.name === null ? text("noChannel") : channelName(c.name);
    const chosen = params.get("channel");  // the channel filter narrows the rows as it does the funnel
    const channels = chosen ? every.filter((c) => c.name === chosen) : every;
    // a channel that spent and won nobody has no CAC (the API's null), not a CAC of 0: the worst, not the cheapest
    // and one that won customers with no spend entered has an unknown CAC, as the API says, not a free one,
    // also when spend was entered for its other months
    const cacText = (c) => (c.customers ? (!c.costs ? text("noSpend") : c.unknown ? text("spendMissing") : amount(c.cac)) : c.costs ? text("noCustomers") : "–");
    bars(document.getElementById("money"), channels, (c) => c.cac, (v, c) => (c.customers || !c.costs ? cacText(c) : text("noCustomersSpent", { amount: amount(c.costs) })));
    const table = channels.map((c) => [c.label, cacText(c), count(c.customers), amount(ltvByChannel.get(c.name))]);
    const listed = [...channels];
    if (!chosen) {
      shared.label = text("sharedCosts");
      if (shared.costs || Object.keys(shared.others).length) {
        table.push([shared.label, text("sharedSpent", { amount: amount(shared.costs) }), "–", "–"]);
        listed.push(shared);
      }
      // DOMAIN's CAC: every cost, the shared ones too, over every customer (the API's overall)
      const all = cac.overall;
      const allCac = all.cac !== null ? amount(all.cac) : all.customers ? text("noSpend") : all.costs ? text("noCustomers") : "–";
      table.push([text("allChannels"), allCac, count(all.customers), amount(ltv.overall.ltv_revenue)]);
    }
    rows(document.querySelector("#money-table tbody"), table);
    // what each row left out in other currencies, under the table (a column would not fit a phone)
    const others = (c) => Object.entries(c.others).map(([code, o]) => text("otherAmounts", { currency: code, costs: amount(o.costs), revenue: amount(o.revenue) })).join("; ");
    const left = listed.filter((c) => Object.keys(c.others).length).map((c) => text("leftOut", { name: c.label, amounts: others(c) }));
    redraw(document.getElementById("other-currencies"), left.map((line) => Object.assign(document.createElement("li"), { textContent: line })));
    // every amount is in the report's currency; those in others are not converted but shown apart
    write(document.getElementById("currency"), text("currencyNote", { currency: cac.currency }));
    const overall = ltv.overall;
    write(document.getElementById("ltv"), overall.customers
      ? text("ltvOverall", { revenue: amount(overall.ltv_revenue), margin: amount(overall.ltv_margin), ratio: count(ltv.ltv_to_cac) })
      : text("noPurchases"));
  },
};

// Leads, MQLs, SQLs and customers won per channel and per campaign, of the period (and the
// channel chosen): the funnel's own groups, the largest campaigns first.
const ORIGIN_STAGES = "lead,mql,sql,customer";
const originCard = {
  async load(params, signal) {
    const by = (group) => getJson("/v1/funnel", new URLSearchParams([...params, ["group_by", group], ["stages", ORIGIN_STAGES]]), signal);
    const [channels, campaigns] = await Promise.all([by("channel"), by("campaign")]);
    return { channels, campaigns };
  },
  show({ channels, campaigns }, params) {
    // the funnel counts the leads captured in the period, the CAC table the customers won in it:
    // two "won" figures of one page, each said which it is
    const [from, to] = [params.get("from"), params.get("to")];
    write(document.getElementById("origin-period"), from || to
      ? text("originPeriod", { from: from ? day(picked(from)) : "…", to: to ? day(picked(to)) : "…" })
      : text("originAllTime"));
    const reached = (group) => group.stages.map((s) => count(s.count));
    const name = (group, none, named) => (group.overflow ? text("others") : group.group === null ? text(none) : named(group.group));
    rows(document.querySelector("#channels-table tbody"), channels.groups.map((g) => [name(g, "noChannel", channelName), ...reached(g)]));
    rows(document.querySelector("#campaigns-table tbody"), campaigns.groups.map((g) => [name(g, "noCampaign", (c) => c), ...reached(g)]));
  },
};

const speedCard = {
  async load(params, signal) {
    // the report has no channel filter: with one chosen, its row of the report by channel
    const asked = new URLSearchParams([...params].filter(([name]) => name !== "channel"));
    const byRep = new URLSearchParams([...asked, ["group_by", "rep"]]);
    if (params.get("channel")) asked.set("group_by", "channel");
    const [speed, reps] = await Promise.all([getJson("/v1/speed-to-lead", asked, signal), getJson("/v1/speed-to-lead", byRep, signal)]);
    return { speed, reps };
  },
  show({ speed, reps }, params) {
    const channel = params.get("channel");
    const o = channel ? speed.rows.find((row) => row.group === channel) || noHandOffs : speed.overall;
    write(document.getElementById("speed-of"), channel ? ` (${channelName(channel)})` : "");
    definitions(document.getElementById("speed"), [
      [text("toWebhookP50"), seconds(o.to_first_webhook_seconds.p50)],
      [text("p90p99"), `${seconds(o.to_first_webhook_seconds.p90)} / ${seconds(o.to_first_webhook_seconds.p99)}`],
      [text("toAcknowledgedP50"), seconds(o.to_acknowledgement_seconds.p50)],
      [text("acknowledgedWithin", { minutes: count(speed.sla_seconds / 60) }), percent(o.sla_compliance)],
      [text("waitingInSla"), count(o.sla_pending)],
      [text("touchesToConversion"), count(o.touches_to_conversion)],
    ]);
    // each rep on the hand-offs they got, by name (every channel: the report by rep has no channel
    // filter); a rep handed nothing in the period is listed too, 0 and no timings, after the others
    const repName = (row) => (row.group === null ? text("noRep") : row.name || row.group.slice(0, 8));
    document.getElementById("reps").hidden = Boolean(channel) || reps.rows.length === 0;
    rows(document.querySelector("#reps-table tbody"), reps.rows.map((r) => [
      repName(r), count(r.hand_offs), count(r.to_acknowledgement_seconds.count), seconds(r.to_acknowledgement_seconds.p50), percent(r.sla_compliance), count(r.sla_pending),
    ]));
  },
};

const proposalsCard = {
  load: (params, signal) => getJson("/v1/proposals", new URLSearchParams([...params].filter(([name]) => name !== "channel")), signal),
  show(p) {
    definitions(document.getElementById("proposals"), [
      [text("sent"), count(p.sent)],
      [text("answered"), p.answered_late ? text("answeredLate", { answered: count(p.answered), late: count(p.answered_late) }) : count(p.answered)],
      [text("medianDaysToAnswer"), count(p.median_days_to_answer)],
      [text("stale"), count(p.stale), p.stale > 0],
      [text("open"), count(p.open)],
      [text("replaced"), count(p.replaced)],
    ]);
  },
};

const healthCard = {
  load: (params, signal) => getJson("/v1/health", undefined, signal),
  show(health) {
    const entries = [];
    for (const [group, topics] of Object.entries(health.consumer_lag)) {
      const total = Object.values(topics).reduce((a, b) => a + b, 0);
      entries.push([text("lag", { group }), count(total), total > 1000]);
    }
    for (const [group, dead] of Object.entries(health.dlq)) entries.push([text("dlq", { group }), count(dead), dead > 0]);
    for (const [service, backlog] of Object.entries(health.outbox_backlog)) {
      if (backlog !== null) entries.push([text("outbox", { service }), count(backlog), backlog > 1000]);
    }
    const failures = health.webhooks_last_hour.failure_ratio;
    entries.push([text("webhookFailures"), percent(failures), (failures || 0) > 0.05]);
    entries.push([text("toWebhookP99"), seconds(health.capture_to_webhook_seconds.p99)]);
    for (const problem of health.problems) entries.push([text("note"), problem, true, true]);
    definitions(document.getElementById("health"), entries);
  },
};

const CARDS = [funnelCard, moneyCard, originCard, speedCard, proposalsCard, healthCard];
const shown = new Map(); // card -> [its last answers, the filters they were asked with]

async function draw(card, params, signal) {
  const answers = await card.load(params, signal);
  if (signal.aborted) return;
  shown.set(card, [answers, params]);
  card.show(answers, params);
}

// A problem is a status a screen reader says, once: written only when it changes. The time of
// the last update is not, or it would be read aloud every 5 s. Both kept to be said again in
// another language.
let said = { problem: "", time: null };

function say(problem, time) {
  said = { problem, time };
  const line = document.getElementById("updated");
  if (problem) writeWithReason(line, "notUpdated", problem);
  else write(line, "");
  document.getElementById("updated-at").textContent = time ? text("updated", { time: clock(time) }) : "";
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
  const results = await Promise.allSettled(CARDS.map((card) => draw(card, params, signal)));
  if (signal.aborted) return; // a newer refresh draws and says how it went
  running = null;
  const failed = results.filter((r) => r.status === "rejected");
  const signIn = failed.find((r) => r.reason instanceof SignInNeeded);
  if (signIn) {
    askForToken(signIn.reason.message);
    say("", null);
    return;
  }
  // what is on screen is no longer what the filters ask for: greyed, and said so
  document.body.classList.toggle("stale", failed.length > 0);
  if (failed.length) say(failed[0].reason.message, null);
  else say("", new Date());
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

// Another language: the page's words, then the figures on screen, drawn again at once.
document.getElementById("language").addEventListener("change", (event) => {
  chooseLanguage(event.target.value);
  for (const [card, [answers, params]] of shown) card.show(answers, params);
  say(said.problem, said.time);
  if (!document.getElementById("sign-in").hidden) sayWhySignIn();
});
