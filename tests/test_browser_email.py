"""The email settings and the unsubscribe page in Chromium, at desktop and 375 px: the digest settings save, and the
unsubscribe page's button turns that mail off (screenshots in test-artifacts/)."""

from __future__ import annotations

import uuid

import pytest
from playwright.async_api import Browser, expect

from app.services import mailprefs
from tests.browser import shot
from tests.conftest import Server

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

SIZES = {"desktop": (1280, 900), "phone": (375, 740)}


@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_digest_settings_and_the_unsubscribe_button(
    browser: Browser, server: Server, backend: str, size: str
) -> None:
    api = server.client()
    try:
        user = await api.signup()
        width, height = SIZES[size]
        context = await browser.new_context(viewport={"width": width, "height": height}, is_mobile=size == "phone")
        await context.add_cookies([{"name": "kindred_session", "value": user.token, "url": server.url}])
        page = await context.new_page()
        await page.goto(f"{server.url}/settings/notifications")
        await page.get_by_label("How often").select_option("weekly")
        await page.get_by_label("Day, if weekly").select_option("friday")
        await shot(page, f"email-settings-before-{size}")
        # The email column is the table's last: on a 375 px phone too it must be reachable (a click, not a forced one).
        await page.get_by_label("Drop-in reminders: email").check()
        await page.get_by_role("button", name="Save").click()
        await expect(page.get_by_role("status")).to_have_text("Saved.")
        overflow = await page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        if backend == "sqlite":
            await shot(page, f"email-settings-{size}")
        prefs = await user.ok("GET", "/api/v1/notifications/preferences")
        assert prefs["mail"]["digest"] == "weekly" and prefs["mail"]["digest_weekday"] == "friday"
        assert prefs["kinds"]["dropin.reminder"]["email"] is True
        await context.close()
        assert overflow <= 0, "the page fits the screen's width (the tables fit, or scroll inside their box)"

        link = await mailprefs.unsubscribe_url(uuid.UUID(user.id), "digest", server.url)
        stranger = await browser.new_context(viewport={"width": width, "height": height}, is_mobile=size == "phone")
        page = await stranger.new_page()
        await page.goto(link)
        await expect(page.get_by_role("heading", level=1)).to_have_text("Unsubscribe")
        if backend == "sqlite":
            await shot(page, f"unsubscribe-{size}")
        assert (await user.ok("GET", "/api/v1/notifications/preferences"))["mail"]["digest"] == "weekly"
        await page.get_by_role("button", name="Unsubscribe from the digest").click()
        await expect(page.get_by_role("status")).to_contain_text("the digest will not come to this address any more")
        if backend == "sqlite":
            await shot(page, f"unsubscribed-{size}")
        assert (await user.ok("GET", "/api/v1/notifications/preferences"))["mail"]["digest"] == "off"
        await stranger.close()
    finally:
        await api.aclose()
