"""Notifications in Chromium.

* No page ever asks for notification permission by itself: a fresh browser that never presses the control keeps
  `Notification.permission` at "default", and no page calls `requestPermission`.
* The reader presses the real "Turn on browser notifications" control (the test browser grants the permission it
  asks for); then a post that @mentions them, while their tab is in the background, shows a notification through the
  service worker, and following its link (the service worker's click route) lands on the thread, scrolled to the post.
* The bell: counts live on every page, is refreshed when the socket comes back after a drop, and goes down when the
  notifications are read in another tab (one entry marked read in place, without a reload).
* Signing out unregisters the service worker, so the next person to sign in here starts with notifications off.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Browser, BrowserContext, Page, WebSocketRoute, expect

from tests.browser import shot
from tests.client import make_circle
from tests.conftest import Server
from tests.test_browser_live import signed_in

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

# Runs before any page script (and is not subject to the page's CSP, which forbids eval): counts permission requests.
COUNT_PERMISSION_REQUESTS = """
window.__permissionRequests = 0;
if (window.Notification) {
  const ask = Notification.requestPermission.bind(Notification);
  Notification.requestPermission = (...args) => { window.__permissionRequests += 1; return ask(...args); };
}
"""
# Headless Chromium reports every tab as visible and focused, whichever is in front; a page with this init script
# reports what a tab in the background reports, so the page takes itself for one.
IN_THE_BACKGROUND = (
    "Object.defineProperty(document, 'visibilityState', {get: () => 'hidden'}); document.hasFocus = () => false;"
)


async def permission_requests(page: Page) -> int:
    return int(await page.evaluate("window.__permissionRequests"))


async def test_no_page_asks_for_permission_unprompted(browser: Browser, server: Server) -> None:
    api = server.client()
    try:
        c = await make_circle(api, members=2)
        a, b = c.members
        post = await a.post(c.room_id, "What I tried this week")
        context = await signed_in(browser, server, a.token)
        await context.add_init_script(COUNT_PERMISSION_REQUESTS)
        page = await context.new_page()
        for path in ("/", f"/circles/{c.id}", f"/rooms/{c.room_id}", f"/posts/{post['id']}", "/notifications"):
            await page.goto(f"{server.url}{path}")
            await expect(page.locator("#bell")).to_be_visible()
        await page.goto(f"{server.url}/settings/notifications")
        await expect(page.locator("#notification-status")).to_have_text(
            "Browser notifications are off in this browser."
        )
        # Notifications keep arriving (and would be the moment to ask, for a pushy site); Kindred still does not ask.
        await b.post(c.room_id, "@Member1 how did it go?")
        await expect(page.locator("#unread-count")).to_have_text("1")
        # The control: the page has handled a second notification after the first, so an ask the first had
        # prompted would have been made by now.
        await b.post(c.room_id, "@Member1 and the week after?")
        await expect(page.locator("#unread-count")).to_have_text("2")
        assert await permission_requests(page) == 0
        assert await page.evaluate("Notification.permission") == "default"
        assert await page.evaluate("navigator.serviceWorker.getRegistration('/').then((r) => !!r)") is False
        await context.close()
    finally:
        await api.aclose()


async def shown_notifications(page: Page) -> list[dict[str, str]]:
    found: list[dict[str, str]] = await page.evaluate(
        """async () => {
            const registration = await navigator.serviceWorker.getRegistration('/');
            for (let i = 0; registration && i < 50; i++) {
                const list = await registration.getNotifications();
                if (list.length) return list.map((n) => ({title: n.title, body: n.body, url: n.data.url}));
                await new Promise((r) => setTimeout(r, 100));
            }
            return [];
        }"""
    )
    return found


async def test_turn_on_then_a_mention_in_a_background_tab_leads_to_the_post(
    browser: Browser, server: Server, backend: str
) -> None:
    api = server.client()
    try:
        c = await make_circle(api, members=2)
        a, b = c.members
        # A long thread of B's, so landing on a reply far down it means scrolling there.
        root = await b.post(c.room_id, "Saying no to my manager, a log")
        for i in range(14):
            await b.post(c.room_id, f"day {i}\n\n" + "What happened, what I noticed. " * 12, parent_id=root["id"])

        context = await signed_in(browser, server, a.token)
        await context.grant_permissions(["notifications"], origin=server.url)
        await context.add_init_script(COUNT_PERMISSION_REQUESTS)
        settings = await context.new_page()
        await settings.goto(f"{server.url}/settings/notifications")
        status = settings.locator("#notification-status")
        await expect(status).to_have_text("Browser notifications are off in this browser.")
        assert await permission_requests(settings) == 0
        await settings.get_by_role("button", name="Turn on browser notifications").click()
        await expect(status).to_contain_text("on for this browser")
        assert await permission_requests(settings) == 1, "asked once, because the reader pressed the control"
        await expect(settings.get_by_role("button", name="Turn on browser notifications")).to_be_hidden()

        background = await context.new_page()
        await background.add_init_script(IN_THE_BACKGROUND)
        await background.goto(f"{server.url}/")
        await expect(background.locator("#unread-count")).to_be_hidden()

        # The coach mentions A in a reply deep in B's thread, while A's tab is in the background.
        mention = await c.coach.post(c.room_id, "@Member1 does this match what you saw?", parent_id=root["id"])
        await expect(background.locator("#unread-count")).to_have_text("1")
        shown = await shown_notifications(background)
        assert [(n["title"], n["body"]) for n in shown] == [("Kindred", "Coach Dana mentioned you")]
        note = (await a.ok("GET", "/api/v1/notifications"))[0]
        assert note["kind"] == "mention" and shown[0]["url"] == f"/notifications/{note['id']}/open"

        # What the service worker's notificationclick does: open data.url (it focuses a Kindred tab and navigates it).
        reader = await context.new_page()
        await reader.goto(f"{server.url}{shown[0]['url']}")
        await expect(reader).to_have_url(f"{server.url}/posts/{mention['id']}")
        focused = reader.locator(f"#post-{mention['id']}")
        await expect(focused).to_have_class(re.compile(r"\bfocused\b"))
        await expect(focused).to_be_in_viewport()
        assert await reader.evaluate("window.scrollY") > 300, "scrolled down the thread to the post"
        await expect(reader.locator("#unread-count")).to_be_hidden()
        assert (await a.ok("GET", "/api/v1/notifications"))[0]["read"] is True
        await shot(reader, f"{backend}-notification-opened")

        # Signing out takes notifications off this browser: the service worker is gone, the control is back.
        await reader.locator("#nav-menu summary").click()
        await reader.get_by_role("button", name="Sign out").click()
        await expect(reader).to_have_url(f"{server.url}/")
        assert await reader.evaluate("navigator.serviceWorker.getRegistration('/').then((r) => !!r)") is False
        await context.close()
    finally:
        await api.aclose()


async def test_the_bell_follows_reads_in_other_tabs_and_dropped_connections(
    browser: Browser, server: Server, backend: str
) -> None:
    api = server.client()
    try:
        c = await make_circle(api, members=2)
        a, b = c.members
        post = await a.post(c.room_id, "What I tried this week")
        context: BrowserContext = await signed_in(browser, server, a.token)
        home = await context.new_page()
        sockets: list[tuple[WebSocketRoute, WebSocketRoute]] = []
        gate = asyncio.Event()
        gate.set()

        async def through_gate(ws: WebSocketRoute) -> None:
            await gate.wait()
            sockets.append((ws, ws.connect_to_server()))

        await home.route_web_socket(re.compile(r".*/api/v1/ws.*"), through_gate)
        await home.goto(f"{server.url}/")
        bell = home.locator("#unread-count")
        await expect(bell).to_be_hidden()
        for i in range(3):
            await b.post(c.room_id, f"reply {i}", parent_id=post["id"])
        await expect(bell).to_have_text("3")

        # Another tab reads one entry in place: no reload there, and this tab's bell goes down.
        feed = await context.new_page()
        await feed.goto(f"{server.url}/notifications")
        await expect(feed.locator(".notification.unread")).to_have_count(3)
        url = feed.url
        await feed.get_by_role("button", name="Mark read: Member2 replied to your post").first.click()
        await expect(feed.locator(".notification.unread")).to_have_count(2)
        assert feed.url == url
        await expect(feed.locator("#unread-count")).to_have_text("2")
        await expect(bell).to_have_text("2")
        await expect(home.locator("#bell")).to_have_attribute("aria-label", "Notifications: 2 unread")
        await shot(feed, f"{backend}-notifications-read-one")

        # This tab's connection drops; meanwhile everything is read elsewhere and one more reply comes. Frames sent
        # while it was away are not replayed, so on reconnecting the page asks for the count.
        gate.clear()
        client_side, server_side = sockets[-1]
        await server_side.close()
        await client_side.close(code=4000, reason="network down")
        await a.ok("POST", "/api/v1/notifications/read", {"all": True}, status=204)
        await b.post(c.room_id, "one more", parent_id=post["id"])
        # The control: the tab still connected has had both (everything read, then one more), so the frames went out.
        await expect(feed.locator("#unread-count")).to_have_text("1")
        await expect(bell).to_have_text("2")  # stale while disconnected
        gate.set()
        await expect(bell).to_have_text("1")

        # Mark all read from the feed page: every tab's bell empties.
        await feed.goto(f"{server.url}/notifications")
        await feed.get_by_role("button", name="Mark all read").click()
        await expect(feed.locator(".notification.unread")).to_have_count(0)
        await expect(bell).to_be_hidden()

        # Preferences from the page: likes from peers stay quiet unless turned on; a circle can be muted, and a kind
        # given its own setting there.
        await feed.goto(f"{server.url}/settings/notifications")
        await feed.get_by_label("Likes from peers: push", exact=True).check()
        await feed.locator("summary", has_text="Saying No").click()
        await feed.get_by_label("Mute Saying No").check()
        # Changing a channel of a kind in the circle gives that kind its own setting there.
        await feed.get_by_label("Saying No: Mentions: push").uncheck()
        await expect(feed.get_by_label("Saying No: Mentions", exact=True)).to_have_value("own")
        await feed.get_by_role("button", name="Save").click()
        await expect(feed.get_by_role("status")).to_have_text("Saved.")
        prefs = await a.ok("GET", "/api/v1/notifications/preferences")
        assert prefs["kinds"]["like"]["push"] is True and prefs["muted_circles"] == [c.id]
        assert prefs["circles"] == {c.id: {"mention": {"in_app": True, "browser": True, "push": False, "email": True}}}
        await shot(feed, f"{backend}-notification-settings")
        await context.close()
    finally:
        await api.aclose()
