"""Search in Chromium: "/" focuses the box (not while typing in a field), results come grouped by thread with the
matched words marked, a filter chip narrows and takes itself off, the empty state says what to try, an experiment's
page lists others who tested a similar assumption; on a phone too. The same pages without script are plain GET forms
(checked over HTTP at the end)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.client import make_circle
from tests.conftest import Server
from tests.test_browser_live import signed_in

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


async def test_search_page_in_the_browser(browser: Browser, server: Server, backend: str) -> None:
    api = server.client()
    try:
        c = await make_circle(api, members=2)
        ana, ben = c.members
        top = await ana.post(c.room_id, "Saying no to my mother felt scary. <b>Saying no</b> still worked.")
        await ben.post(c.room_id, "Saying no at work is harder for me", parent_id=top["id"])
        win = await ben.post(c.room_id, "Small win: I said no to overtime and nothing broke", kind="win")
        plan = {
            "assumption": "If I say no to my boss he will be angry",
            "belief_before": 80,
            "action": "say no",
            "prediction": "anger",
        }
        mine = await ana.post(c.room_id, "", kind="experiment", experiment=plan)
        theirs = await ben.post(
            c.room_id, "", kind="experiment", experiment={**plan, "assumption": "My boss gets angry when I say no"}
        )
        await ben.ok(
            "PATCH",
            f"/api/v1/posts/{theirs['id']}/experiment",
            {
                "state": "debriefed",
                "outcome": "He said fine",
                "matched_prediction": "no",
                "belief_after": 30,
                "learning": "He barely noticed",
            },
        )

        context = await signed_in(browser, server, ana.token)
        page = await context.new_page()
        await page.goto(f"{server.url}/circles/{c.id}")
        box = page.get_by_role("searchbox", name="Search this circle")
        await page.keyboard.press("/")
        await expect(box).to_be_focused()
        await box.fill("sayin")
        await box.press("Enter")
        await expect(page.locator(".search-thread")).to_have_count(1)  # the post and its reply: one thread
        await expect(page.locator(".search-hit")).to_have_count(2)
        await expect(page.locator(".search-hit mark").first).to_have_text("Saying")
        assert await page.locator(".search-hit b").count() == 0, "the post's own markup is text"
        # "/" while typing in the box types a slash.
        await box.press("End")
        await page.keyboard.type("/")
        await expect(box).to_have_value("sayin/")
        SHOTS.mkdir(exist_ok=True)
        if backend == "sqlite":
            await page.screenshot(path=str(SHOTS / "search-member-desktop.png"), full_page=True)

        # A chip narrows to wins and takes itself off again; a search that finds nothing says what to try.
        await box.fill("no")
        await box.press("Enter")
        await page.locator(".chips").get_by_role("link", name="Wins").click()
        await expect(page.locator(".search-hit")).to_have_count(1)
        await expect(page.locator(".search-hit .snippet")).to_contain_text("overtime")
        await page.get_by_role("link", name="Remove filter: Wins").click()
        await expect(page.locator(".chip.on")).to_have_count(0)
        await page.goto(f"{server.url}/circles/{c.id}/search?q=zebra")
        await expect(page.locator(".empty")).to_contain_text("Try fewer words")

        # An experiment's page: the other member's similar experiment, with what they learned.
        await page.goto(f"{server.url}/posts/{mine['id']}")
        similar = page.locator(".similar-experiments")
        await expect(similar.get_by_role("heading")).to_have_text("Others who tested a similar assumption")
        await expect(similar).to_contain_text("He barely noticed")
        await expect(similar.locator("mark").first).to_be_visible()

        # A phone: the box and the results fit (no sideways scroll).
        phone = await browser.new_context(viewport={"width": 375, "height": 780})
        await phone.add_cookies([{"name": "kindred_session", "value": ana.token, "url": server.url}])
        small = await phone.new_page()
        await small.goto(f"{server.url}/circles/{c.id}/search?q=no")
        await expect(small.locator(".search-hit").first).to_be_visible()
        width = await small.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, width
        if backend == "sqlite":
            await small.screenshot(path=str(SHOTS / "search-member-phone.png"), full_page=True)
        await phone.close()
        await context.close()

        # Without script: the same page from a plain GET (no htmx), with results and filters as links.
        async with httpx.AsyncClient(base_url=server.url, cookies={"kindred_session": ana.token}) as plain:
            r = await plain.get(f"/circles/{c.id}/search", params={"q": "no", "kind": "win"})
            assert r.status_code == 200 and f'href="/posts/{win["id"]}"' in r.text and "<mark>no</mark>" in r.text
            r = await plain.get(f"/circles/{c.id}/search", params={"q": "n"})
            assert r.status_code == 200 and "q must be 2 to 200" in r.text
        outsider = await api.signup()
        async with httpx.AsyncClient(base_url=server.url, cookies={"kindred_session": outsider.token}) as stranger:
            assert (await stranger.get(f"/circles/{c.id}/search", params={"q": "no"})).status_code == 404
    finally:
        await api.aclose()
