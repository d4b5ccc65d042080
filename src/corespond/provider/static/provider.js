// The provider's follow-up queue: draws /provider/data, redraws when /provider/events says the
// queue changed, posts assignments and outcomes. Text from the server is only ever set as
// text, never as markup.
"use strict";

const OUTCOMES = {
  reached: "Reached",
  not_reached: "Not reached",
  in_treatment: "In treatment",
  relapse: "Relapse",
  declined: "Declined follow-up",
  deceased: "Deceased",
};
const STEPS = { "1d": "next day", "72h": "72 hours", "7d": "7 days", "30d": "30 days", added: "added by hand" };
let drawn = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "onclick") node.addEventListener("click", value);
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function when(iso) {
  // On the program's clock, as the page says, wherever the browser is.
  return new Date(iso).toLocaleString([], {
    weekday: "short", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    timeZone: document.body.dataset.timezone || undefined,
  });
}

function step(t) {
  if (t.kind === "qrt_visit") return "QRT visit";
  const months = /^(\d+)m$/.exec(t.step);
  return STEPS[t.step] || (months ? months[1] + " months" : t.step);
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST", credentials: "same-origin",
    headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  });
  if (response.ok) { document.getElementById("message").textContent = ""; draw(await response.json()); return; }
  let detail = "Could not save (" + response.status + ")";
  try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
  document.getElementById("message").textContent = detail;
}

function table(rows, peers, kind) {
  if (!rows.length) return el("p", { class: "quiet" }, "None.");
  return el("table", {},
    el("thead", {}, el("tr", {}, ["Person", "Due", "Step", "Assigned to", "What came of it"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((t) => {
      const who = el("select", { "aria-label": "Assign " + t.person_name + "'s follow-up" },
        el("option", { value: "" }, "the team"),
        peers.map((p) => el("option", { value: p.id, selected: p.id === t.assignee_peer_id }, p.name)));
      who.addEventListener("change", () => post(`/provider/followups/${t.id}/assign`, { peer_id: who.value || null }));
      const outcome = el("select", { "aria-label": "What came of " + t.person_name + "'s follow-up" },
        el("option", { value: "" }, "Choose…"), Object.entries(OUTCOMES).map(([value, label]) => el("option", { value }, label)));
      const save = el("button", { type: "button", onclick: () => {
        if (outcome.value) post(`/provider/followups/${t.id}/outcome`, { outcome: outcome.value });
        else { document.getElementById("message").textContent = "Choose what came of it."; outcome.focus(); }
      } }, "Save");
      const due = t.escalated_at ? "escalated " + when(t.escalated_at) + " (due " + when(t.due_at) + ")"
        : t.overdue ? "overdue since " + when(t.overdue_at) : when(t.due_at);
      return el("tr", { class: kind, "data-id": t.id },
        el("td", {}, el("strong", {}, t.person_name), t.person_contact ? el("div", {}, t.person_contact) : null),
        el("td", { class: t.overdue ? "late" : "" }, due),
        el("td", {}, step(t)),
        el("td", {}, who),
        el("td", {}, outcome, " ", save));
    })));
}

function told(notices) {
  // Whether overdue follow-ups reach this admin, and when they last did.
  if (!notices) return "";
  const on = notices.push_subscriptions > 0 || notices.sms;
  const last = notices.told[0];
  if (last) {
    const same = notices.told.filter((n) => n.at === last.at).map((n) => n.channel + " " + n.state);
    return "You were told " + when(last.at) + " (" + same.join(", ") + "): " + last.body + ".";
  }
  return on ? "You will be told here and by your notices when follow-ups become overdue."
    : "Turn notices on below to be told when follow-ups become overdue.";
}

function draw(data) {
  const key = JSON.stringify(data, (k, v) => (k === "at" ? undefined : v));
  document.getElementById("live").textContent = "As of " + when(data.at) + ": live, it updates itself.";
  if (key === drawn) return;
  drawn = key;
  document.getElementById("told").textContent = told(data.notices);
  for (const part of ["escalated", "overdue", "week", "later"]) {
    document.getElementById(part).replaceChildren(table(data[part], data.peers, part));
    document.getElementById("count-" + part).textContent = "(" + data[part].length + ")";
  }
}

async function load() {
  const response = await fetch("/provider/data", { credentials: "same-origin" });
  if (response.status === 401) { window.location.assign("/provider"); return; }
  if (response.ok) draw(await response.json());
}

// --- notices of overdue follow-ups: Web Push on this browser, SMS to a phone ----------------

function base64ToBytes(text) {
  const padded = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

async function saveContact() {
  const channels = ["webpush"];
  if (document.getElementById("sms-on").checked) channels.push("sms");
  const phone = document.getElementById("sms-phone").value.trim() || null;
  const response = await fetch("/provider/contact", {
    method: "POST", credentials: "same-origin", headers: { "content-type": "application/json" },
    body: JSON.stringify({ channels, phone }),
  });
  if (response.ok) { load(); return "Saved."; }
  try { return (await response.json()).detail || "Could not save."; } catch (_) { return "Could not save."; }
}

async function pushOn() {
  const state = document.getElementById("push-state");
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
    state.textContent = "This browser cannot show notifications; use SMS, or keep this page open.";
    return;
  }
  if ((await Notification.requestPermission()) !== "granted") {
    state.textContent = "Notifications are blocked for this site: allow them in the browser's settings.";
    return;
  }
  const registration = await navigator.serviceWorker.register("/provider/sw.js", { scope: "/provider" });
  await navigator.serviceWorker.ready;
  const key = (await (await fetch("/peer/push-key")).json()).public_key;
  const subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: base64ToBytes(key) });
  const response = await fetch("/provider/push-subscriptions", {
    method: "POST", credentials: "same-origin", headers: { "content-type": "application/json" },
    body: JSON.stringify(subscription.toJSON()),
  });
  state.textContent = response.ok ? "This browser will be told of overdue follow-ups." : "Could not turn notices on (" + response.status + ").";
  if (response.ok) load();
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("push-on").addEventListener("click", () => pushOn().catch((e) => {
    document.getElementById("push-state").textContent = "Could not turn notices on: " + e.message;
  }));
  document.getElementById("notices").addEventListener("submit", (event) => {
    event.preventDefault();
    saveContact().then((text) => { document.getElementById("contact-state").textContent = text; });
  });
  load();
  const events = new EventSource("/provider/events");
  events.onmessage = () => load();
  events.onerror = () => { document.getElementById("live").textContent = "Reconnecting…"; };
});
