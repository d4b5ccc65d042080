// The supervisor page: live over Server-Sent Events (the server says "changed" and the page
// refetches /supervisor/data), and refreshed every few seconds anyway for what only the clock
// changes. A county drilled into shows its calls, peers and shifts; the supervisor's actions
// (reassign, cancel, override a danger, acknowledge an alert) ask for a reason in a dialog.
"use strict";
const refresh = Number(document.body.dataset.refresh || 15) * 1000;
const zone = document.body.dataset.timezone || undefined;
const labels = { available: "peer available", busy: "on shift, none free", none: "no peer on shift", unserved: "no provider" };
const kinds = { unfilled: "Unfilled request", deliveries_failing: "CAD deliveries failing", credential_expiring: "Credential" };
const time = (iso) => iso ? new Date(iso).toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit", timeZone: zone }) : "—";
const cell = (row, text, cls) => { const td = row.insertCell(); td.textContent = text; if (cls) td.className = cls; return td; };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function say(text) { document.getElementById("message").textContent = text; }

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST", credentials: "same-origin", headers: { "content-type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  if (response.ok) return { ok: true, body: await response.json() };
  let detail = "the action failed (" + response.status + ")";
  try {
    const problem = await response.json();
    detail = problem.detail || detail;
    if (problem["invalid-params"]) detail += ": " + problem["invalid-params"].map((p) => p.name + " " + p.reason).join("; ");
  } catch (_) { /* keep */ }
  if (response.status === 401) window.location.assign("/supervisor");
  return { ok: false, detail };
}

const seen = new Map();  // county -> state, to announce changes (not every refresh)
let selected = null;     // the county drilled into

function render(data) {
  document.getElementById("as-of").textContent = time(data.at);
  const changes = [];
  for (const c of data.counties) {
    const path = document.getElementById("county-" + c.fips);
    if (!path) continue;
    if (seen.has(c.fips) && seen.get(c.fips) !== c.state) changes.push(c.name + " now: " + labels[c.state]);
    seen.set(c.fips, c.state);
    path.setAttribute("class", "county " + c.state + (c.fips === selected ? " selected" : ""));
    const label = c.name + ": " + labels[c.state] + (c.served ? " (" + c.available + " free, " + c.on_shift + " on shift)" : "");
    path.setAttribute("aria-label", label);
    path.querySelector("title").textContent = label;
  }
  const body = document.querySelector("#counties tbody");
  body.replaceChildren();
  for (const c of data.counties.filter((c) => c.served || c.on_shift)) {
    const row = body.insertRow();
    row.id = "row-" + c.fips;
    const open = el("button", { type: "button", class: "link", "data-county": c.fips, "aria-label": c.name + ": calls, peers and shifts" }, c.name);
    open.addEventListener("click", () => openCounty(c.fips, true));
    row.insertCell().append(open);
    // A county without a primary provider is served by a backup: say so, not pass it off as primary.
    cell(row, c.provider ? c.provider + (c.provider_role === "backup" ? " (backup only)" : "") : "—");
    cell(row, labels[c.state], "state " + c.state);
    cell(row, String(c.available));
    cell(row, c.peers.map((p) => p.display_name + " (" + (p.free ? "free" : p.why_not) + ", until " + time(p.shift_ends_at) + ")").join("; ") || "—");
    cell(row, String(c.active_assignments));
    cell(row, String(c.unfilled_24h));
  }
  const timeline = document.getElementById("timeline");
  timeline.replaceChildren();
  const start = Date.parse(data.gaps.starts_at), span = Date.parse(data.gaps.ends_at) - start;
  for (const c of data.gaps.counties) {
    const row = document.createElement("div");
    row.className = "row";
    const name = document.createElement("span");
    name.textContent = c.name;
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.setAttribute("role", "img");
    bar.setAttribute("aria-label", c.name + ": " + (c.gaps.length ? c.uncovered_hours + " hours uncovered" : "covered all 24 hours"));
    for (const g of c.gaps) {
      const gap = document.createElement("div");
      gap.className = "gap";
      gap.style.left = (100 * (Date.parse(g.starts_at) - start) / span) + "%";
      gap.style.width = (100 * (Date.parse(g.ends_at) - Date.parse(g.starts_at)) / span) + "%";
      bar.appendChild(gap);
    }
    const note = document.createElement("span");
    note.className = "note";
    note.textContent = c.gaps.length ? "no peer " + c.gaps.map((g) => time(g.starts_at) + "–" + time(g.ends_at)).join(", ") : "covered";
    row.append(name, bar, note);
    timeline.appendChild(row);
  }
  const unfilled = document.querySelector("#unfilled tbody");
  unfilled.replaceChildren();
  for (const u of data.unfilled) {
    const row = unfilled.insertRow();
    cell(row, time(u.at)); cell(row, u.call); cell(row, u.county || "—"); cell(row, time(u.next_available_at)); cell(row, u.why);
    cell(row, u.supervisors_told || "no one to tell");
  }
  if (!data.unfilled.length) cell(unfilled.insertRow(), "None.");
  renderAlerts(data.alerts || []);
  const deliveries = document.querySelector("#deliveries tbody");
  deliveries.replaceChildren();
  if (!data.deliveries.length) cell(deliveries.insertRow(), "No CAD sources.");
  for (const d of data.deliveries) {
    const row = deliveries.insertRow();
    cell(row, d.source); cell(row, String(d.pending)); cell(row, String(d.dead)); cell(row, time(d.failing_since));
    cell(row, d.alert ? "failing" : "ok", d.alert ? "alert" : "");
  }
  document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString([], { timeZone: zone });
  if (changes.length) document.getElementById("changes").textContent = changes.join(". ");
}

// --- alerts ----------------------------------------------------------------------------------

function alertState(a) {
  if (a.state === "open") {
    return el("span", { class: "badge open" }, "open" + (a.next_notice_at ? ", told again " + time(a.next_notice_at) : ""));
  }
  const ack = a.acknowledged_by ? "acknowledged by " + a.acknowledged_by + " " + time(a.acknowledged_at) : "";
  const span = el("span", { class: "badge " + a.state }, a.state === "resolved" ? "resolved: " + a.resolved_reason : ack);
  const wrap = el("span", {}, span);
  if (a.state === "resolved" && ack) wrap.append(el("span", { class: "summary" }, ack));
  if (a.acknowledged_note) wrap.append(el("span", { class: "summary" }, "“" + a.acknowledged_note + "”"));
  return wrap;
}

function renderAlerts(list) {
  const body = document.querySelector("#alerts tbody");
  body.replaceChildren();
  const open = list.filter((a) => a.state === "open").length;
  document.getElementById("alerts-open").textContent = open ? "(" + open + " open)" : "(none open)";
  for (const a of list) {
    const row = body.insertRow();
    row.id = "alert-" + a.id;
    row.className = "alert-row " + a.state;
    cell(row, time(a.raised_at));
    row.insertCell().append(el("strong", {}, kinds[a.kind] + ": "), a.title, el("span", { class: "summary" }, a.detail));
    row.insertCell().append(alertState(a));
    cell(row, a.notices + "× " + (a.told.length ? "(" + a.told.join(", ") + ")" : "(no one to tell)"));
    const act = row.insertCell();
    if (a.state === "open") {
      const button = el("button", { type: "button", "data-action": "acknowledge", "data-id": a.id }, "Acknowledge");
      button.addEventListener("click", () => openDialog({
        title: "Acknowledge alert", what: a.title, peer: false, reasonLabel: "Note (optional): what was done", required: false,
        submit: "Acknowledge", opener: button,
        send: (form) => post("/supervisor/alerts/" + a.id + "/acknowledge", { note: form.reason || null }),
        done: "Alert acknowledged: it will not be sent again.",
      }));
      act.append(button);
    }
  }
  if (!list.length) cell(body.insertRow(), "No alerts.");
}

// --- a county drilled into -------------------------------------------------------------------

function peerState(a) {
  if (!a) return el("span", { class: "state" }, "none requested");
  const who = a.peer_display_name || "peer";
  if (a.status === "offered") return el("span", { class: "state offered" }, "offered to " + who + ", until " + time(a.expires_at));
  if (a.staged) return el("span", { class: "state staged" }, who + " staged — waiting for scene secure");
  if (a.status === "unfilled") return el("span", { class: "state unfilled" }, "nobody free" + (a.next_available_at ? "; next " + time(a.next_available_at) : ""));
  if (a.status === "cancelled") return el("span", { class: "state cancelled" }, who + " called off (" + (a.cancel_reason || "").replace("_", " ") + ")");
  const words = { accepted: "accepted by ", en_route: "en route: ", on_scene: "on scene: ", cleared: "cleared: ", declined: "declined: ", expired: "expired: " };
  return el("span", { class: "state " + a.status }, (words[a.status] || a.status + ": ") + who);
}

function actionButton(label, action, id, spec) {
  const button = el("button", { type: "button", "data-action": action, "data-id": id }, label);
  button.addEventListener("click", () => openDialog({ ...spec, opener: button }));
  return button;
}

function callActions(call) {
  const td = el("td", {});
  const a = call.assignment;
  const label = call.source + "/" + call.incident_number;
  if (a && (a.status === "offered" || a.status === "accepted")) {
    td.append(actionButton("Reassign…", "reassign", a.id, {
      title: "Hand " + label + " to another peer", what: "Now: " + peerState(a).textContent, peer: true,
      candidates: "/supervisor/assignments/" + a.id + "/candidates",
      reasonLabel: "Why (kept on the record)", required: true, submit: "Reassign",
      send: (form) => post("/supervisor/assignments/" + a.id + "/reassign", { peer_id: form.peer_id, reason: form.reason }),
      done: "Reassigned: the new peer has been offered the call.",
    }), " ");
  }
  if (a && ["offered", "accepted", "en_route", "on_scene"].includes(a.status)) {
    td.append(actionButton("Cancel…", "cancel", a.id, {
      title: "Call the peer off " + label, what: "Now: " + peerState(a).textContent, peer: false,
      reasonLabel: "Why (kept on the record)", required: true, submit: "Call the peer off",
      send: (form) => post("/supervisor/assignments/" + a.id + "/cancel", { reason: form.reason }),
      done: "The peer is called off.",
    }), " ");
  }
  if (call.turned_dangerous_at && call.decision === "ineligible") {
    td.append(actionButton("Override danger…", "override", call.id, {
      title: "Police report the danger on " + label + " unfounded",
      what: "The call goes back to review: a person decides whether a peer goes; none is sent by this. " + (call.decision_summary || ""),
      peer: false, reasonLabel: "Who reported it unfounded, and what they said", required: true, submit: "Override",
      send: (form) => post("/supervisor/calls/" + call.id + "/danger-override", { reason: form.reason }),
      done: "Overridden: the call is under review again.",
    }));
  }
  return td;
}

function renderCounty(d) {
  document.getElementById("county-title").textContent = d.name + " County";
  const summary = document.getElementById("county-summary");
  summary.replaceChildren(
    el("span", { class: "badge state-" + d.state }, labels[d.state]),
    " " + d.available + " free of " + d.on_shift + " on shift" + (d.provider_id ? "; provider " + d.provider_id + (d.provider_role === "backup" ? " (backup only)" : "") : "; no provider"),
  );
  const calls = document.querySelector("#county-calls tbody");
  calls.replaceChildren();
  for (const call of d.calls) {
    const row = calls.insertRow();
    row.id = "call-" + call.id;
    row.className = [call.decision === "review" ? "review" : "", call.turned_dangerous_at ? "dangerous" : "", call.ended ? "ended" : ""].join(" ").trim();
    cell(row, time(call.opened_at));
    row.insertCell().append(call.source + "/" + call.incident_number, el("span", { class: "summary" }, (call.agency || "") + (call.status ? " · " + call.status : "")));
    const triage = row.insertCell();
    if (call.decision) triage.append(el("span", { class: "decision " + call.decision }, call.decision));
    else triage.append("not yet triaged");
    if (call.turned_dangerous_at) triage.append(" ", el("span", { class: "badge open" }, "turned dangerous " + time(call.turned_dangerous_at)));
    if (call.decision_summary) triage.append(el("span", { class: "summary" }, call.decision_summary));
    row.insertCell().append(peerState(call.assignment));
    row.append(callActions(call));
  }
  if (!d.calls.length) cell(calls.insertRow(), "No calls opened here in the last 12 hours.");
  const peers = document.querySelector("#county-peers tbody");
  peers.replaceChildren();
  for (const p of d.peers) {
    const row = peers.insertRow();
    row.insertCell().append(p.display_name, el("span", { class: "summary" }, p.provider_id + " · " + p.status.replace("_", " ")));
    const now = p.free ? el("span", { class: "badge state-available" }, "free") : el("span", { class: "badge " + (p.on_shift_now ? "state-busy" : "state-none") }, p.why_not || "not free");
    row.insertCell().append(now);
    const creds = row.insertCell();
    for (const problem of p.credential_problems) creds.append(el("span", { class: "badge open" }, problem), " ");
    for (const c of p.credentials_expiring) creds.append(el("span", { class: "summary" }, c.kind + " expires " + time(c.expires_at)));
    if (!p.credential_problems.length && !p.credentials_expiring.length) creds.append("valid");
    cell(row, p.assignment ? p.assignment.incident_number + " (" + p.assignment.status.replace("_", " ") + ")" : "—");
    cell(row, p.shifts.map((s) => time(s.starts_at) + "–" + time(s.ends_at) + (s.kind === "on_call" ? " on call" : "")).join("; ") || "none");
  }
  if (!d.peers.length) cell(peers.insertRow(), "No peer serves this county.");
}

async function loadCounty() {
  if (!selected) return;
  const response = await fetch("/supervisor/counties/" + selected, { credentials: "same-origin" });
  if (response.status === 401) { window.location.assign("/supervisor"); return; }
  if (!response.ok) { say("Could not load the county (" + response.status + ")."); return; }
  renderCounty(await response.json());
}

async function openCounty(fips, focus) {
  const previous = document.getElementById("county-" + selected);
  if (previous) previous.classList.remove("selected");
  selected = fips;
  const path = document.getElementById("county-" + fips);
  if (path) path.classList.add("selected");
  await loadCounty();
  const section = document.getElementById("county");
  section.hidden = false;
  if (focus) {
    section.scrollIntoView({ block: "start" });
    document.getElementById("county-title").focus();
  }
}

document.getElementById("county-close").addEventListener("click", () => {
  const fips = selected;
  const path = document.getElementById("county-" + fips);
  if (path) path.classList.remove("selected");
  selected = null;
  document.getElementById("county").hidden = true;
  const back = document.querySelector('[data-county="' + fips + '"]') || path;
  if (back) back.focus();
});

// --- the action dialog: a reason (and, to reassign, a peer) --------------------------------

const dialog = document.getElementById("act");
const form = document.getElementById("act-form");
let current = null;

async function openDialog(spec) {
  current = spec;
  document.getElementById("act-title").textContent = spec.title;
  document.getElementById("act-what").textContent = spec.what || "";
  document.getElementById("act-error").textContent = "";
  document.getElementById("act-reason-label").textContent = spec.reasonLabel;
  const reason = document.getElementById("act-reason");
  reason.value = "";
  reason.required = !!spec.required;
  document.getElementById("act-submit").textContent = spec.submit;
  document.getElementById("act-submit").disabled = false;
  const peerRow = document.getElementById("act-peer-row");
  const left = document.getElementById("act-left");
  const select = document.getElementById("act-peer");
  peerRow.hidden = !spec.peer;
  left.textContent = "";
  select.replaceChildren();
  select.required = !!spec.peer;
  if (spec.peer) {
    const response = await fetch(spec.candidates, { credentials: "same-origin" });
    const found = response.ok ? await response.json() : { candidates: [], left_out: [] };
    for (const c of found.candidates) select.append(el("option", { value: c.peer_id }, c.display_name + " — " + (c.reasons[0] || "")));
    if (found.left_out.length) {
      const group = el("optgroup", { label: "Cannot take it now" });
      for (const x of found.left_out) group.append(el("option", { value: x.peer_id, disabled: "" }, x.display_name + " — " + x.why));
      select.append(group);
    }
    if (!found.candidates.length) {
      left.textContent = "No other peer could take this call now.";
      document.getElementById("act-submit").disabled = true;
    }
  }
  dialog.showModal();
  (spec.peer && firstEnabled(select) ? select : reason).focus();
}

function firstEnabled(select) { return select.options.length && !select.options[0].disabled; }

function closeDialog() {
  dialog.close();
  const opener = current && current.opener;
  const again = opener && document.querySelector('[data-action="' + opener.dataset.action + '"][data-id="' + opener.dataset.id + '"]');
  (again || document.getElementById(selected ? "county-title" : "alerts-title")).focus();
  current = null;
}

document.getElementById("act-cancel").addEventListener("click", closeDialog);
dialog.addEventListener("cancel", (event) => { event.preventDefault(); closeDialog(); });
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!current) return;
  const values = { reason: document.getElementById("act-reason").value.trim(), peer_id: document.getElementById("act-peer").value };
  if (current.required && !values.reason) {
    document.getElementById("act-error").textContent = "Say why: the reason is kept on the record.";
    document.getElementById("act-reason").focus();
    return;
  }
  const answer = await current.send(values);
  if (!answer.ok) { document.getElementById("act-error").textContent = answer.detail; return; }
  say(current.done);
  await refreshAll();
  closeDialog();
});

// --- keeping up: the live stream, and a timer for what only the clock changes ---------------

async function poll() {
  try {
    const response = await fetch("/supervisor/data", { credentials: "same-origin", headers: { accept: "application/json" } });
    if (response.status === 401) { window.location.assign("/supervisor"); return; }
    if (response.ok) render(await response.json());
    else document.getElementById("updated").textContent = "refresh failed (" + response.status + "); retrying";
  } catch (e) {
    document.getElementById("updated").textContent = "offline; retrying";
  }
}

async function refreshAll() {
  await Promise.all([poll(), loadCounty()]);
}

let timer = null;
async function tick() {
  await refreshAll();
  timer = setTimeout(tick, refresh);
}
// A hidden tab does not poll; it catches up as soon as it is shown again.
document.addEventListener("visibilitychange", () => {
  clearTimeout(timer);
  if (!document.hidden) tick();
});
for (const path of document.querySelectorAll("path.county")) {
  path.addEventListener("focus", () => { document.getElementById("focused").textContent = path.getAttribute("aria-label"); });
  path.addEventListener("click", () => openCounty(path.dataset.fips, true));
  path.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); openCounty(path.dataset.fips, true); }
  });
}

function listen() {
  const live = document.getElementById("live");
  const source = new EventSource("/supervisor/events");
  source.onopen = () => { live.textContent = "live"; };
  source.onmessage = () => refreshAll();
  source.onerror = () => { live.textContent = "reconnecting…"; };
}

window.corespondLoadedAt = Date.now();
tick();
listen();

// --- notices of unfilled requests: Web Push on this browser, SMS to a phone -------------------

function base64ToBytes(text) {
  const padded = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

async function saveContact(channels) {
  const phone = document.getElementById("sms-phone").value.trim() || null;
  const response = await fetch("/supervisor/contact", {
    method: "POST", credentials: "same-origin", headers: { "content-type": "application/json" },
    body: JSON.stringify({ channels, phone }),
  });
  if (response.ok) return "Saved.";
  try { return (await response.json()).detail || "Could not save."; } catch (_) { return "Could not save."; }
}

function channels() {
  const list = ["webpush"];
  if (document.getElementById("sms-on").checked) list.push("sms");
  return list;
}

async function pushOn() {
  const state = document.getElementById("push-state");
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
    state.textContent = "This browser cannot show notifications; keep this page open.";
    return;
  }
  if ((await Notification.requestPermission()) !== "granted") {
    state.textContent = "Notifications are blocked for this site: allow them in the browser's settings.";
    return;
  }
  const registration = await navigator.serviceWorker.register("/supervisor/sw.js", { scope: "/supervisor" });
  await navigator.serviceWorker.ready;
  const key = (await (await fetch("/peer/push-key")).json()).public_key;
  const subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: base64ToBytes(key) });
  const response = await fetch("/supervisor/push-subscriptions", {
    method: "POST", credentials: "same-origin", headers: { "content-type": "application/json" },
    body: JSON.stringify(subscription.toJSON()),
  });
  state.textContent = response.ok ? "This browser will be told of unfilled requests." : "Could not turn notices on (" + response.status + ").";
}

const notices = document.getElementById("notices");
if (notices) {
  document.getElementById("push-on").addEventListener("click", () => pushOn().catch((e) => {
    document.getElementById("push-state").textContent = "Could not turn notices on: " + e.message;
  }));
  notices.addEventListener("submit", (event) => {
    event.preventDefault();
    saveContact(channels()).then((text) => { document.getElementById("contact-state").textContent = text; });
  });
}
