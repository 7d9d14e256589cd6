"""The mail flows in headless Chromium, with the mail read from a real SMTP server (aiosmtpd in the test process):
"Forgot your password?" from the sign-in page to signing in with the new password, and changing the address from
the account page to its confirm page; a used link says so. Desktop and 375 px phone screenshots of every step."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, BrowserContext, expect

from tests.browser import shot
from tests.client import PASSWORD, ApiClient
from tests.conftest import Server
from tests.smtp import MailCatcher, text_of
from tests.test_email import settings_env, smtp  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

SIZES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 375, "height": 740}}
NEW_PASSWORD = "a brand new passphrase 77"
# The server's links are built from KINDRED_PUBLIC_URL (test_email's settings_env); the test server's own port is
# only known once it runs, so the browser opens the link's path on it.
PUBLIC = "http://127.0.0.1:9"


async def context(browser: Browser, size: str, server: Server, token: str | None = None) -> BrowserContext:
    phone = size == "phone"
    ctx = await browser.new_context(viewport=SIZES[size], is_mobile=phone, has_touch=phone)  # type: ignore[arg-type]
    if token:
        await ctx.add_cookies([{"name": "kindred_session", "value": token, "url": server.url}])
    return ctx


def link_in(smtp: MailCatcher, address: str, path: str, server: Server) -> str:  # noqa: F811
    found = re.search(rf"{re.escape(PUBLIC)}(/{path}/[A-Za-z0-9_-]+)", text_of(smtp.to(address)[-1]))
    assert found, text_of(smtp.to(address)[-1])
    return server.url + found.group(1)


async def test_forgot_password_from_the_sign_in_page_to_signing_in_with_the_new_one(
    browser: Browser,
    server: Server,
    api: ApiClient,
    smtp: MailCatcher,  # noqa: F811
    backend: str,
) -> None:
    for size in SIZES:
        user = await api.signup()
        ctx = await context(browser, size, server)
        page = await ctx.new_page()
        await page.goto(f"{server.url}/signin")
        await page.get_by_role("link", name="Forgot your password?").click()
        await expect(page.get_by_role("heading", name="Forgot your password?")).to_be_visible()
        await page.get_by_label("Email").fill(user.email)
        await shot(page, f"{backend}-reset-1-request-{size}")
        before = len(smtp.messages)
        await page.get_by_role("button", name="Send me a link").click()
        await expect(page.get_by_role("status")).to_contain_text("If an account has that address")
        await shot(page, f"{backend}-reset-2-sent-{size}")

        await smtp.wait_for(before + 1)
        link = link_in(smtp, user.email, "reset", server)
        await page.goto(link)
        await expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
        # A refused password says why and keeps the form.
        await page.get_by_label("New password").fill("password12")
        await page.get_by_role("button", name="Set the new password").click()
        await expect(page.get_by_role("alert")).to_be_visible()
        await shot(page, f"{backend}-reset-3-refused-{size}")
        await page.get_by_label("New password").fill(NEW_PASSWORD)
        await page.get_by_role("button", name="Set the new password").click()
        await expect(page.get_by_role("status")).to_have_text("Your new password is set: sign in with it.")
        await shot(page, f"{backend}-reset-4-signin-{size}")
        await page.get_by_label("Email").fill(user.email)
        await page.get_by_label("Password").fill(NEW_PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("heading", name="My circles")).to_be_visible()

        # The link worked once: opened again, it says so and offers a new one.
        await page.goto(link)
        await expect(page.get_by_role("alert")).to_contain_text("used, expired or unknown")
        await expect(page.get_by_role("link", name="Ask for a new link")).to_be_visible()
        await shot(page, f"{backend}-reset-5-used-{size}")
        await ctx.close()


async def test_changing_the_address_from_the_account_page_and_its_confirm_page(
    browser: Browser,
    server: Server,
    api: ApiClient,
    smtp: MailCatcher,  # noqa: F811
    backend: str,
) -> None:
    for size in SIZES:
        user = await api.signup()
        new = f"moved-{size}-{user.email}"
        ctx = await context(browser, size, server, user.token)
        page = await ctx.new_page()
        await page.goto(f"{server.url}/account")
        await page.get_by_label("New address").fill(new)
        await page.get_by_label("Your password, to confirm the change").fill("not my password at all")
        await page.get_by_role("button", name="Change address").click()
        await expect(page.get_by_role("alert")).to_contain_text("not your current password")
        await page.get_by_label("New address").fill(new)
        await page.get_by_label("Your password, to confirm the change").fill(PASSWORD)
        before = len(smtp.messages)
        await page.get_by_role("button", name="Change address").click()
        await expect(page.get_by_role("status")).to_contain_text(f"We sent a link to {new}")
        await shot(page, f"{backend}-email-1-asked-{size}")

        await smtp.wait_for(before + 2)
        link = link_in(smtp, new, "email/confirm", server)
        await page.goto(f"{server.url}/account")
        await expect(page.get_by_text("Waiting for you to open the link sent to")).to_contain_text(new)
        # Opened signed out (another device, the new inbox's): the visit alone changes nothing; the button does.
        other = await context(browser, size, server)
        confirm = await other.new_page()
        await confirm.goto(link)
        await expect(confirm.get_by_role("heading", name="Confirm your new address")).to_be_visible()
        await expect(confirm.get_by_text(new)).to_be_visible()
        await shot(confirm, f"{backend}-email-2-confirm-{size}")
        assert (await user.ok("GET", "/api/v1/me"))["email"] == user.email
        await confirm.get_by_role("button", name="Confirm this address").click()
        await expect(confirm.get_by_role("status")).to_contain_text(f"Your sign-in address is now {new}")
        await shot(confirm, f"{backend}-email-3-done-{size}")
        assert (await user.ok("GET", "/api/v1/me"))["email"] == new
        await confirm.goto(link)
        await expect(confirm.get_by_role("alert")).to_contain_text("used, expired or unknown")
        await shot(confirm, f"{backend}-email-4-used-{size}")
        await page.goto(f"{server.url}/account")
        await expect(page.get_by_text(f"email ({new})")).to_be_visible()
        await expect(page.get_by_text("Waiting for you to open the link")).to_have_count(0)
        await other.close()
        await ctx.close()
