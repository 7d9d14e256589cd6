// Kindred's service worker: shows pushes, and routes clicks on any Kindred notification to the right page,
// focusing a tab that already shows it rather than opening another.
"use strict";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let message = { title: "Kindred", body: "Something new in your circle", url: "/notifications", tag: undefined };
  try {
    message = Object.assign(message, event.data ? event.data.json() : {});
  } catch (err) {
    // Not JSON: show the default text rather than nothing.
  }
  event.waitUntil(
    self.registration.showNotification(message.title, {
      body: message.body,
      tag: message.tag,
      data: { url: message.url },
    })
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = new URL((event.notification.data && event.notification.data.url) || "/notifications", self.location.origin);
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((clients) => {
      for (const client of clients) {
        if (new URL(client.url).origin === target.origin && "focus" in client) {
          return client.focus().then((focused) => (focused.navigate ? focused.navigate(target.href) : focused));
        }
      }
      return self.clients.openWindow(target.href);
    })
  );
});

// The push service replaced this browser's subscription (it expired, or the keys were rotated). Subscribe again and
// tell Kindred. The worker has no session, so the old subscription's endpoint and auth secret prove that the new one
// belongs where the old one did (same account, same sign-in). Without an old subscription to show, any open Kindred
// page is asked to send the new one under its own sign-in.
self.addEventListener("pushsubscriptionchange", (event) => {
  event.waitUntil(resubscribe(event.oldSubscription, event.newSubscription));
});

function fromBase64Url(text) {
  const padded = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

async function resubscribe(old, fresh) {
  if (!fresh) {
    const key = old && old.options && old.options.applicationServerKey
      ? old.options.applicationServerKey
      : fromBase64Url((await (await fetch("/api/v1/push/key")).json()).public_key);
    fresh = await self.registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  }
  if (old) {
    const previous = old.toJSON();
    const response = await fetch("/api/v1/push/subscriptions/renew", {
      method: "POST",
      credentials: "omit",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ old_endpoint: previous.endpoint, old_auth: previous.keys.auth, subscription: fresh.toJSON() }),
    });
    if (response.ok) return;
  }
  const pages = await self.clients.matchAll({ type: "window" });
  for (const page of pages) page.postMessage({ type: "kindred:resubscribed" });
}
