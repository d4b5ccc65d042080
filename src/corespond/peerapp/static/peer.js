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
      cleared: "Cleared. Thank you. Record whom you met under After your calls.",
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
  drawAfter(data);
  drawFollowUps(data);
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

// --- after the call: whom the peer met, referrals, follow-ups ---------------------------------

const FOLLOW_UP_OUTCOMES = {
  reached: "Reached",
  not_reached: "Not reached",
  in_treatment: "In treatment",
  relapse: "Relapse",
  declined: "Declined follow-up",
  deceased: "Deceased",
};
const ARRIVALS = {
  pending: "arrival not confirmed yet",
  arrived: "arrived: warm hand-off confirmed",
  did_not_arrive: "did not arrive",
};
const STEPS = { "1d": "next day", "72h": "72 hours", "7d": "7 days", "30d": "30 days", added: "added" };
const drawnAfter = {};

function when(iso) {
  return new Date(iso).toLocaleString([], { weekday: "short", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

function stepLabel(step) {
  if (STEPS[step]) return STEPS[step];
  const months = /^(\d+)m$/.exec(step);
  return months ? months[1] + " months" : step;
}

async function postRaw(path, body) {
  return fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body || {}),
  });
}

function drawAfter(data) {
  const section = document.getElementById("after");
  const list = document.getElementById("after-list");
  section.hidden = data.after.length === 0;
  const ids = data.after.map((item) => item.assignment_id);
  for (const node of [...list.children]) {
    if (!ids.includes(node.dataset.id)) { node.remove(); delete drawnAfter[node.dataset.id]; }
  }
  data.after.forEach((item, index) => {
    // Redrawn only when it changed: an open consent form or search is not wiped.
    const key = JSON.stringify(item);
    let node = list.querySelector(`[data-id="${item.assignment_id}"]`);
    if (node && drawnAfter[item.assignment_id] === key) return;
    drawnAfter[item.assignment_id] = key;
    const fresh = afterItem(item, data.kinds);
    if (node) node.replaceWith(fresh); else list.insertBefore(fresh, list.children[index] || null);
  });
}

function afterItem(item, kinds) {
  const id = item.assignment_id;
  const card = el("article", { class: "card after", "data-id": id, "aria-labelledby": `after-${id}` },
    el("h3", { id: `after-${id}` }, "Call " + item.incident_number),
    item.ended_at ? el("p", { class: "quiet" }, "Cleared " + when(item.ended_at)) : null);
  const contact = item.contact;
  if (!contact) {
    const slot = el("div", { class: "form-slot" });
    card.append(
      el("p", {}, "Who did you meet? Record it for the program: with their consent, or without a name."),
      el("button", { type: "button", class: "big go", id: `with-consent-${id}`, onclick: () => consentForm(item, slot) }, "With their consent"),
      el("button", { type: "button", class: "wide", id: `without-name-${id}`, onclick: () => post(`/peer/after/${id}/contact`, {}) }, "Without a name"),
      slot);
    return card;
  }
  const person = contact.person;
  if (person) {
    card.append(el("p", { class: "met" }, el("strong", {}, person.name), person.contact ? " · " + person.contact : ""));
    if (person.consent) {
      const shares = person.consent.shares.map((s) => s.name).join(", ") || "nobody";
      card.append(el("p", { class: "consent live" }, "Consent until " + person.consent.expires_at.slice(0, 10) + " · shared with " + shares),
        el("button", { type: "button", class: "link", id: `revoke-${person.id}`, onclick: () => {
          if (window.confirm("Take their consent back? Nothing more will be shared with anyone.")) {
            post(`/peer/people/${person.id}/consent/revoke`, { reason: "told the peer" });
          }
        } }, "They take their consent back"));
    } else {
      card.append(el("p", { class: "consent revoked" }, person.revoked ? "Consent revoked: nothing is shared." : "Consent expired: nothing is shared."));
    }
  } else {
    card.append(el("p", { class: "met" }, "Recorded without a name (counted; nothing that identifies anyone)."));
  }
  card.append(referrals(contact, item, kinds));
  return card;
}

function referrals(contact, item, kinds) {
  const box = el("div", { class: "referrals" }, el("h4", {}, "Referrals"));
  const list = el("ul", { class: "referral-list" });
  for (const r of contact.referrals) {
    // Whether the peer may tell the organization who is coming: only what the consent allows.
    const shared = !contact.person ? null
      : r.shared_with_organization ? "Their consent lets you tell " + r.organization + " who is coming."
      : r.share_ended_at ? "Their consent no longer covers " + r.organization + ": tell them nothing more about the person."
      : "Their consent does not name " + r.organization + " for referral: do not tell them who it is.";
    const li = el("li", { class: "referral " + r.arrival },
      el("strong", {}, r.service_name), " · " + r.organization + " — " + ARRIVALS[r.arrival],
      shared ? el("div", { class: "share " + (r.shared_with_organization ? "shared" : "unshared") }, shared) : null);
    if (r.arrival === "pending") {
      li.append(
        el("button", { type: "button", class: "small go", onclick: () => post(`/peer/referrals/${r.id}/arrival`, { arrived: true }) }, "Arrived"),
        el("button", { type: "button", class: "small", onclick: () => post(`/peer/referrals/${r.id}/arrival`, { arrived: false }) }, "Did not arrive"));
    }
    list.append(li);
  }
  if (!contact.referrals.length) list.append(el("li", { class: "quiet" }, "None yet."));
  const kind = el("select", { id: `refer-kind-${contact.id}` }, kinds.map((k) => el("option", { value: k.key }, k.label)));
  const results = el("ul", { class: "services", "aria-live": "polite" });
  const county = item.county ? item.county.name : "";
  const find = async () => {
    const query = new URLSearchParams({ kind: kind.value });
    if (county) query.set("county", county);
    const response = await fetch("/peer/directory?" + query, { credentials: "same-origin" });
    if (!response.ok) { say("Could not search the directory (" + response.status + ")"); return; }
    const found = (await response.json()).items;
    results.replaceChildren(...(found.length ? found.map((s) => el("li", { class: "service" },
      el("strong", {}, s.name), el("br"), s.organization.name,
      s.address ? el("span", { class: "quiet" }, " · " + [s.address, s.city].filter(Boolean).join(", ")) : null,
      s.phone ? el("span", {}, " · ", el("a", { href: "tel:" + s.phone }, s.phone)) : null,
      el("button", { type: "button", class: "small go refer", onclick: () => post(`/peer/contacts/${contact.id}/referrals`, { service_id: s.id, kind: kind.value }) }, "Refer")))
      : [el("li", { class: "quiet" }, "Nothing of that kind in " + (county || "the directory") + ".")]));
  };
  box.append(list,
    el("label", { for: `refer-kind-${contact.id}` }, "Find a service" + (county ? " in " + county + " County" : "")), kind,
    el("button", { type: "button", class: "wide", id: `find-${contact.id}`, onclick: find }, "Find services"),
    results);
  return box;
}

function checkbox(name, value, label, checked) {
  return el("label", { class: "check" }, el("input", { type: "checkbox", name, value, checked: !!checked }), " " + label);
}

async function consentForm(item, slot) {
  const id = item.assignment_id;
  const response = await fetch(`/peer/after/${id}/consent-form`, { credentials: "same-origin" });
  if (!response.ok) { say("Could not open the consent form (" + response.status + ")"); return; }
  const f = await response.json();
  const shareBoxes = [
    ...f.police.map((a) => checkbox("share", JSON.stringify({ to: "police", agency: a }), "Police: " + a)),
    ...f.treatment.map((o) => checkbox("share", JSON.stringify({ to: "treatment", organization: o.id }), "Treatment: " + o.name)),
    ...f.qrt.map((o) => checkbox("share", JSON.stringify({ to: "qrt", organization: o.id }), "Quick Response Team: " + o.name)),
  ];
  const matches = el("div", { id: "matches", role: "alert" });
  const form = el("form", { id: "consent-form", class: "consent-form" },
    el("fieldset", {}, el("legend", {}, "The person"),
      el("label", { for: "person-name" }, "Name or alias"), el("input", { type: "text", id: "person-name", required: true, maxlength: 100, autocomplete: "off" }),
      el("label", { for: "person-contact" }, "Phone or another way to reach them"), el("input", { type: "text", id: "person-contact", maxlength: 100, autocomplete: "off" }),
      el("label", { for: "person-county" }, "County"), el("input", { type: "text", id: "person-county", value: f.county ? f.county.name : "", maxlength: 40 })),
    el("fieldset", {}, el("legend", {}, "They agree to share with"), shareBoxes.length ? shareBoxes : el("p", { class: "quiet" }, "Nobody listed for this county."),
      el("p", { class: "quiet" }, "Leave all unchecked to share with nobody.")),
    el("fieldset", {}, el("legend", {}, "For"), f.purposes.map((p) => checkbox("purpose", p.key, p.label, p.key === "follow_up"))),
    el("fieldset", {}, el("legend", {}, "What may be shared"), f.fields.map((x) => checkbox("field", x.key, x.label, true))),
    el("label", { for: "consent-until" }, "Until (the last day)"),
    el("input", { type: "date", id: "consent-until", value: f.expires_on, min: f.today, max: f.expires_on }),
    el("div", { class: "statement", id: "statement" }, f.statement),
    el("label", { for: "signed-name" }, "Their name, typed by them"),
    el("input", { type: "text", id: "signed-name", required: true, maxlength: 100, autocomplete: "off" }),
    el("label", { class: "check" }, el("input", { type: "checkbox", id: "consent-agree" }), " I have read this and I agree"),
    matches,
    el("button", { type: "submit", class: "big go", id: "record-consent" }, "Record with consent"));
  const body = () => {
    const checked = (name) => [...form.querySelectorAll(`input[name=${name}]:checked`)].map((i) => i.value);
    const contact = form.querySelector("#person-contact").value.trim();
    return {
      person: { name: form.querySelector("#person-name").value.trim(), ...(contact ? { contact } : {}), county: form.querySelector("#person-county").value.trim() || null },
      consent: {
        signed_name: form.querySelector("#signed-name").value.trim(),
        agreed: form.querySelector("#consent-agree").checked,
        shares: checked("share").map((v) => JSON.parse(v)),
        purposes: checked("purpose"),
        fields: checked("field"),
        expires_on: form.querySelector("#consent-until").value || null,
        statement_version: f.statement_version,
      },
    };
  };
  const send = async (extra) => {
    const sent = { ...body(), ...extra };
    if (sent.same_as) delete sent.person;
    const answer = await postRaw(`/peer/after/${id}/contact`, sent);
    if (answer.ok) { draw(await answer.json()); return; }
    let problem = {};
    try { problem = await answer.json(); } catch (_) { /* not JSON */ }
    if (answer.status === 409 && String(problem.type).endsWith("/possible-match")) {
      matches.replaceChildren(el("p", {}, el("strong", {}, "Is this someone your team has met?")),
        ...problem.candidates.map((c) => el("div", { class: "candidate" },
          el("span", {}, c.name + " · " + (c.last_met_at ? "met " + when(c.last_met_at) : "") + " · " + c.reasons.join(", ")),
          el("button", { type: "button", class: "small go", onclick: () => send({ same_as: c.id }) }, "This is them"))),
        el("button", { type: "button", class: "wide", id: "someone-new", onclick: () => send({ new_person: true }) }, "Someone new"));
      matches.querySelector("button").focus();
      return;
    }
    say(problem.detail || "Could not record (" + answer.status + ")");
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const b = body();
    if (!b.person.name) { say("Give their name or an alias."); form.querySelector("#person-name").focus(); return; }
    if (!b.consent.purposes.length) { say("Choose what it is for."); return; }
    if (!b.consent.signed_name || !b.consent.agreed) { say("They type their name and check the box to agree."); form.querySelector("#signed-name").focus(); return; }
    send({});
  });
  slot.replaceChildren(form);
  form.querySelector("#person-name").focus();
}

let followUpsDrawn = null;

function drawFollowUps(data) {
  const list = document.getElementById("followup-list");
  const key = JSON.stringify(data.followups);
  if (key === followUpsDrawn) return;
  followUpsDrawn = key;
  if (!data.followups.length) { list.replaceChildren(el("li", { class: "quiet" }, "No follow-ups due in the next two weeks.")); return; }
  list.replaceChildren(...data.followups.map((t) => {
    const outcome = el("select", { id: `outcome-${t.id}`, "aria-label": "What came of it" },
      el("option", { value: "" }, "What came of it…"),
      Object.entries(FOLLOW_UP_OUTCOMES).map(([value, label]) => el("option", { value }, label)));
    const state = t.escalated_at ? "Overdue: your provider has been told" : t.overdue ? "Overdue" : "Due " + when(t.due_at);
    return el("li", { class: "followup" + (t.overdue ? " overdue" : ""), "data-id": t.id },
      el("strong", {}, t.person_name),
      t.person_contact ? el("span", {}, " · ", el("a", { href: "tel:" + t.person_contact }, t.person_contact)) : null,
      el("br"),
      el("span", { class: t.overdue ? "late" : "quiet" }, state + " · " + (t.kind === "qrt_visit" ? "QRT visit" : stepLabel(t.step)) + (t.assignee ? "" : " · for the team")),
      el("div", { class: "row" }, outcome,
        el("button", { type: "button", class: "small go", onclick: () => {
          if (!outcome.value) { say("Choose what came of it."); outcome.focus(); return; }
          post(`/peer/followups/${t.id}/outcome`, { outcome: outcome.value });
        } }, "Save")));
  }));
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
