"""A drop-in in Chromium with three people (coach, two members): scheduling on the circle page, the go-live banner on
a member's other page, hands queued in order, the spotlight reaching everyone, and the summary after the end."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser import post_action, shot
from tests.client import make_circle
from tests.conftest import Server
from tests.test_browser_live import signed_in

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


async def in_room(page: Page) -> None:
    await expect(page.locator("#presence-names")).to_contain_text("Here now")


async def test_a_drop_in_from_schedule_to_summary(browser: Browser, server: Server, backend: str) -> None:
    api = server.client()
    try:
        c = await make_circle(api, members=2)
        m1, m2 = c.members
        coach_ctx = await signed_in(browser, server, c.coach.token)
        m1_ctx = await signed_in(browser, server, m1.token)
        m2_ctx = await signed_in(browser, server, m2.token)

        # The coach schedules it from the circle page, in their local time.
        coach = await coach_ctx.new_page()
        await coach.goto(f"{server.url}/circles/{c.id}")
        await coach.get_by_text("Schedule a drop-in").click()
        await coach.get_by_label("Title").fill("Thursday drop-in: saying no at work")
        next_week = (datetime.now() + timedelta(days=7)).strftime("%Y-%m-%dT18:30")
        await coach.get_by_label("Starts (your local time)").fill(next_week)
        await coach.get_by_label("Agenda").fill("Bring one experiment you ran this week.")
        await coach.get_by_role("button", name="Schedule").click()
        listed = coach.locator(".dropin-list li").first
        await expect(listed).to_contain_text("Thursday drop-in: saying no at work")
        await expect(listed.get_by_role("link", name="Add to calendar")).to_be_visible()
        # Bad input is answered beside the form, not with an error page.
        await coach.get_by_text("Schedule a drop-in").click()
        await coach.get_by_label("Title").fill("Too late")
        await coach.get_by_label("Starts (your local time)").fill("2001-03-05T18:30")
        await coach.get_by_role("button", name="Schedule").click()
        await expect(coach.locator("#dropin-form-error")).to_have_text(
            "Pick a time in the future: that start has already passed."
        )
        await shot(coach, f"{backend}-dropin-circle-coach")

        await listed.get_by_role("link", name="Thursday drop-in: saying no at work").click()
        await in_room(coach)

        # Member1 waits in the drop-in's room; Member2 is elsewhere (the circle page).
        room_url = coach.url
        member1 = await m1_ctx.new_page()
        await member1.goto(room_url)
        await in_room(member1)
        await expect(member1.locator("#dropin-panel .badge.state")).to_have_text("Scheduled")
        member2_elsewhere = await m2_ctx.new_page()
        await member2_elsewhere.goto(f"{server.url}/circles/{c.id}")
        await expect(member2_elsewhere.locator("#live-banners .live-banner")).to_have_count(0)

        # The coach opens the door: Member1's panel goes live in place, Member2 gets a banner on the other page.
        await coach.get_by_role("button", name="Open the door: go live").click()
        await expect(member1.locator("#dropin-panel .badge.state")).to_have_text("Live now")
        banner = member2_elsewhere.locator("#live-banners .live-banner")
        await expect(banner).to_have_text(
            re.compile(r"Live now: Thursday drop-in: saying no at work\s+Join the drop-in")
        )
        # The circle's list of drop-ins says it is live too, without a reload.
        listed_live = member2_elsewhere.locator(".dropin-list li", has_text="Thursday drop-in")
        await expect(listed_live).to_have_class(re.compile(r"\blive\b"))
        await expect(listed_live.locator(".badge.state")).to_have_text("Live now")
        await expect(listed_live.get_by_role("link", name="Join")).to_be_visible()
        await shot(member2_elsewhere, f"{backend}-dropin-banner")
        await banner.get_by_role("link", name="Join the drop-in").click()
        member2 = member2_elsewhere
        await in_room(member2)
        await expect(member2.locator("#dropin-panel .badge.state")).to_have_text("Live now")
        await expect(coach.locator("#presence-names")).to_contain_text("Member2")
        await expect(coach.locator("#presence-names")).to_contain_text("Coach Dana (coach)")

        # Both members say something; hands go up in order, and every page shows the same queue.
        for page, text in ((member1, "I declined a meeting and nothing broke."), (member2, "I said yes again. Why?")):
            await page.locator("#composer-body").fill(text)
            await page.locator("#composer").get_by_role("button", name="Post").click()
            await expect(coach.locator(".post").filter(has_text=text)).to_be_visible()
        await member2.get_by_role("button", name="Raise my hand").click()
        await expect(member2.get_by_role("button", name="Lower my hand")).to_be_visible()
        await expect(coach.locator("#hands li")).to_have_text(["Member2"])
        await member1.get_by_role("button", name="Raise my hand").click()
        for page in (coach, member1, member2):
            await expect(page.locator("#hands li")).to_have_text(["Member2", "Member1"])

        # The coach calls on the next hand: Member2's latest post is in the spotlight for everyone, and Member2 is
        # told it is their turn (the others are not).
        await expect(coach.get_by_role("button", name="Call on the next hand")).to_be_enabled()
        await coach.get_by_role("button", name="Call on the next hand").click()
        for page in (coach, member1, member2):
            await expect(page.locator("#spotlight .spotlit")).to_contain_text("I said yes again. Why?")
            await expect(page.locator("#hands li")).to_have_text(["Member1"])
        await expect(member2.locator("#spotlight .youre-up")).to_be_visible()
        await expect(member2.locator("#spotlight .youre-up")).to_contain_text("You're up")
        await expect(member1.locator("#spotlight .youre-up")).to_be_hidden()
        await expect(coach.locator("#spotlight .youre-up")).to_be_hidden()
        # With the last hand called on, there is nobody to call: the button says so by being disabled.
        await coach.get_by_role("button", name="Call on the next hand").click()
        await expect(coach.locator("#no-hands")).to_be_visible()
        await expect(coach.get_by_role("button", name="Call on the next hand")).to_be_disabled()
        await expect(member1.locator("#spotlight .youre-up")).to_be_visible()
        await expect(member2.get_by_role("button", name="Raise my hand")).to_be_visible()

        # The coach can spotlight any post, and pins one and asks a probing question.
        mine = coach.locator(".post").filter(has_text="I declined a meeting")
        await mine.get_by_role("button", name="Spotlight").click()
        for page in (member1, member2):
            await expect(page.locator("#spotlight .spotlit")).to_contain_text("I declined a meeting")

        await post_action(mine, "Pin as key insight")
        await coach.get_by_label("A note for the circle").fill("Nothing broke")
        await coach.locator(".post-form").get_by_role("button", name="Pin as key insight").click()
        await expect(member1.locator(".badge.insight")).to_be_visible()
        await shot(member1, f"{backend}-dropin-live-member")
        await shot(coach, f"{backend}-dropin-live-coach")

        # End: read-only, with a summary at the top, on every page.
        coach.once("dialog", lambda d: d.accept())
        await coach.get_by_role("button", name="End the drop-in").click()
        for page in (coach, member1, member2):
            summary = page.locator("#dropin-panel .summary")
            await expect(summary).to_contain_text("Member1")
            await expect(summary).to_contain_text("Member2")
            await expect(summary).to_contain_text("I declined a meeting")
            await expect(page.locator("#composer")).to_have_count(0)
        await shot(member1, f"{backend}-dropin-ended")

        # It stays in the circle's history.
        await member1.goto(f"{server.url}/circles/{c.id}")
        await expect(member1.locator(".dropin-list.past")).to_contain_text("Thursday drop-in: saying no at work")
        for context in (coach_ctx, m1_ctx, m2_ctx):
            await context.close()
    finally:
        await api.aclose()


async def test_youre_up_for_a_member_called_on_before_posting(browser: Browser, server: Server, backend: str) -> None:
    api = server.client()
    try:
        c = await make_circle(api, members=2)
        m1, m2 = c.members
        soon = (datetime.now().astimezone() + timedelta(minutes=30)).isoformat()
        created = await c.coach.ok(
            "POST",
            f"/api/v1/circles/{c.id}/dropins",
            {"title": "Quiet start", "starts_at": soon, "duration_minutes": 30},
        )
        await c.coach.ok("POST", f"/api/v1/dropins/{created['id']}/start", status=200)
        pages = []
        for user in (m1, m2):
            context = await signed_in(browser, server, user.token)
            page = await context.new_page()
            await page.set_viewport_size({"width": 390, "height": 844})
            await page.goto(f"{server.url}/rooms/{created['room_id']}")
            await in_room(page)
            pages.append(page)
        called_page, other = pages
        await called_page.get_by_role("button", name="Raise my hand").click()
        await expect(other.locator("#hands li")).to_have_text(["Member1"])
        await c.coach.ok("POST", f"/api/v1/dropins/{created['id']}/hands/next", status=200)
        # Member1 has not posted: nothing is in the spotlight, yet they are told it is their turn, with a way in.
        up = called_page.locator("#spotlight .youre-up")
        await expect(up).to_be_visible()
        await expect(up).to_contain_text("You're up")
        await up.get_by_role("link", name="Start writing").click()
        await expect(called_page.locator("#composer-body")).to_be_in_viewport()
        await expect(called_page.locator("#spotlight .called-on")).to_be_hidden()
        # Everyone else sees who has the floor, by alias only.
        await expect(other.locator("#spotlight .called-on")).to_contain_text("Your coach called on Member1")
        await expect(other.locator("#spotlight .youre-up")).to_be_hidden()
        await shot(called_page, f"{backend}-dropin-called-before-posting")
        for page in pages:
            await page.context.close()
    finally:
        await api.aclose()
