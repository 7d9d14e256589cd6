// The page's live socket: one per signed-in page. It carries the account's notifications everywhere, and on a room
// or thread page it is also subscribed to that room with `since` = the last event the page has seen, so a page
// rendered a moment ago, or one coming back from a dropped connection, misses nothing and sees nothing twice. Room
// frames are the server's HTML variant: rendered once per event for every viewer.
(function () {
  "use strict";

  if (!document.body.dataset.signedIn || !window.WebSocket) return;
  const threads = document.getElementById("threads");
  const roomId = threads ? threads.dataset.room : null;
  const singleThread = threads ? threads.dataset.thread || null : null;
  let lastSeq = threads ? parseInt(threads.dataset.lastSeq || "0", 10) : 0;
  let socket = null;
  let attempt = 0;
  let retryTimer = null;
  const pending = []; // new top-level posts held back while the reader is further down the page

  const marker = document.getElementById("new-marker");
  const showNew = document.getElementById("show-new");
  const status = document.getElementById("connection");
  const presenceNames = document.getElementById("presence-names");

  function setStatus(text) {
    if (!status) return;
    status.hidden = !text;
    status.textContent = text || "";
  }

  function fragment(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  function activate(el) {
    if (window.htmx) window.htmx.process(el);
    if (window.kindredEnhance) window.kindredEnhance(el);
  }

  function readerIsAtTop() {
    return threads ? window.scrollY < threads.offsetTop + 40 : true;
  }

  // A post waiting behind "New posts" may meanwhile have been shown by another way (the answer to our own form,
  // when the socket was faster): it is then dropped from the queue, never shown twice.
  function prunePending() {
    for (let i = pending.length - 1; i >= 0; i--) {
      if (pending[i].id && document.getElementById(pending[i].id)) pending.splice(i, 1);
    }
  }
  document.addEventListener("htmx:afterSwap", () => {
    if (pending.length) {
      prunePending();
      updateMarker();
    }
  });

  function updateMarker() {
    prunePending();
    if (!marker) return;
    marker.hidden = pending.length === 0;
    if (showNew) showNew.textContent = pending.length === 1 ? "1 new post" : pending.length + " new posts";
  }

  function revealPending() {
    prunePending();
    while (pending.length) {
      const el = pending.shift();
      threads.prepend(el);
      activate(el);
    }
    updateMarker();
    const empty = document.getElementById("empty-room");
    if (empty) empty.remove();
  }
  if (showNew) {
    showNew.addEventListener("click", () => {
      revealPending();
      threads.scrollIntoView({ behavior: "smooth", block: "start" });
    });
  }
  window.addEventListener("scroll", () => {
    if (pending.length && readerIsAtTop()) revealPending();
  }, { passive: true });

  function onPostCreated(frame) {
    if (document.getElementById("post-" + frame.post_id)) return; // our own post, already shown by its response
    const el = fragment(frame.html);
    if (frame.parent_id) {
      const replies = document.getElementById("replies-" + frame.parent_id);
      if (!replies) return; // a thread that is not on this page
      replies.append(el);
      activate(el);
      return;
    }
    if (singleThread) return;
    pending.push(el);
    if (readerIsAtTop() && !document.querySelector("#composer textarea:focus")) revealPending();
    else updateMarker();
  }

  function replaceMain(frame) {
    const main = document.getElementById("main-" + frame.post_id);
    if (!main) return;
    if (main.querySelector("form.editing")) return; // the author is editing here; their save will refresh it
    main.innerHTML = frame.html;
    activate(main);
  }

  function replaceWidget(id, html) {
    const el = document.getElementById(id);
    if (!el) return;
    const fresh = fragment(html);
    el.replaceWith(fresh);
    activate(fresh);
  }

  // --- drop-ins ----------------------------------------------------------------------------------------------------

  const dropinId = document.body.dataset.dropin || null;

  // A change of state (scheduled → live → ended) changes what each reader may do, so the panel is fetched for this
  // reader; a change of spotlight is the same for everyone and arrives rendered in the frame.
  function onDropin(frame) {
    if (!dropinId || frame.post_id !== dropinId) return;
    if (frame.state === document.body.dataset.dropinState) {
      replaceWidget("spotlight", frame.html);
      return;
    }
    document.body.dataset.dropinState = frame.state;
    if (frame.state === "ended") {
      const composer = document.getElementById("composer");
      if (composer) composer.remove();
    }
    if (window.htmx && document.getElementById("dropin-panel")) {
      window.htmx.ajax("GET", "/dropins/" + dropinId + "/panel", { target: "#dropin-panel", swap: "outerHTML" });
    }
  }

  function onHands(hands) {
    const list = document.getElementById("hands");
    if (!list) return;
    list.replaceChildren(...hands.map((m) => {
      const item = document.createElement("li");
      item.textContent = m.alias;
      return item;
    }));
    const none = document.getElementById("no-hands");
    if (none) none.hidden = hands.length > 0;
    const callNext = document.getElementById("call-next");
    if (callNext) {
      callNext.disabled = hands.length === 0;
      if (hands.length === 0) callNext.setAttribute("aria-describedby", "no-hands");
      else callNext.removeAttribute("aria-describedby");
    }
    const mine = hands.some((m) => m.membership_id === document.body.dataset.me);
    document.querySelectorAll(".raise-hand").forEach((b) => (b.hidden = mine));
    document.querySelectorAll(".lower-hand").forEach((b) => (b.hidden = !mine));
  }

  // A drop-in went live in one of the reader's circles: a banner naming it on whatever page they are on, and on
  // the circle's page its line in the list says it is live.
  async function showLiveBanner(note) {
    if (!note.room_id) return;
    markListedLive(note.room_id);
    const banners = document.getElementById("live-banners");
    if (!banners || note.room_id === roomId) return;
    if (banners.querySelector('[data-room="' + note.room_id + '"]')) return;
    try {
      const response = await fetch("/rooms/" + note.room_id + "/live-banner", { headers: { "HX-Request": "true" } });
      if (response.status !== 200) return;
      const banner = fragment(await response.text());
      if (banner && !banners.querySelector('[data-room="' + note.room_id + '"]')) banners.append(banner);
    } catch (err) {
      // Offline: the next page load shows the banner.
    }
  }

  function markListedLive(room) {
    const item = document.querySelector('.dropin-list li[data-room="' + room + '"]');
    if (!item || item.classList.contains("live")) return;
    item.classList.add("live");
    const when = item.querySelector(".when");
    if (!when) return;
    const badge = document.createElement("span");
    badge.className = "badge state";
    badge.textContent = "Live now";
    const join = document.createElement("a");
    join.className = "button small";
    join.href = "/rooms/" + room;
    join.textContent = "Join";
    when.replaceChildren(badge, " ", join);
  }

  const handlers = {
    "dropin.state": onDropin,
    "post.created": onPostCreated,
    "post.updated": replaceMain,
    "post.deleted": replaceMain,
    "like.changed": (f) => replaceWidget("likes-" + f.post_id, f.html),
    "pin.changed": (f) => replaceWidget("pin-" + f.post_id, f.html),
    "experiment.changed": (f) => replaceWidget("experiment-" + f.post_id, f.html),
  };

  function onFrame(frame) {
    switch (frame.type) {
      case "event":
        if (frame.room_id !== roomId || frame.seq <= lastSeq) return;
        lastSeq = frame.seq;
        if (frame.html !== undefined && handlers[frame.event]) handlers[frame.event](frame);
        document.dispatchEvent(new CustomEvent("kindred:event", { detail: frame }));
        break;
      case "subscribed":
        attempt = 0;
        setStatus("");
        break;
      case "resync":
        // Too much happened while we were away to replay: load the room afresh.
        window.location.reload();
        break;
      case "presence":
        if (presenceNames && frame.room_id === roomId) {
          const names = frame.present.map((m) => m.alias + (m.role === "coach" ? " (coach)" : ""));
          // A big room's frame lists the first names only and counts the rest.
          const more = (frame.present_count || names.length) - names.length;
          const list = names.join(", ") + (more > 0 ? ` and ${more} more` : "");
          presenceNames.textContent = names.length ? "Here now: " + list : "Nobody else here right now";
        }
        if (frame.room_id === roomId) onHands(frame.hands || []);
        break;
      case "error":
        if (frame.code === "forbidden") setStatus("You no longer have access to this room.");
        // The server could not open the room just now (its database was away): ask again shortly, from where the
        // page is, so it does not sit silently without live events until it is reloaded.
        if (frame.code === "unavailable" && roomId && frame.room_id === roomId) {
          const asked = socket;
          setTimeout(() => {
            if (socket === asked && socket.readyState === WebSocket.OPEN) {
              socket.send(JSON.stringify({ op: "subscribe", room_id: roomId, since: lastSeq }));
            }
          }, 1000 + Math.random() * 1000);
        }
        break;
      case "notification":
        onNotification(frame);
        break;
      case "notifications.read":
        // Read in another tab or client: every page of the account lowers its bell.
        setUnread(frame.unread);
        break;
      default:
        document.dispatchEvent(new CustomEvent("kindred:frame", { detail: frame }));
    }
  }

  // --- notifications -----------------------------------------------------------------------------------------------

  const unread = document.getElementById("unread-count");
  const bell = document.getElementById("bell");

  function setUnread(count) {
    if (!unread) return;
    unread.textContent = String(count);
    unread.hidden = count <= 0;
    if (bell) bell.setAttribute("aria-label", "Notifications: " + count + " unread");
  }

  function bumpUnread() {
    if (!unread) return;
    if (refreshing) missed = true; // the count being fetched may not include this one: fetch again after
    setUnread(parseInt(unread.textContent || "0", 10) + 1);
  }

  // The count the server has, fetched whenever it may have changed unseen: when the socket (re)opens (frames sent
  // while it was down are not replayed) and when the tab comes back into view.
  let refreshing = false;
  let missed = false;
  async function refreshUnread() {
    if (!unread || refreshing) return;
    refreshing = true;
    missed = false;
    try {
      const response = await fetch("/api/v1/notifications/unread", { headers: { accept: "application/json" } });
      if (response.ok) {
        const body = await response.json();
        if (!missed) setUnread(body.unread);
      }
    } catch (err) {
      // Offline: the socket's reconnect will try again.
    } finally {
      refreshing = false;
    }
    if (missed) refreshUnread();
  }
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refreshUnread();
  });

  // A browser notification, shown only when the reader is not looking at this page (hidden tab or another window)
  // and only if they turned browser notifications on here. Shown through the service worker, so a click focuses the
  // right page even after this one is gone.
  async function alertReader(frame) {
    if (!frame.alert || !("Notification" in window) || Notification.permission !== "granted") return;
    if (document.visibilityState === "visible" && document.hasFocus()) return;
    const note = frame.data;
    const url = frame.url || "/notifications/" + note.id + "/open";
    const options = { body: note.text, tag: note.id, data: { url: url } };
    // The service worker is there only while browser notifications are turned on in this browser, for this sign-in
    // (the settings page registers it, signing out removes it).
    const registration = await navigator.serviceWorker.getRegistration("/");
    if (!registration) return;
    try {
      await registration.showNotification("Kindred", options);
    } catch (err) {
      new Notification("Kindred", options);
    }
  }

  function onNotification(frame) {
    if (frame.in_feed !== false) bumpUnread(); // a browser-notification-only one is not in the feed
    if (frame.data.kind === "dropin.live") showLiveBanner(frame.data);
    alertReader(frame);
    document.dispatchEvent(new CustomEvent("kindred:notification", { detail: frame }));
  }

  function connect() {
    clearTimeout(retryTimer);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(scheme + "//" + location.host + "/api/v1/ws?format=html");
    socket.addEventListener("open", () => {
      refreshUnread();
      if (roomId) socket.send(JSON.stringify({ op: "subscribe", room_id: roomId, since: lastSeq }));
      else setStatus("");
    });
    socket.addEventListener("message", (e) => {
      try {
        onFrame(JSON.parse(e.data));
      } catch (err) {
        console.error("kindred: bad frame", err);
      }
    });
    socket.addEventListener("close", (e) => {
      socket = null;
      if (e.code === 1008 && e.reason === "signed out") {
        setStatus("You signed out.");
        return;
      }
      // Back off 0.5 s, 1 s, 2 s … up to 15 s, with jitter so a restarted server is not stampeded.
      const delay = Math.min(15000, 500 * 2 ** attempt) * (0.5 + Math.random() / 2);
      attempt += 1;
      setStatus("Reconnecting…");
      retryTimer = setTimeout(connect, delay);
    });
  }

  window.addEventListener("online", () => {
    if (!socket) connect();
  });
  connect();
})();
