"""The live room page in Chromium: catching up after a dropped connection, the quiet "n new posts" marker, and
deletions arriving in place."""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Browser, BrowserContext, Page, WebSocketRoute, expect

from tests.browser import shot
from tests.client import Circle, make_circle
from tests.conftest import Server

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


async def signed_in(browser: Browser, server: Server, token: str) -> BrowserContext:
    """A browser context carrying an existing sign-in (the session cookie is the sign-in token)."""
    context = await browser.new_context(viewport={"width": 1100, "height": 700})
    await context.add_cookies([{"name": "kindred_session", "value": token, "url": server.url}])
    return context


async def open_room(context: BrowserContext, server: Server, c: Circle) -> Page:
    page = await context.new_page()
    await page.goto(f"{server.url}/rooms/{c.room_id}")
    await expect(page.locator("#presence-names")).to_contain_text("Here now")
    return page


async def test_page_catches_up_after_a_dropped_connection(browser: Browser, server: Server, backend: str) -> None:
    server_client = server.client()
    try:
        c = await make_circle(server_client, members=2)
        a, b = c.members
        context = await signed_in(browser, server, b.token)
        page = await context.new_page()
        sockets: list[tuple[WebSocketRoute, WebSocketRoute]] = []
        gate = asyncio.Event()
        gate.set()

        async def through_gate(ws: WebSocketRoute) -> None:
            await gate.wait()
            sockets.append((ws, ws.connect_to_server()))

        await page.route_web_socket(re.compile(r".*/api/v1/ws.*"), through_gate)
        await page.goto(f"{server.url}/rooms/{c.room_id}")
        await expect(page.locator("#presence-names")).to_contain_text("Here now")
        await a.post(c.room_id, "before the drop")
        await expect(page.locator("article.post")).to_have_count(1)

        # The network drops; while the page is away, three posts, an edit and a deletion happen.
        gate.clear()
        client_side, server_side = sockets[-1]
        await server_side.close()
        await client_side.close(code=4000, reason="network down")
        await expect(page.locator("#connection")).to_have_text("Reconnecting…")
        missed = [await a.post(c.room_id, f"while you were away {i}") for i in range(3)]
        await a.ok("PATCH", f"/api/v1/posts/{missed[0]['id']}", {"body": "while you were away 0 (edited)"})
        await a.ok("DELETE", f"/api/v1/posts/{missed[1]['id']}")
        gate.set()

        # On reconnect the page subscribes with `since` and replays exactly what it missed, once.
        await expect(page.locator("article.post")).to_have_count(4)
        await expect(page.locator(f"#main-{missed[0]['id']}")).to_contain_text("(edited)")
        await expect(page.locator(f"#main-{missed[1]['id']}")).to_contain_text("This post was deleted")
        await expect(page.locator("#connection")).to_be_hidden()
        texts = await page.locator("article.post .body").all_inner_texts()
        assert texts == ["while you were away 2", "while you were away 0 (edited)", "before the drop"]
        await shot(page, f"{backend}-live-after-reconnect")
        await context.close()
    finally:
        await server_client.aclose()


async def test_new_posts_wait_behind_a_marker_while_reading_further_down(browser: Browser, server: Server) -> None:
    api = server.client()
    try:
        c = await make_circle(api, members=2)
        a, b = c.members
        for i in range(8):
            await a.post(c.room_id, f"older post {i}\n\n" + "A long reflection. " * 60)
        context = await signed_in(browser, server, b.token)
        page = await open_room(context, server, c)
        await page.mouse.wheel(0, 2500)
        # Not wait_for_function: its string predicate is eval'd in the page, which our CSP (rightly) forbids.
        for _ in range(300):
            if await page.evaluate("window.scrollY") > 1000:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the page did not scroll")

        fresh = await a.post(c.room_id, "a new post while you read")
        marker = page.locator("#new-marker")
        await expect(marker).to_be_visible()
        await expect(marker).to_contain_text("1 new post")
        assert await page.locator(f"#post-{fresh['id']}").count() == 0, "no jump: held back until asked for"
        scroll_before = await page.evaluate("window.scrollY")
        assert scroll_before > 1000

        await marker.get_by_role("button").click()
        await expect(page.locator("article.post").first).to_contain_text("a new post while you read")
        await expect(marker).to_be_hidden()

        # A reply to a post on the page goes straight into its thread; a deletion replaces the post in place.
        top = await a.post(c.room_id, "reply target")
        await page.evaluate("window.scrollTo(0, 0)")
        await expect(page.locator(f"#post-{top['id']}")).to_be_visible()
        reply = await a.post(c.room_id, "a live reply", parent_id=top["id"])
        await expect(page.locator(f"#replies-{top['id']} #post-{reply['id']}")).to_be_visible()
        await a.ok("DELETE", f"/api/v1/posts/{reply['id']}")
        await expect(page.locator(f"#main-{reply['id']}")).to_contain_text("This post was deleted")
        await context.close()
    finally:
        await api.aclose()
