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


async def test_care_check_on_a_reply_and_an_edit(browser: Browser, server: Server) -> None:
    """The same gentle check under a post: a reply that raises a concern waits in the interstitial where the reply
    form was; an edit does too, with the edit form still open and the post unchanged until the member chooses."""
    api = server.client()
    try:
        c = await make_circle(api, members=2)
        jo, peer = c.members
        root = await peer.post(c.room_id, "Anyone else finding this week heavy?")
        mine = await jo.post(c.room_id, "A calm note from me")
        context = await context_for(browser, server, "phone", jo.token)
        page = await context.new_page()
        await page.goto(f"{server.url}/rooms/{c.room_id}")

        theirs = page.locator(f"#post-{root['id']}")
        await theirs.get_by_role("button", name="Reply", exact=True).click()
        await theirs.get_by_label("Reply to").fill(RISK)
        await theirs.get_by_role("button", name="Reply", exact=True).last.click()
        panel = page.locator(f"#care-check-{root['id']}")
        await expect(panel.get_by_role("heading", name="Before this goes out")).to_be_visible()
        await expect(panel).to_contain_text("findahelpline.com")
        await shot(page, "care-reply-interstitial")
        assert await serious(page) == [], "the interstitial under a post passes axe"
        await panel.get_by_role("button", name="Post it anyway").click()
        await expect(page.locator(f"#replies-{root['id']}")).to_contain_text("end my life")
        await expect(panel).to_have_count(0)

        own = page.locator(f"#post-{mine['id']}")
        await own.locator("details.more > summary").click()
        await own.get_by_role("button", name="Edit").click()
        await own.get_by_label("Edit your post").fill(RISK + " (edited)")
        await own.get_by_role("button", name="Save").click()
        panel = page.locator(f"#care-check-{mine['id']}")
        await expect(panel.get_by_role("button", name="Save it anyway")).to_be_visible()
        await expect(own.get_by_label("Edit your post")).to_have_value(RISK + " (edited)")
        await shot(page, "care-edit-interstitial")
        await panel.get_by_role("button", name="Put this version in my journal").click()
        await expect(own.locator(".sent-private")).to_contain_text("Your post here is unchanged")
        await expect(own.get_by_label("Edit your post")).to_have_count(0)
        await expect(own.locator(f"#main-{mine['id']} .body")).to_contain_text("A calm note from me")
        assert (await peer.ok("GET", f"/api/v1/posts/{mine['id']}"))["body"] == "A calm note from me"
        await context.close()
    finally:
        await api.aclose()


async def test_a_collapsed_theme_collapses_a_post_arriving_live(browser: Browser, server: Server) -> None:
    """A reader's own collapsed themes apply to posts that arrive over the socket too, not only on the next load;
    a post that does not name the theme arrives open (the control)."""
    api = server.client()
    try:
        c = await make_circle(api, members=2)
        jo, reader = c.members
        await reader.ok("PUT", f"/api/v1/circles/{c.id}/collapsed-themes", {"themes": ["eating", "my father"]})
        context = await context_for(browser, server, "desktop", reader.token)
        page = await context.new_page()
        await page.goto(f"{server.url}/rooms/{c.room_id}")
        await expect(page.locator("#presence-names")).to_contain_text("Here now")

        await jo.post(c.room_id, "A walk in the park did me good")
        await jo.post(c.room_id, "Talked to My Father today, it went badly")
        opened = page.locator("article.post").filter(has_text="walk in the park")
        collapsed = page.locator("article.post").filter(has_text="A theme you collapse")
        await expect(opened).to_be_visible()
        await expect(collapsed).to_have_count(1)
        await expect(collapsed.locator("details.content-note > summary")).to_contain_text("my father")
        await expect(collapsed.locator("details.content-note .body")).to_be_hidden()
        await expect(opened.locator("details.content-note")).to_have_count(0)
        await shot(page, "care-theme-collapsed-live")
        await collapsed.locator("details.content-note > summary").click()
        await expect(collapsed.locator(".body")).to_contain_text("went badly")
        await context.close()
    finally:
        await api.aclose()
