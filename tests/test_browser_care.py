"""Care in Chromium (docs/care.md): a member writes something that raises a concern and sees the care interstitial
with the circle's resources, and chooses: post anyway, move it to my journal, let my coach know. Content notes open
by choice; the reply wish shows its guidance. The peer watching the room never learns of a check or of the coach
being told (the control: the post made anyway does reach them). Screenshots land in test-artifacts/ (care-*.png)."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.axe import serious
from tests.browser import shot
from tests.client import make_circle
from tests.conftest import Server
from tests.test_browser_a11y import context_for

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

RISK = "Honestly I can't go on. I want to end my life."


async def test_care_check_choices_content_notes_and_reply_wishes(browser: Browser, server: Server) -> None:
    api = server.client()
    try:
        c = await make_circle(api, members=2)
        jo, peer = c.members
        watcher_context = await context_for(browser, server, "desktop", peer.token)
        watcher = await watcher_context.new_page()
        await watcher.goto(f"{server.url}/rooms/{c.room_id}")
        await expect(watcher.locator("#presence-names")).to_contain_text("Here now")

        context = await context_for(browser, server, "phone", jo.token)
        page = await context.new_page()
        await page.goto(f"{server.url}/rooms/{c.room_id}")
        await expect(page.get_by_role("link", name="Where to turn in a crisis")).to_be_attached()

        # 1. Let my coach know: the coach alone is told; the draft stays.
        await page.locator("#composer-body").fill(RISK)
        await page.get_by_role("button", name="Post as").click()
        panel = page.locator("#care-check")
        await expect(panel.get_by_role("heading", name="Before this goes out")).to_be_visible()
        await expect(panel).to_contain_text("findahelpline.com")
        await shot(page, "care-interstitial")
        assert await serious(page) == [], "the interstitial passes axe"
        await panel.get_by_role("button", name="Let my coach know").click()
        await expect(panel.locator(".care-told")).to_contain_text("Your coach knows")
        await shot(page, "care-coach-told")

        # 2. Move it to my journal.
        await page.locator("#care-check").get_by_role("button", name="Move it to my journal").click()
        await expect(page.locator("#composer-status")).to_contain_text("Sent to your journal")

        # 3. Post anyway, with a content note and a reply wish.
        await page.locator("#composer-body").fill(RISK + " (again)")
        await page.locator(".care-fields > summary").click()
        await page.get_by_label("Content note").fill("dark thoughts")
        await page.get_by_label("Just listen").check()
        await page.get_by_role("button", name="Post as").click()
        await page.locator("#care-check").get_by_role("button", name="Post it anyway").click()
        mine = page.locator("article.post").filter(has_text="dark thoughts").first
        await expect(mine).to_be_visible()

        # The peer: the post arrives (the control), collapsed behind its note, with the reply guidance.
        theirs = watcher.locator("article.post").filter(has_text="dark thoughts").first
        if not await theirs.is_visible():
            await watcher.get_by_role("button", name="New posts").click()
        await expect(theirs.locator("details.content-note")).to_be_visible()
        await expect(theirs.locator("details.content-note .body")).to_be_hidden()
        await expect(theirs.locator(".reply-wish")).to_contain_text("reflect back what you hear")
        await shot(watcher, "care-content-note-closed")
        await theirs.locator("details.content-note > summary").click()
        await expect(theirs.locator("details.content-note .body")).to_contain_text("(again)")
        await shot(watcher, "care-content-note-open")

        # Nobody else learned of the checks or of the coach being told.
        peer_notes = await peer.ok("GET", "/api/v1/notifications")
        assert all(n["kind"] != "care.concern" for n in peer_notes)
        assert "Your coach knows" not in await watcher.content()
        coach_notes = await c.coach.ok("GET", "/api/v1/notifications")
        assert [n["kind"] for n in coach_notes].count("care.concern") == 1
        journal = await jo.ok("GET", f"/api/v1/circles/{c.id}/rooms")
        assert all(r["kind"] != "journal" for r in journal)
        await watcher_context.close()
        await context.close()
    finally:
        await api.aclose()
