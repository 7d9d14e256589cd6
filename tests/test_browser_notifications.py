"""Notifications in Chromium: the bell counts live on any page, the reader turns browser notifications on with an
explicit control (permission granted through the test browser), a mention then shows a notification while the tab
is in the background, and opening it leads to the post."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, expect

from tests.browser import shot
from tests.client import make_circle
from tests.conftest import Server
from tests.test_browser_live import signed_in

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


async def test_bell_browser_notification_and_feed(browser: Browser, server: Server, backend: str) -> None:
    api = server.client()
    try:
        c = await make_circle(api, members=1)
        a = c.members[0]
        post = await a.post(c.room_id, "What I tried this week")
        context = await signed_in(browser, server, a.token)
        await context.grant_permissions(["notifications"], origin=server.url)
        settings = await context.new_page()
        # Headless Chromium reports every tab as visible and focused, whichever is in front; this tab reports what a
        # tab in the background reports, so the page takes it for one.
        await settings.add_init_script(
            "Object.defineProperty(document, 'visibilityState', {get: () => 'hidden'});document.hasFocus = () => false;"
        )
        await settings.goto(f"{server.url}/settings/notifications")
        await expect(settings.locator("#notification-status")).to_contain_text("off in this browser")
        await settings.get_by_role("button", name="Turn on browser notifications").click()
        await expect(settings.locator("#notification-status")).to_contain_text("on for this browser")

        home = await context.new_page()
        await home.goto(f"{server.url}/")
        await expect(home.locator("#unread-count")).to_be_hidden()
        await home.bring_to_front()

        # A reply that also mentions the author notifies once, as a reply.
        reply = await c.coach.post(c.room_id, "@Member1 what did you notice first?", parent_id=post["id"])
        await expect(home.locator("#unread-count")).to_have_text("1", timeout=5000)
        await c.coach.ok("PUT", f"/api/v1/posts/{post['id']}/like")
        await expect(home.locator("#unread-count")).to_have_text("2", timeout=5000)
        await expect(home.locator("#bell")).to_have_attribute("aria-label", "Notifications: 2 unread")
        shown = await settings.evaluate(
            """async () => {
                const registration = await navigator.serviceWorker.ready;
                for (let i = 0; i < 50; i++) {
                    const list = await registration.getNotifications();
                    if (list.length) return list.map((n) => ({body: n.body, url: n.data.url}));
                    await new Promise((r) => setTimeout(r, 100));
                }
                return [];
            }"""
        )
        assert shown and shown[0]["body"] in ("Coach Dana replied to your post", "Coach Dana appreciated your post")
        assert shown[0]["url"].startswith("/notifications/")

        # The feed, grouped by day; opening one leads to the post and marks it read.
        await home.goto(f"{server.url}/notifications")
        await expect(home.locator(".notification.unread")).to_have_count(2)
        await shot(home, f"{backend}-notifications")
        await home.get_by_role("link", name="Coach Dana replied to your post").click()
        await expect(home.locator(f"#post-{reply['id']}")).to_have_class(re.compile(r"\bfocused\b"))
        await home.goto(f"{server.url}/notifications")
        await expect(home.locator(".notification.unread")).to_have_count(1)
        await home.get_by_role("button", name="Mark all read").click()
        await expect(home.locator(".notification.unread")).to_have_count(0)
        await expect(home.locator("#unread-count")).to_be_hidden()

        # Preferences from the page: likes from peers stay quiet unless turned on; a circle can be muted.
        await home.goto(f"{server.url}/settings/notifications")
        await home.get_by_label("Likes from peers: push", exact=True).check()
        await home.locator("summary", has_text="Saying No").click()
        await home.get_by_label("Mute Saying No").check()
        # Mentions from this circle: in Kindred only (the channel change gives the kind its own setting there).
        await home.get_by_label("Saying No: Mentions: push").uncheck()
        await expect(home.get_by_label("Saying No: Mentions", exact=True)).to_have_value("own")
        await home.get_by_role("button", name="Save").click()
        await expect(home.get_by_role("status")).to_have_text("Saved.")
        prefs = await a.ok("GET", "/api/v1/notifications/preferences")
        assert prefs["kinds"]["like"]["push"] is True and prefs["muted_circles"] == [c.id]
        assert prefs["circles"] == {c.id: {"mention": {"in_app": True, "browser": True, "push": False}}}
        await shot(home, f"{backend}-notification-settings")
        await context.close()
    finally:
        await api.aclose()
