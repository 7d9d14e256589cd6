"""Safety in Chromium: a member reports, the coach hides from the queue, peers see it disappear live; a paused member
is told why; aliases change from the account page; sign-in rotates the session."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.browser import post_action, shot
from tests.client import PASSWORD, make_circle
from tests.conftest import Server
from tests.test_browser_live import open_room, signed_in

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


async def test_report_hide_and_pause_through_the_pages(browser: Browser, server: Server, backend: str) -> None:
    api = server.client()
    try:
        c = await make_circle(api, members=2)
        a, b = c.members
        post = await a.post(c.room_id, "My manager, Jo Smith at Acme, is impossible.")
        member_ctx = await signed_in(browser, server, b.token)
        peer_ctx = await signed_in(browser, server, a.token)
        coach_ctx = await signed_in(browser, server, c.coach.token)
        reporter = await open_room(member_ctx, server, c)
        author = await open_room(peer_ctx, server, c)

        # A member reports the post from its menu.
        await post_action(reporter.locator(f"#post-{post['id']}"), "Report to the coach")
        await reporter.get_by_label("What is wrong with this post?").fill("It names a real person and company")
        await reporter.get_by_role("button", name="Send to your coach").click()
        await expect(reporter.locator(".done")).to_contain_text("Your coach will look at it")
        await expect(
            author.locator(f"#post-{post['id']}").get_by_role("button", name="Report to the coach")
        ).to_be_hidden()

        # The coach sees it waiting, and hides the post from the queue with a reason.
        coach = await coach_ctx.new_page()
        await coach.goto(f"{server.url}/circles/{c.id}")
        await coach.get_by_role("link", name="Moderation (1 open report)").click()
        await expect(coach.locator(".report-reason")).to_have_text("“It names a real person and company”")
        await coach.get_by_placeholder("Reason (the author sees it if you hide or remove)").fill(
            "Please leave names out"
        )
        await coach.get_by_role("button", name="Hide the post").click()
        await expect(coach.locator(".report .done")).to_contain_text("hidden")
        await expect(reporter.locator(f"#main-{post['id']}")).to_have_text("Hidden by the coach.")
        await coach.reload()
        await expect(coach.locator(".audit")).to_contain_text("hid a post")
        await expect(coach.locator(".audit")).to_contain_text("Please leave names out")
        await shot(coach, f"{backend}-moderation")

        # The author, on reload, still sees their words with the coach's reason.
        await author.reload()
        await expect(author.locator(".moderation-note")).to_contain_text("Please leave names out")
        await expect(author.locator(f"#main-{post['id']} .body")).to_contain_text("impossible")

        # The coach pauses the author; posting is refused with the reason, inline.
        await coach.goto(f"{server.url}/circles/{c.id}")
        tools = coach.locator(".members li", has_text="Member1").locator("details.member-tools")
        await tools.locator("summary").click()
        await tools.get_by_placeholder("Reason (they will see it)").fill("Take a breath")
        await tools.get_by_role("button", name="Pause").click()
        await expect(tools.locator(".done")).to_contain_text("Paused until")
        await author.get_by_label("Your post").fill("But listen…")
        await author.get_by_role("button", name="Post").click()
        await expect(author.locator("#composer-error")).to_contain_text("Your coach has paused your posting")
        await expect(author.locator("#composer-error")).to_contain_text("Take a breath")
        await shot(author, f"{backend}-paused")

        # A paused member cannot change alias either (a new name is a new voice); the reason shows inline.
        await author.goto(f"{server.url}/account")
        await expect(author.get_by_role("alert")).to_have_count(0)
        await author.get_by_role("textbox", name="Saying No").fill("Second Wind")
        await author.get_by_role("button", name="Change your alias in Saying No").click()
        await expect(author.get_by_role("alert").filter(has_text="paused")).to_contain_text("Take a breath")
        # Control: the reporter, not paused, changes alias from the same page.
        account = await member_ctx.new_page()
        await account.goto(f"{server.url}/account")
        await account.get_by_role("textbox", name="Saying No").fill("Second Wind")
        await account.get_by_role("button", name="Change your alias in Saying No").click()
        await expect(account.get_by_role("status")).to_contain_text("You now appear as Second Wind")
        for ctx in (member_ctx, peer_ctx, coach_ctx):
            await ctx.close()
    finally:
        await api.aclose()


async def test_sign_in_rotates_the_session(browser: Browser, server: Server) -> None:
    api = server.client()
    try:
        planted = await api.signup("Planted Session")
        victim = await api.signup("Victim")
        context = await signed_in(browser, server, planted.token)
        page = await context.new_page()
        await page.goto(f"{server.url}/signin")
        await page.get_by_label("Email").fill(victim.email)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("heading", name="My circles")).to_be_visible()
        cookie = next(ck for ck in await context.cookies() if ck["name"] == "kindred_session")
        assert cookie["value"] != planted.token and cookie["httpOnly"]
        assert (await planted.call("GET", "/api/v1/me")).status_code == 401, "the session brought in is ended"
        me = await api.http.get("/api/v1/me", headers={"Authorization": f"Bearer {cookie['value']}"})
        assert me.json()["email"] == victim.email
        await context.close()
    finally:
        await api.aclose()
