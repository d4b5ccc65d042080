// The dispatch console: the calls of the last hours, live over Server-Sent Events (the page
// refetches when the server says something changed), and the dispatcher's actions.
"use strict";
const zone = document.body.dataset.timezone;
let search = "";

function time(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleTimeString([], { timeZone: zone, hour: "2-digit", minute: "2-digit" });
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
}

function countdown(iso) {
  const left = Math.max(0, Math.round((Date.parse(iso) - Date.now()) / 1000));
  return Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
}

function peerState(a) {
  if (!a) return el("span", { class: "state" }, "none requested");
  if (a.status === "offered") {
    const span = el("span", { class: "state offered", "data-expires": a.expires_at }, "offered to " + a.peer + ", answer in " + countdown(a.expires_at));
    return span;
  }
  if (a.staged) return el("span", { class: "state staged" }, (a.peer || "peer") + " staged — waiting for scene secure");
  if (a.status === "unfilled") {
    const next = a.next_available_at ? "; next available " + time(a.next_available_at) : "";
    return el("span", { class: "state unfilled" }, "nobody free: " + (a.why_unfilled || "no peer") + next);
  }
  const label = { accepted: "accepted by", en_route: "en route:", on_scene: "on scene:" }[a.status];
  return el("span", { class: "state " + a.status }, label ? label + " " + a.peer : a.status.replace("_", " "));
}

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST", credentials: "same-origin", headers: { "content-type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  if (response.ok) return true;
  let detail = "the action failed (" + response.status + ")";
  try { detail = (await response.json()).detail || detail; } catch (_) { /* keep */ }
  document.getElementById("message").textContent = detail;
  return false;
}

let widerAllowed = false;

function actions(call) {
  const cell = el("td");
  const a = call.assignment;
  const live = a && ["offered", "accepted", "en_route", "on_scene"].includes(a.status);
  if (!call.ended && (call.decision === "eligible" || call.decision === "review") && !live) {
    const form = document.getElementById("request-form").content.firstElementChild.cloneNode(true);
    if (call.decision !== "review") form.classList.add("plain");
    if (!widerAllowed) form.querySelector(".wider-only").remove();
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = Object.fromEntries(new FormData(form));
      const body = { note: data.note || null, language: data.language || null };
      if (data.neighbouring_providers) body.neighbouring_providers = true;
      if (call.decision === "review") body.review_reason = data.review_reason || null;
      if (await post("/dispatch/calls/" + call.id + "/request", body)) load();
    });
    cell.append(form);
  }
  if (a && a.staged) {
    const secure = el("button", { type: "button" }, "Scene secure");
    secure.addEventListener("click", async () => { if (await post("/dispatch/assignments/" + a.id + "/scene-secure")) load(); });
    cell.append(secure, " ");
  }
  if (live) {
    const cancel = el("button", { type: "button" }, "Call off…");
    cancel.addEventListener("click", async () => {
      const reason = window.prompt("Why is the peer called off?");
      if (reason && reason.trim() && await post("/dispatch/assignments/" + a.id + "/cancel", { reason })) load();
    });
    cell.append(cancel);
  }
  return cell;
}

function render(data) {
  const body = document.querySelector("#calls tbody");
  body.replaceChildren();
  widerAllowed = Boolean(data.neighbour_providers);
  for (const call of data.calls) {
    const row = body.insertRow();
    row.className = [call.decision === "review" ? "review" : "", call.ended ? "ended" : ""].join(" ").trim();
    row.append(el("td", {}, time(call.opened_at)));
    row.append(el("td", {}, call.incident_number, el("span", { class: "summary" }, call.agency || "")));
    row.append(el("td", {}, call.call_type || "—"));
    row.append(el("td", {}, call.county || "—"));
    const triage = el("td", {});
    if (call.decision) triage.append(el("span", { class: "decision " + call.decision }, call.decision));
    else triage.append("not yet triaged");
    if (call.summary) triage.append(el("span", { class: "summary" }, call.summary));
    row.append(triage);
    row.append(el("td", {}, peerState(call.assignment)));
    row.append(actions(call));
  }
  if (!data.calls.length) body.insertRow().append(el("td", { colspan: "7" }, search ? "No call with that number." : "No calls in the last hours."));
}

async function load() {
  const url = "/dispatch/data" + (search ? "?incident_number=" + encodeURIComponent(search) : "");
  const response = await fetch(url, { credentials: "same-origin" });
  if (response.status === 401) { window.location.reload(); return; }
  if (!response.ok) { document.getElementById("message").textContent = "Could not load calls (" + response.status + ")."; return; }
  document.getElementById("message").textContent = "";
  render(await response.json());
}

function listen() {
  const live = document.getElementById("live");
  const source = new EventSource("/dispatch/events");
  source.onopen = () => { live.textContent = "live"; };
  source.onmessage = () => load();
  source.onerror = () => { live.textContent = "reconnecting…"; };
}

setInterval(() => {
  for (const span of document.querySelectorAll("[data-expires]")) {
    span.textContent = span.textContent.replace(/\d+:\d\d$/, countdown(span.dataset.expires));
  }
}, 1000);

document.getElementById("find").addEventListener("submit", (event) => {
  event.preventDefault();
  search = document.getElementById("number").value.trim();
  load();
});
document.getElementById("all").addEventListener("click", () => {
  search = ""; document.getElementById("number").value = ""; load();
});
load();
listen();
