// The supervisor page's service worker: woken by a push for an unfilled request (the push holds
// no call details), and opening the page from the notification.
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
self.addEventListener("fetch", () => {}); // always the network: offers must be live
self.addEventListener("push", (event) => {
  let message = { title: "Request unfilled", body: "Open corespond", url: "/supervisor" };
  try { message = { ...message, ...event.data.json() }; } catch (_) { /* keep the default */ }
  event.waitUntil(self.registration.showNotification(message.title, {
    body: message.body,
    tag: message.tag,
    renotify: true,
    requireInteraction: true,
    data: { url: message.url },
  }));
});
self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || "/supervisor";
  event.waitUntil(self.clients.matchAll({ type: "window" }).then((open) => {
    const page = open.find((client) => new URL(client.url).pathname.startsWith("/supervisor"));
    return page ? page.focus() : self.clients.openWindow(url);
  }));
});
