// Refreshes the supervisor page from /supervisor/data without reloading it.
"use strict";
(function () {
  const refresh = Number(document.body.dataset.refresh || 15) * 1000;
  const zone = document.body.dataset.timezone || undefined;
  const labels = { available: "peer available", busy: "on shift, none free", none: "no peer on shift", unserved: "no provider" };
  const time = (iso) => iso ? new Date(iso).toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit", timeZone: zone }) : "—";
  const cell = (row, text, cls) => { const td = row.insertCell(); td.textContent = text; if (cls) td.className = cls; return td; };

  const seen = new Map();  // county -> state, to announce changes (not every refresh)

  function render(data) {
    document.getElementById("as-of").textContent = time(data.at);
    const changes = [];
    for (const c of data.counties) {
      const path = document.getElementById("county-" + c.fips);
      if (!path) continue;
      if (seen.has(c.fips) && seen.get(c.fips) !== c.state) changes.push(c.name + " now: " + labels[c.state]);
      seen.set(c.fips, c.state);
      path.setAttribute("class", "county " + c.state);
      const label = c.name + ": " + labels[c.state] + (c.served ? " (" + c.available + " free, " + c.on_shift + " on shift)" : "");
      path.setAttribute("aria-label", label);
      path.querySelector("title").textContent = label;
    }
    const body = document.querySelector("#counties tbody");
    body.replaceChildren();
    for (const c of data.counties.filter((c) => c.served || c.on_shift)) {
      const row = body.insertRow();
      row.id = "row-" + c.fips;
      cell(row, c.name);
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

  async function poll() {
    try {
      const response = await fetch("/supervisor/data", { credentials: "same-origin", headers: { accept: "application/json" } });
      if (response.status === 401) { window.location.assign("/supervisor"); return; }
      if (response.ok) render(await response.json());
      else document.getElementById("updated").textContent = "refresh failed (" + response.status + "); retrying";
    } catch (e) {
      document.getElementById("updated").textContent = "offline; retrying";
    }
    timer = setTimeout(poll, refresh);
  }
  let timer = null;
  // A hidden tab does not poll; it catches up as soon as it is shown again.
  document.addEventListener("visibilitychange", () => {
    clearTimeout(timer);
    if (!document.hidden) poll();
  });
  for (const path of document.querySelectorAll("path.county")) {
    path.addEventListener("focus", () => { document.getElementById("focused").textContent = path.getAttribute("aria-label"); });
  }
  window.corespondLoadedAt = Date.now();
  poll();
})();

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
