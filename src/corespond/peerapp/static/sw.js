// The service worker of the pages that take notifications (the peer app at /peer, the
// supervisor page at /supervisor, the provider's queue at /provider): woken by a push that
// holds no call details and names nobody, it shows the notice and opens its page when the
// notice is tapped. Its page is its registration's scope.
const page = new URL(self.registration.scope).pathname.replace(/\/$/, "") || "/peer";
const TITLES = { "/supervisor": "Request unfilled", "/provider": "Follow-ups overdue" };
const title = TITLES[page] || "New call offer";
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
self.addEventListener("fetch", () => {}); // always the network: offers must be live
self.addEventListener("push", (event) => {
  let message = { title, body: "Open corespond", url: page };
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
  const url = (event.notification.data && event.notification.data.url) || page;
  event.waitUntil(self.clients.matchAll({ type: "window" }).then((open) => {
    const found = open.find((client) => new URL(client.url).pathname.startsWith(page));
    return found ? found.focus() : self.clients.openWindow(url);
  }));
});
