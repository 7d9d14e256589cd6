// Browser notifications and Web Push, on every signed-in page.
//
// The explicit "turn on browser notifications" control lives on the settings page: Kindred never asks for permission
// unprompted, only that button does. Pressing it registers the service worker and, where the browser offers Web
// Push, sends the subscription to Kindred, for this sign-in: notifications then also arrive while no Kindred tab is
// open. Signing out undoes all of it in the browser too (the server deletes the sign-in's subscriptions), so the next
// person to sign in here starts with browser notifications off.
(function () {
  "use strict";

  const supported = "Notification" in window && "serviceWorker" in navigator;

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

  async function registration() {
    return supported ? navigator.serviceWorker.getRegistration("/") : undefined;
  }

  async function sendSubscription(subscription) {
    const response = await fetch("/api/v1/push/subscriptions", {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrftoken": csrf() },
      body: JSON.stringify(subscription.toJSON()),
    });
    return response.ok;
  }

  async function subscribePush(reg) {
    if (!reg.pushManager) return false;
    const key = await (await fetch("/api/v1/push/key")).json();
    const subscription = await reg.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: fromBase64Url(key.public_key),
    });
    return sendSubscription(subscription);
  }

  // --- signing out -------------------------------------------------------------------------------------------------

  async function forgetThisBrowser() {
    const reg = await registration();
    if (!reg) return;
    const subscription = reg.pushManager ? await reg.pushManager.getSubscription() : null;
    if (subscription) await subscription.unsubscribe();
    for (const shown of await reg.getNotifications()) shown.close();
    await reg.unregister();
  }

  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (!form.matches || !form.matches("form[data-signout]") || form.dataset.leaving) return;
    e.preventDefault();
    form.dataset.leaving = "true";
    let left = false;
    const leave = () => {
      if (left) return;
      left = true;
      form.submit(); // a programmatic submit fires no submit event: this handler does not run again
    };
    const timer = setTimeout(leave, 3000); // a stuck browser API never keeps anyone from signing out
    forgetThisBrowser()
      .catch(() => {})
      .finally(() => {
        clearTimeout(timer);
        leave();
      });
  });

  // The service worker renewed the push subscription but had no old one to prove it by: this signed-in page sends
  // the new one under its sign-in.
  if (supported) {
    navigator.serviceWorker.addEventListener("message", async (e) => {
      if (!e.data || e.data.type !== "kindred:resubscribed") return;
      const reg = await registration();
      const subscription = reg && reg.pushManager ? await reg.pushManager.getSubscription() : null;
      if (subscription) await sendSubscription(subscription);
    });
  }

  // --- the settings control ------------------------------------------------------------------------------------------

  const button = document.getElementById("enable-notifications");
  const status = document.getElementById("notification-status");
  if (!button) return;

  function say(text) {
    if (status) status.textContent = text;
  }

  if (!supported) {
    button.disabled = true;
    say("This browser cannot show notifications.");
    return;
  }

  async function showState() {
    if (Notification.permission === "denied") {
      say("Notifications are blocked in this browser's settings for this site.");
      return;
    }
    const reg = await registration();
    const on = Notification.permission === "granted" && reg;
    button.hidden = Boolean(on);
    if (!on) {
      say("Browser notifications are off in this browser.");
      return;
    }
    const subscription = reg.pushManager ? await reg.pushManager.getSubscription() : null;
    if (subscription) {
      // The browser still has its subscription (a sign-in that ended without signing out here, for one): tie it to
      // this sign-in again. Subscribing the same browser twice keeps one subscription.
      await sendSubscription(subscription);
      say("Browser notifications are on for this browser, also when Kindred is closed.");
    } else {
      say("Browser notifications are on for this browser while Kindred is open.");
    }
  }

  button.addEventListener("click", async () => {
    const permission = await Notification.requestPermission();
    if (permission !== "granted") {
      showState();
      return;
    }
    const reg = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    await navigator.serviceWorker.ready;
    button.hidden = true;
    try {
      if (await subscribePush(reg)) say("Browser notifications are on for this browser, also when Kindred is closed.");
      else say("Browser notifications are on for this browser while Kindred is open (it offers no push).");
    } catch (err) {
      say("Browser notifications are on for this browser while Kindred is open (it could not subscribe to push).");
    }
  });

  showState();
})();
