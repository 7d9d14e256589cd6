// The explicit "turn on browser notifications" control. Kindred never asks for permission unprompted: only this
// button does. With permission, the service worker is registered; where the browser offers Web Push, the
// subscription is sent to Kindred so notifications also arrive while no Kindred tab is open.
(function () {
  "use strict";

  const button = document.getElementById("enable-notifications");
  const status = document.getElementById("notification-status");
  if (!button) return;

  function say(text) {
    if (status) status.textContent = text;
  }

  function csrf() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers"))["x-csrftoken"];
    } catch (err) {
      return "";
    }
  }

  function fromBase64Url(text) {
    const padded = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }

  async function subscribePush(registration) {
    if (!("PushManager" in window)) return false;
    const key = await (await fetch("/api/v1/push/key")).json();
    const subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: fromBase64Url(key.public_key),
    });
    const response = await fetch("/api/v1/push/subscriptions", {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrftoken": csrf() },
      body: JSON.stringify(subscription.toJSON()),
    });
    return response.ok;
  }

  function describe(permission) {
    if (permission === "granted") return "Browser notifications are on for this browser.";
    if (permission === "denied") return "Notifications are blocked in this browser's settings for this site.";
    return "Browser notifications are off.";
  }

  if (!("Notification" in window) || !("serviceWorker" in navigator)) {
    button.disabled = true;
    say("This browser cannot show notifications.");
    return;
  }
  say(describe(Notification.permission));
  button.hidden = Notification.permission === "granted";

  button.addEventListener("click", async () => {
    const permission = await Notification.requestPermission();
    say(describe(permission));
    if (permission !== "granted") return;
    button.hidden = true;
    const registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    await navigator.serviceWorker.ready;
    try {
      if (await subscribePush(registration)) say("Notifications are on, also when Kindred is closed.");
    } catch (err) {
      say("Notifications are on while Kindred is open (this browser could not subscribe to push).");
    }
  });
})();
