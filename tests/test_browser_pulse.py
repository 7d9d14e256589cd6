"""The pulse page in Chromium: the coach reaches it from the circle, sees who needs her, her gestures, the lab and
the chart (with its table), taps through to a member's journal; on a phone too, without serious axe findings. A
member is refused it."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.browser import shot
from tests.client import make_circle
from tests.conftest import Server
from tests.test_browser_a11y import DOC_SHOTS, DOCS, check_page, context_for

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


async def test_the_coach_opens_her_pulse(browser: Browser, server: Server, backend: str) -> None:
    api = server.client()
    try:
        c = await make_circle(api, members=3)
        ana, ben, _ = c.members
        win = await ana.post(c.room_id, "I said no to the extra shift and nothing broke", kind="win")
        await c.coach.ok("PUT", f"/api/v1/posts/{win['id']}/like")
        await c.coach.post(c.room_id, "What did you tell yourself first?", kind="question", parent_id=win["id"])
        await ben.post(c.room_id, "Nobody has answered this one yet")
        plan = {"assumption": "If I say no she leaves", "belief_before": 80, "action": "say no", "prediction": "cold"}
        done = await ben.post(c.room_id, "", kind="experiment", experiment=plan)
        debrief = {"state": "debriefed", "outcome": "fine", "matched_prediction": "no", "belief_after": 35}
        await ben.ok("PATCH", f"/api/v1/posts/{done['id']}/experiment", {**debrief, "learning": "she stayed"})

        for size in ("desktop", "phone"):
            context = await context_for(browser, server, size, c.coach.token)
            page = await context.new_page()
            await page.goto(f"{server.url}/circles/{c.id}")
            await page.get_by_role("link", name="Pulse").click()
            await expect(page.get_by_role("heading", name="Who needs you")).to_be_visible()
            assert await check_page(page, server, f"/circles/{c.id}/pulse") == []
            await expect(page.locator(".pulse-item", has_text="Nobody has answered")).to_contain_text("Member2")
            await expect(page.locator(".pulse-item", has_text="What did you tell yourself")).to_contain_text("asked")
            await expect(page.get_by_role("row", name="Member1")).to_contain_text("1")
            await expect(page.get_by_role("img", name="Posts per day")).to_be_visible()
            await expect(page.locator(".funnel")).to_contain_text("1 debriefed")
            await expect(page.get_by_text("45 points less true")).to_be_visible()
            await shot(page, f"{backend}-pulse-{size}")
            if backend == "sqlite":
                await page.screenshot(path=f"/tmp/shots-pulse/pulse-{size}.png", full_page=True)
            await page.get_by_label("Quiet after").fill("1")
            await page.get_by_role("button", name="Show").click()
            await expect(page.get_by_label("Quiet after")).to_have_value("1")
            await context.close()

        context = await context_for(browser, server, "desktop", c.coach.token)
        page = await context.new_page()
        await page.goto(f"{server.url}/circles/{c.id}/pulse?quiet=1")
        await page.get_by_role("link", name="write to Member2 privately").first.click()
        await expect(page.get_by_role("heading", level=1)).to_contain_text("Member2’s journal")
        await context.close()

        # The narrowest common phone (375 px): nothing wider than the screen, the gestures table scrolls in its box.
        small = await browser.new_context(viewport={"width": 375, "height": 812}, is_mobile=True, has_touch=True)
        await small.add_cookies([{"name": "kindred_session", "value": c.coach.token, "url": server.url}])
        page = await small.new_page()
        await page.goto(f"{server.url}/circles/{c.id}/pulse")
        await expect(page.get_by_role("heading", name="Your gestures")).to_be_visible()
        assert await page.evaluate("document.documentElement.scrollWidth") <= 375
        await shot(page, f"{backend}-pulse-375")
        if DOC_SHOTS and backend == "sqlite":
            await page.screenshot(path=str(DOCS / "pulse-coach-phone.png"), full_page=True)
        await small.close()

        member = await context_for(browser, server, "desktop", ben.token)
        page = await member.new_page()
        answer = await page.goto(f"{server.url}/circles/{c.id}/pulse")
        assert answer is not None and answer.status == 403
        await member.close()
    finally:
        await api.aclose()
