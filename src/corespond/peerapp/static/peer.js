// The peer app: draws /peer/data, redraws when /peer/events says something changed, and
// posts the buttons. Text from the server is only ever set as text, never as markup.
"use strict";

const LIVE = ["offered", "accepted", "en_route", "on_scene"];
const OUTCOMES = {
  contact_made: "Contact made",
  referred: "Referred to services",
  declined_services: "Person declined services",
  no_contact: "No contact",
};
const REFERRALS = {
  detox: "Detox",
  inpatient: "Inpatient treatment",
  mat: "MOUD / MAT",
  outpatient: "Outpatient",
  recovery_housing: "Recovery housing",
  other_services: "Other services",
};
const DECLINE_REASONS = ["Not available right now", "Too far away", "I know the person", "Other"];
let state = null;
let timer = null;

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

function say(text) {
  document.getElementById("live").textContent = text;
}

async function load() {
  const response = await fetch("/peer/data", { credentials: "same-origin" });
  if (response.status === 401) { window.location.assign("/peer"); return; }
  if (!response.ok) { say("Could not load: " + response.status); return; }
  draw(await response.json());
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  if (response.ok) { draw(await response.json()); return true; }
  let detail = "Something went wrong (" + response.status + ")";
  try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
  say(detail);
  await load();
  return false;
}

function mapLink(call) {
  const where = call.location || {};
  const query = where.lat !== null && where.lat !== undefined
    ? where.lat + "," + where.lon
    : [where.address, where.city].filter(Boolean).join(", ");
  if (!query) return null;
  return el("a", { href: "https://www.google.com/maps/search/?api=1&query=" + encodeURIComponent(query), rel: "noopener", target: "_blank" }, "Open in maps");
}

function callDetails(call) {
  const view = call.for_peer;
  const where = call.location || {};
  const facts = view.facts.map((f) => el("li", { class: f.kind }, f.label));
  const parts = [
    el("p", {}, el("strong", {}, [where.address, where.city].filter(Boolean).join(", ") || "Location: ask dispatch")),
    mapLink(call),
    call.county ? el("p", { class: "quiet" }, call.county.name + " County · " + (call.agency || "")) : null,
    facts.length ? el("ul", { class: "facts", "aria-label": "What we know" }, facts) : null,
    view.note ? el("p", {}, el("strong", {}, "From dispatch: "), view.note) : null,
  ];
  if (view.hazards.length) parts.push(el("p", {}, el("strong", {}, "Hazards: "), view.hazards.join("; ")));
  if (view.narrative_excerpt.length) {
    parts.push(el("div", { class: "excerpt" }, view.narrative_excerpt.map((line) => el("div", {}, line))));
  }
  if (view.narrative_withheld || view.hazards_withheld) {
    parts.push(el("p", { class: "quiet" }, "More is with dispatch (" + (view.narrative_withheld + view.hazards_withheld) + " details not shown here)."));
  }
  return parts.filter(Boolean);
}

function countdown(expiresAt) {
  const node = el("p", { class: "countdown", id: "countdown", "aria-label": "Time left to answer" });
  const tick = () => {
    const left = Math.max(0, Math.round((new Date(expiresAt) - Date.now()) / 1000));
    node.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
    if (left === 0 && timer) { clearInterval(timer); timer = null; setTimeout(load, 1500); }
  };
  if (timer) clearInterval(timer);
  tick();
  timer = setInterval(tick, 1000);
  return node;
}

function declineForm(a) {
  const select = el("select", { id: "decline-reason" }, DECLINE_REASONS.map((r) => el("option", { value: r }, r)));
  return el("form", { id: "decline-form", hidden: true },
    el("label", { for: "decline-reason" }, "Why can't you take it?"), select,
    el("button", { type: "submit", class: "big stop", id: "decline-confirm" }, "Decline this call"));
}

function clearForm(a) {
  const outcome = el("select", { id: "outcome", required: true },
    el("option", { value: "" }, "Choose…"),
    Object.entries(OUTCOMES).map(([value, label]) => el("option", { value }, label)));
  const boxes = Object.entries(REFERRALS).map(([value, label]) =>
    el("label", {}, el("input", { type: "checkbox", name: "referral", value }), " " + label));
  return el("form", { id: "clear-form" },
    el("label", { for: "outcome" }, "What came of it?"), outcome,
    el("fieldset", {}, el("legend", {}, "Referred to"), boxes),
    el("button", { type: "submit", class: "big go", id: "clear" }, "Clear the call"));
}

function drawAssignment(a) {
  const box = document.getElementById("assignment");
  box.replaceChildren();
  if (timer) { clearInterval(timer); timer = null; }
  if (!a) { box.append(el("p", { class: "quiet" }, "No offer right now.")); return; }
  const card = el("article", { class: "card", "aria-labelledby": "call-title" });
  const title = el("h2", { id: "call-title" }, "Call " + a.call.incident_number);
  if (a.status === "offered") {
    card.append(el("p", { class: "banner offer", role: "alert" }, "New offer: can you take this call?"),
      countdown(a.expires_at), title, ...callDetails(a.call));
    const accept = el("button", { type: "button", class: "big go", id: "accept", onclick: () => post(`/peer/assignments/${a.id}/accept`) }, "Accept");
    const form = declineForm(a);
    const decline = el("button", { type: "button", class: "big stop", id: "decline", onclick: () => { form.hidden = false; form.querySelector("select").focus(); } }, "Decline");
    form.addEventListener("submit", (event) => { event.preventDefault(); post(`/peer/assignments/${a.id}/decline`, { reason: form.querySelector("select").value }); });
    card.append(accept, decline, form);
  } else if (a.status === "accepted") {
    const secure = !a.scene_secure_required || a.scene_secured_at;
    card.append(secure
      ? el("p", { class: "banner go", role: "alert", id: "go" }, "Go: police report the scene secure.")
      : el("p", { class: "banner wait", role: "alert", id: "wait" }, "Wait: police have not reported the scene secure. Stay staged nearby."),
      title, ...callDetails(a.call),
      el("button", { type: "button", class: "big go", id: "en-route", disabled: !secure, onclick: () => post(`/peer/assignments/${a.id}/en-route`) }, "I'm on my way"));
  } else if (a.status === "en_route") {
    card.append(el("p", { class: "banner go" }, "On your way."), title, ...callDetails(a.call),
      el("button", { type: "button", class: "big go", id: "on-scene", onclick: () => post(`/peer/assignments/${a.id}/on-scene`) }, "I'm on scene"));
  } else if (a.status === "on_scene") {
    const form = clearForm(a);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const outcome = form.querySelector("#outcome").value;
      if (!outcome) { say("Choose what came of it."); form.querySelector("#outcome").focus(); return; }
      const referrals = [...form.querySelectorAll("input[name=referral]:checked")].map((i) => i.value);
      post(`/peer/assignments/${a.id}/clear`, { outcome, referrals });
    });
    card.append(el("p", { class: "banner go" }, "On scene."), title, ...callDetails(a.call), form);
  } else {
    const words = {
      expired: "This offer timed out; it went to the next peer.",
      declined: "You declined this call.",
      cancelled: a.cancel_reason === "danger" ? "Called off: the call now reports danger. Do not go."
        : a.cancel_reason === "reassigned" ? "A supervisor gave this call to another peer. You need not go."
        : a.cancel_reason === "supervisor" ? "Called off by a supervisor." : "Called off by dispatch.",
      cleared: "Cleared. Thank you.",
      unfilled: "No peer could take this call.",
    };
    card.append(el("p", { class: a.status === "cancelled" ? "banner stop" : "banner offer", id: "ended", role: "status" }, words[a.status] || a.status), title);
  }
  box.append(card);
}

let drawn = null;

function draw(data) {
  state = data;
  const live = data.assignments.find((a) => LIVE.includes(a.status)) || data.assignments[0] || null;
  // Redrawn only when what it shows has changed: a live update must not wipe a form the
  // peer is filling in (the outcome, a decline's reason).
  const key = JSON.stringify(live);
  if (key !== drawn) {
    drawn = key;
    drawAssignment(live);
  }
  document.getElementById("status").textContent = data.peer.status.replace("_", " ");
  const toggle = document.getElementById("toggle-duty");
  const offDuty = data.peer.status === "off_duty";
  toggle.textContent = offDuty ? "Go on duty (available)" : "Go off duty";
  toggle.disabled = data.peer.status === "busy";
  const shifts = document.getElementById("shifts");
  shifts.replaceChildren(...(data.shifts.length ? data.shifts.map((s) => {
    const start = new Date(s.starts_at), end = new Date(s.ends_at);
    const text = start.toLocaleString([], { weekday: "short", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" })
      + " – " + end.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) + (s.kind === "on_call" ? " (on call)" : "");
    return el("li", {}, text);
  }) : [el("li", { class: "quiet" }, "No shifts in the next two weeks.")]));
}

function base64ToBytes(text) {
  const padded = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

async function notifyMe() {
  const state = document.getElementById("notify-state");
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
    state.textContent = "This browser cannot show notifications; keep this page open.";
    return;
  }
  if ((await Notification.requestPermission()) !== "granted") {
    state.textContent = "Notifications are blocked for this site: allow them in the browser's settings.";
    return;
  }
  const registration = await navigator.serviceWorker.register("/peer/sw.js", { scope: "/peer" });
  await navigator.serviceWorker.ready;
  const key = (await (await fetch("/peer/push-key")).json()).public_key;
  const subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: base64ToBytes(key) });
  const response = await fetch("/peer/push-subscriptions", {
    method: "POST", credentials: "same-origin", headers: { "content-type": "application/json" },
    body: JSON.stringify(subscription.toJSON()),
  });
  state.textContent = response.ok ? "This phone will be notified of offers." : "Could not turn notifications on (" + response.status + ").";
}

function listen() {
  const events = new EventSource("/peer/events");
  events.onopen = () => say("Live: offers appear here as they come.");
  events.onmessage = () => load();
  events.onerror = () => say("Reconnecting…");
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("toggle-duty").addEventListener("click", () => {
    const next = state && state.peer.status === "off_duty" ? "available" : "off_duty";
    post("/peer/status", { status: next });
  });
  document.getElementById("notify").addEventListener("click", () => notifyMe().catch((e) => say("Notifications: " + e.message)));
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/peer/sw.js", { scope: "/peer" }).catch(() => {});
  load();
  listen();
});
