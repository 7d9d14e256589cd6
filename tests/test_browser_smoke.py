"""A coach and a client use the pages in headless Chromium: sign up, open a circle, invite, join, post, reply, edit."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser import post_action, shot
from tests.client import PASSWORD
from tests.conftest import Server

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


async def sign_up(page: Page, base: str | None, name: str, email: str) -> None:
    """Fill the sign-up form; with a base URL, open it first (otherwise the page is already there)."""
    if base is not None:
        await page.goto(f"{base}/signup")
    await page.get_by_label("Your name").fill(name)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()


async def test_coach_and_client_hold_a_threaded_discussion(browser: Browser, server: Server, backend: str) -> None:
    base = server.url
    coach_ctx = await browser.new_context(viewport={"width": 1200, "height": 900})
    member_ctx = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    coach, member = await coach_ctx.new_page(), await member_ctx.new_page()
    errors: list[str] = []
    for p in (coach, member):
        p.on("pageerror", lambda exc: errors.append(str(exc)))
        p.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    # The coach signs up and opens a circle.
    await sign_up(coach, base, "Dana Whitfield", f"dana-{backend}@example.org")
    await expect(coach.get_by_role("heading", name="My circles")).to_be_visible()
    await coach.get_by_role("link", name="Open a circle").click()
    await coach.get_by_label("Name").fill("Saying No, Kindly")
    await coach.get_by_label("What members share").fill(
        "We are all learning to say no without fearing for the relationship."
    )
    await coach.get_by_label("How we treat each other").fill("What is said here stays here.\nCuriosity before advice.")
    await coach.get_by_role("button", name="Open the circle").click()
    await expect(coach.get_by_role("heading", name="Saying No, Kindly")).to_be_visible()
    await coach.get_by_role("button", name="Create invite link").click()
    invite = coach.locator("#invite-url")
    await expect(invite).to_be_visible()
    invite_url = await invite.input_value()
    assert invite_url.startswith(f"{base}/join/")
    await shot(coach, f"{backend}-1-coach-circle")

    # The client opens the link, reads the commonality, signs up, and joins under an alias.
    await member.goto(invite_url)
    await expect(member.get_by_text("learning to say no without fearing")).to_be_visible()
    await member.get_by_role("link", name="Create an account to join").click()
    await sign_up(member, None, "Samuel Private", f"sam-{backend}@example.org")
    await expect(member.get_by_role("heading", name="Why an alias?")).to_be_visible()
    await shot(member, f"{backend}-2-member-join")
    await member.get_by_label("Your alias in this circle").fill("Quiet River")
    await member.get_by_role("button", name="Join the circle").click()
    await expect(member.get_by_text("You appear here as")).to_contain_text("Quiet River")

    # Both open the room.
    await member.get_by_role("link", name="General").click()
    await coach.goto(coach.url)
    await coach.get_by_role("link", name="General").click()
    await expect(coach.locator("#presence-names")).to_contain_text("Quiet River")

    # The client posts a win; it shows for them at once and reaches the coach live, without a reload.
    await member.get_by_label("Your post").fill("I said **no** to an extra project today, and the sky did not fall.")
    await member.get_by_text("Small win", exact=True).click()
    await member.get_by_role("button", name="Post").click()
    mine = member.locator("article.post").first
    await expect(mine).to_contain_text("the sky did not fall")
    await mine.locator("details.more > summary").click()
    await expect(mine.get_by_role("button", name="Edit")).to_be_visible()
    await mine.locator("details.more > summary").click()
    theirs = coach.locator("article.post").first
    await expect(theirs).to_contain_text("the sky did not fall")
    await expect(theirs.locator(".kind")).to_have_text("Small win")
    await theirs.locator("details.more > summary").click()
    await expect(theirs.get_by_role("button", name="Edit")).to_be_hidden()
    await expect(theirs.get_by_role("button", name="Hide from the circle")).to_be_visible()
    await theirs.locator("details.more > summary").click()

    # The coach replies with a probing question; it lands in the client's thread live.
    await theirs.get_by_role("button", name="Ask a question").click()
    await coach.get_by_label("Ask Quiet River a question").fill("What did you tell yourself just before you said it?")
    await coach.locator(".reply-form").get_by_role("button", name="Ask").click()
    question = member.locator(".replies article.post").first
    await expect(question).to_contain_text("just before you said it")
    await expect(question).to_contain_text("A question from your coach")
    # The coach who asked is not told it is a question from their coach.
    await expect(coach.locator(".replies article.post .probe-note")).to_be_hidden()
    # Shown once on both sides, though the coach's page got it both as the form's answer and over the socket.
    await expect(coach.locator(".replies article.post")).to_have_count(1)
    await expect(member.locator(".replies article.post")).to_have_count(1)

    # The client edits their post in place; the coach sees the edit live.
    await post_action(mine, "Edit")
    await member.locator("form.edit-form textarea").fill("I said **no** to an extra project today. Twice!")
    await member.get_by_role("button", name="Save").click()
    await expect(mine.locator(".post-main").first).to_contain_text("Twice!")
    await expect(theirs.locator(".post-main").first).to_contain_text("Twice!")
    await expect(theirs.locator(".post-main .edited").first).to_be_visible()

    await shot(coach, f"{backend}-3-coach-room")
    await shot(member, f"{backend}-4-member-room-mobile")
    assert errors == [], errors
    await coach_ctx.close()
    await member_ctx.close()
