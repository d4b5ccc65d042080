// The peer app's service worker: installable, woken by a push for an offer (the push holds
// no call details), and opening the app from the notification.
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
self.addEventListener("fetch", () => {}); // always the network: offers must be live
self.addEventListener("push", (event) => {
  let message = { title: "New call offer", body: "Open corespond", url: "/peer" };
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
  const url = (event.notification.data && event.notification.data.url) || "/peer";
  event.waitUntil(self.clients.matchAll({ type: "window" }).then((open) => {
    const page = open.find((client) => new URL(client.url).pathname.startsWith("/peer"));
    return page ? page.focus() : self.clients.openWindow(url);
  }));
});
