"""A client's first arrival and the pages around it, in Chromium at phone size: the invite page says what the coach
will see before sign-up, a one-time welcome card with one next step, "(you)" in the member list, an invite opened
again leads to the circle, home cards with what is new and the next drop-in, the coach's pinned welcome at the top
of the room, notifications with a few words of the post, an ended drop-in's notice retired, the audit log updated
after Dismiss, and the layout glitches the walk found."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser import post_action, shot
from tests.client import make_circle
from tests.conftest import Server
from tests.test_browser_a11y import context_for
from tests.test_browser_live import signed_in
from tests.test_browser_smoke import sign_up

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

LONG = (
    "This week I tried saying no to my sister about hosting the holidays, and I did it kindly, "
    "which I never thought I could do."
)


async def tops(page: Page, selector: str) -> list[int]:
    found: list[int] = await page.locator(selector).evaluate_all(
        "(els) => els.map((el) => Math.round(el.getBoundingClientRect().top))"
    )
    return found


async def test_a_first_arrival_on_a_phone(browser: Browser, server: Server, backend: str) -> None:
    api = server.client()
    try:
        c = await make_circle(api, members=2)
        await c.coach.ok("PATCH", f"/api/v1/circles/{c.id}", {"coach_sees_identity": True})
        welcome = await c.coach.post(c.room_id, "Welcome, everyone. Start with one small no this week.")
        await c.coach.ok("PUT", f"/api/v1/posts/{welcome['id']}/pin", {})
        soon = datetime.now(UTC) + timedelta(days=3)
        await c.coach.ok(
            "POST",
            f"/api/v1/circles/{c.id}/dropins",
            {"title": "Thursday drop-in", "starts_at": soon.isoformat(), "duration_minutes": 30},
        )
        context = await context_for(browser, server, "phone")
        page = await context.new_page()

        # Before signing up, the invite says what the coach will see.
        await page.goto(f"{server.url}/join/{c.invite}")
        await expect(page.locator(".identity-consent")).to_contain_text("Your coach will see your name and email")
        await page.get_by_role("link", name="Create an account to join").click()
        await sign_up(page, None, "Tilda Private", f"tilda-{backend}@example.org")
        await page.get_by_label("Your alias in this circle").fill("Tide Pool")
        await page.get_by_role("button", name="Join the circle").click()

        # The welcome card: who reads what, and one next step.
        card = page.locator(".welcome-card")
        await expect(card.get_by_role("heading", name="Here you are, Tide Pool")).to_be_visible()
        await expect(card).to_contain_text("2 members and your coach read what you post here")
        await expect(card).to_contain_text("Your coach also sees your name and email")
        await expect(page.locator(".members li", has_text="Tide Pool")).to_contain_text("(you)")
        await expect(page.locator(".members li", has_text="Member1")).not_to_contain_text("(you)")
        await shot(page, f"{backend}-arrival-welcome-phone")
        # The layout: the invite fields are the coach's; here the "(you)" and card fit the phone.
        await card.get_by_role("button", name="Write your first reflection").click()
        await expect(page.locator("#presence-names")).to_contain_text("Here now")
        # The coach's pinned welcome is at the top of the room.
        pins = page.locator(".coach-pins")
        await expect(pins).to_contain_text("Pinned by Coach Dana")
        await expect(pins).to_contain_text("Start with one small no this week.")
        # The kinds of post sit in a row on a phone, not a column of four.
        assert len(set(await tops(page, ".kinds label"))) <= 2
        await page.get_by_label("Your post").fill("Hello, I am new here.")
        await page.locator("#composer").get_by_role("button", name="Post").click()
        await expect(page.locator("article.post", has_text="Hello, I am new here.")).to_be_focused()

        # Once only, and on every device: the circle's page no longer has the welcome card, here or in a fresh
        # browser signed in as the same person.
        await page.goto(f"{server.url}/circles/{c.id}")
        await expect(page.get_by_role("heading", name="What we share")).to_be_visible()
        await expect(page.locator(".welcome-card")).to_have_count(0)
        session = next(ck for ck in await context.cookies() if ck["name"] == "kindred_session")["value"]
        other_device = await signed_in(browser, server, session)
        elsewhere = await other_device.new_page()
        await elsewhere.goto(f"{server.url}/circles/{c.id}")
        await expect(elsewhere.get_by_role("heading", name="What we share")).to_be_visible()
        await expect(elsewhere.locator(".welcome-card")).to_have_count(0)
        await other_device.close()
        # An invite opened again leads to the circle, not to an alias form that would be ignored.
        await page.goto(f"{server.url}/join/{c.invite}")
        await expect(page).to_have_url(re.compile(rf"/circles/{c.id}"))
        await expect(page.get_by_role("status").filter(has_text="already here")).to_contain_text(
            "You're already here as Tide Pool"
        )
        await expect(page.get_by_label("Your alias in this circle")).to_have_count(0)

        # Home for a client: no "Open a circle" button in the way; the card says what is new and what is next.
        await c.members[0].post(c.room_id, LONG)
        await page.goto(f"{server.url}/")
        await expect(page.get_by_role("link", name="Open a circle", exact=True)).to_have_count(0)
        await expect(page.get_by_role("link", name="Open a circle of your own")).to_be_visible()
        home_card = page.locator(".circle-card")
        await expect(home_card.locator(".latest")).to_contain_text("Latest, from Member1")
        await expect(home_card.locator(".next-dropin")).to_contain_text("Next drop-in: Thursday drop-in")
        await shot(page, f"{backend}-home-member-phone")
        await context.close()
    finally:
        await api.aclose()


async def test_notifications_moderation_and_layout(browser: Browser, server: Server, backend: str) -> None:
    api = server.client()
    try:
        c = await make_circle(api, members=2)
        a, b = c.members
        post = await a.post(c.room_id, "A first try.")
        await b.post(c.room_id, LONG, parent_id=post["id"])
        ended = await c.coach.ok(
            "POST",
            f"/api/v1/circles/{c.id}/dropins",
            {"title": "Monday check-in", "starts_at": datetime.now(UTC).isoformat(), "duration_minutes": 30},
        )
        await c.coach.ok("POST", f"/api/v1/dropins/{ended['id']}/start", status=200)
        await a.post(ended["room_id"], "Here.")
        context = await context_for(browser, server, "phone", a.token)
        page = await context.new_page()

        # Notifications carry a few words of the post; a live drop-in's notice names it.
        await page.goto(f"{server.url}/notifications")
        reply = page.locator(".notification", has_text="replied to your post")
        excerpt = (await reply.locator(".excerpt").inner_text()).strip("“”")
        assert excerpt.startswith("This week I tried saying no to my sister") and excerpt.endswith("…")
        assert 60 <= len(excerpt) <= 81, excerpt
        live = page.locator(".notification", has_text="Monday check-in")
        await expect(live).to_contain_text("Coach Dana has started Monday check-in. Join now")
        # When it ends, its "join now" is retired.
        await c.coach.ok("POST", f"/api/v1/dropins/{ended['id']}/end", status=200)
        await page.reload()
        await expect(live).to_contain_text("Monday check-in has ended. Read what happened")
        await expect(live).not_to_contain_text("Join now")
        await shot(page, f"{backend}-notifications-phone")

        # "Here now" keeps its distance from the first post in an ended drop-in.
        await page.goto(f"{server.url}/rooms/{ended['room_id']}")
        await expect(page.locator("#presence-names")).not_to_have_text("Connecting…")
        presence = await page.locator("#presence").bounding_box()
        first = await page.locator("article.post").first.bounding_box()
        assert presence and first and first["y"] - (presence["y"] + presence["height"]) >= 12
        # The drop-in's title is the page's heading, not repeated in its panel.
        await expect(page.locator("#dropin-panel h2")).to_have_text("Drop-in")
        await context.close()

        # The coach, on a phone: the identity checkbox beside its words, the invite's "Uses" beside its choice.
        coach_ctx = await context_for(browser, server, "phone", c.coach.token)
        coach = await coach_ctx.new_page()
        await coach.goto(f"{server.url}/circles/{c.id}")
        box = await coach.locator("#identity-form input[type=checkbox]").bounding_box()
        label = await coach.locator("#identity-form label.check").bounding_box()
        assert box and label and box["width"] < 40 and box["x"] - label["x"] < 8
        uses = await coach.get_by_text("Uses", exact=True).bounding_box()
        select = await coach.locator("#invite-uses").bounding_box()
        assert uses and select and abs(uses["y"] + uses["height"] / 2 - (select["y"] + select["height"] / 2)) < 8
        assert select["x"] > uses["x"]

        # Dismissing a report: the log shows it at once, and the report says what became of it, with a link.
        await b.ok("POST", f"/api/v1/posts/{post['id']}/reports", {"reason": "Testing the queue"})
        await coach.goto(f"{server.url}/circles/{c.id}/moderation")
        await expect(coach.locator("#audit-log")).not_to_contain_text("dismissed a report")
        await coach.get_by_role("button", name="Dismiss").click()
        await expect(coach.locator("#audit-log")).to_contain_text("dismissed a report")
        resolved = coach.locator(".report .done")
        await expect(resolved).to_contain_text("Dismissed: the post stays up")
        await expect(resolved.get_by_role("link", name="See the post")).to_have_attribute(
            "href", f"/posts/{post['id']}"
        )
        await coach.reload()
        dealt = coach.locator(".reports.resolved .report")
        await expect(dealt.locator(".report-reason")).to_have_text("“Testing the queue”")
        await expect(dealt.get_by_role("link", name="See the post")).to_be_visible()
        await shot(coach, f"{backend}-moderation-phone")

        # A failed action's message goes once the next try works.
        await coach.goto(f"{server.url}/rooms/{c.room_id}")
        await expect(coach.locator("#presence-names")).to_contain_text("Here now")
        target = coach.locator(f"#post-{post['id']}")
        await post_action(target, "Hide from the circle")
        field = coach.get_by_label("Why hide it?")
        await field.fill("   ")
        await coach.locator(".post-form").get_by_role("button", name="Hide from the circle").click()
        error = coach.locator(f"#hide-{post['id']}-error")
        await expect(error).to_contain_text("give a reason")
        await field.fill("Testing")
        await coach.locator(".post-form").get_by_role("button", name="Hide from the circle").click()
        await expect(target.locator(".moderation-note")).to_contain_text("Testing")
        await expect(coach.locator(".error")).to_have_count(0)
        await coach_ctx.close()
    finally:
        await api.aclose()
