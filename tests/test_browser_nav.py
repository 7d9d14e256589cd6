"""The site navigation in Chromium, at phone (390×844) and desktop (1280×900) sizes: the bell with its live unread
count always in view, the compact menu (circles, notifications, account, sign out) on a phone, "Sign in" when
signed out, and "signed in as" saying that only you see your name."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.client import make_circle
from tests.conftest import Server
from tests.test_browser_a11y import context_for

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


async def test_a_member_on_a_phone_has_the_bell_and_a_menu_on_every_page(
    browser: Browser, server: Server, backend: str
) -> None:
    api = server.client()
    try:
        c = await make_circle(api, members=2)
        a, b = c.members
        post = await a.post(c.room_id, "A first reflection.")
        context = await context_for(browser, server, "phone", a.token)
        page = await context.new_page()
        for path in (
            "/",
            f"/circles/{c.id}",
            f"/rooms/{c.room_id}",
            f"/posts/{post['id']}",
            "/notifications",
            "/account",
            "/settings/notifications",
            f"/circles/{c.id}/insights",
        ):
            await page.goto(server.url + path)
            await expect(page.locator("#bell"), path).to_be_visible()
            await expect(page.locator("#bell"), path).to_be_in_viewport()
            menu = page.get_by_role("navigation", name="Main")
            await expect(menu.get_by_text("Menu"), path).to_be_visible()
            # The wide bar's own "My circles" link is folded away on a phone: in the menu, not beside it.
            await expect(menu.get_by_role("link", name="My circles"), path).to_be_hidden()

        # The count goes up live while the member is on a page with no room in it.
        await page.goto(f"{server.url}/account")
        await expect(page.locator("#unread-count")).to_be_hidden()
        await b.post(c.room_id, "Welcome!", parent_id=post["id"])
        await expect(page.locator("#unread-count")).to_have_text("1")
        await expect(page.locator("#bell")).to_have_attribute("aria-label", "Notifications: 1 unread")

        # The menu opens on a tap and holds everything; it says whose name this is and who sees it.
        await page.get_by_text("Menu").click()
        panel = page.locator(".nav-panel")
        await expect(panel).to_be_in_viewport()
        await expect(panel.get_by_text("Signed in as")).to_contain_text(a.name)
        await expect(panel).to_contain_text("Only you see your name")
        for name in ("My circles", "Notifications", "Account and aliases", "Notification settings"):
            await expect(panel.get_by_role("link", name=name)).to_be_visible()
        await expect(panel.get_by_role("button", name="Sign out")).to_be_visible()
        # Escape closes it and gives focus back to its button.
        await page.keyboard.press("Escape")
        await expect(panel).to_be_hidden()
        await expect(page.locator("#nav-menu summary")).to_be_focused()
        await page.get_by_text("Menu").click()
        await panel.get_by_role("link", name="Notifications").click()
        await expect(page.get_by_role("heading", name="Notifications", level=1)).to_be_visible()
        await context.close()

        # Signed out, the bar offers "Sign in" at phone size too.
        context = await context_for(browser, server, "phone")
        page = await context.new_page()
        await page.goto(server.url + "/")
        await expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Sign in")).to_be_visible()
        await expect(
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Create account")
        ).to_be_visible()
        await context.close()

        # On a desktop, "My circles" and the bell sit in the bar, the account in its menu.
        context = await context_for(browser, server, "desktop", a.token)
        page = await context.new_page()
        await page.goto(server.url + "/account")
        nav = page.get_by_role("navigation", name="Main")
        await expect(nav.get_by_role("link", name="My circles")).to_be_visible()
        await expect(page.locator("#bell")).to_be_visible()
        await expect(nav.get_by_text("Menu")).to_be_hidden()
        await nav.get_by_text("Account").first.click()
        await expect(page.locator(".nav-panel").get_by_role("link", name="Account and aliases")).to_be_visible()
        await expect(page.locator(".nav-panel").get_by_role("link", name="Notifications")).to_be_hidden()
        await context.close()
    finally:
        await api.aclose()
