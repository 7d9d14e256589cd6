"""A coach's actions on posts in Chromium, at phone size: "Ask a question" as its own action, Hide / Remove / Pin /
"Invite a member to reply" in a "⋯" menu away from Reply, one action row inside the card (the coach's tinted
question too), small forms in the page instead of browser prompts, and reporting a post again after the coach
dismissed the first report is answered truthfully."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright._impl._api_structures import FloatRect
from playwright.async_api import Browser, Locator, Page, expect

from tests.browser import post_action, shot
from tests.client import make_circle
from tests.conftest import Server
from tests.test_browser_a11y import context_for

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"


def test_no_page_asks_through_a_browser_prompt() -> None:
    offenders = [str(p.relative_to(TEMPLATES)) for p in TEMPLATES.rglob("*.html") if "hx-prompt" in p.read_text()]
    assert offenders == []
    # A control: the scan does read the templates (a coach's "End the drop-in" still confirms, in words).
    assert any("hx-confirm" in p.read_text() for p in TEMPLATES.rglob("*.html"))


async def box(locator: Locator) -> FloatRect:
    found = await locator.bounding_box()
    assert found is not None
    return found


async def inside(inner: Locator, outer: Locator) -> bool:
    a, b = await box(inner), await box(outer)
    return bool(
        a["x"] >= b["x"] - 0.5
        and a["y"] >= b["y"] - 0.5
        and a["x"] + a["width"] <= b["x"] + b["width"] + 0.5
        and a["y"] + a["height"] <= b["y"] + b["height"] + 0.5
    )


async def one_row(row: Locator) -> bool:
    """Every visible control of an action row on one line."""
    tops = await row.evaluate(
        """(el) => [...el.children].filter((c) => c.offsetParent !== null).map((c) => Math.round(c.getBoundingClientRect().top))"""
    )
    return bool(max(tops) - min(tops) <= 4)


async def in_room(page: Page) -> None:
    await expect(page.locator("#presence-names")).to_contain_text("Here now")


async def test_coach_actions_on_a_phone(browser: Browser, server: Server, backend: str) -> None:
    api = server.client()
    try:
        c = await make_circle(api, members=2)
        a, b = c.members
        post = await a.post(c.room_id, "I said no to the Friday shift and offered Sunday instead.", kind="win")
        other = await a.post(c.room_id, "My manager Jo at Acme is impossible.")
        doomed = await a.post(c.room_id, "Call me on 555-0100, everyone.")
        await c.coach.ok("PUT", f"/api/v1/posts/{post['id']}/like")
        await b.ok("PUT", f"/api/v1/posts/{post['id']}/like")
        coach_ctx = await context_for(browser, server, "phone", c.coach.token)
        member_ctx = await context_for(browser, server, "phone", a.token)
        coach, member = await coach_ctx.new_page(), await member_ctx.new_page()
        dialogs: list[str] = []
        for page in (coach, member):
            page.on("dialog", lambda d: dialogs.append(d.message))
        await coach.goto(f"{server.url}/rooms/{c.room_id}")
        await member.goto(f"{server.url}/rooms/{c.room_id}")
        await in_room(coach)
        await in_room(member)

        # One tidy row: Reply, Ask a question, Like, Share and "⋯", on one line even with two likes and the coach's
        # mark; Hide, Remove and Pin are not in it but in the menu.
        on_coach = coach.locator(f"#post-{post['id']}")
        row = on_coach.locator(":scope > .post-card > .post-actions")
        await shot(coach, f"{backend}-coach-row-phone")
        assert await one_row(row)
        assert await inside(row, on_coach)
        for name in ("Reply", "Ask a question", "Like", "Share"):
            await expect(row.get_by_role("button", name=name, exact=True)).to_be_visible()
        for name in ("Hide from the circle", "Remove", "Pin as key insight", "Invite a member to reply"):
            await expect(row.get_by_role("button", name=name, exact=True)).to_be_hidden()
        await row.locator("details.more > summary").click()
        menu = row.locator(".more-menu")
        for name in ("Hide from the circle", "Remove", "Pin as key insight", "Invite a member to reply"):
            await expect(menu.get_by_role("button", name=name, exact=True)).to_be_visible()
        await expect(menu.get_by_role("button", name="Report to the coach")).to_be_hidden()
        spot = await box(menu)
        assert spot["x"] >= 0 and spot["x"] + spot["width"] <= 390, "the menu stays on the screen"
        await shot(coach, f"{backend}-coach-menu-phone")
        await coach.keyboard.press("Escape")
        await expect(menu).to_be_hidden()

        # Ask a question: its own action, its own form; the member gets it with a note, the coach without one.
        await row.get_by_role("button", name="Ask a question").click()
        await coach.get_by_label("Ask Member1 a question").fill("What made Sunday feel possible to offer?")
        await coach.locator(".reply-form").get_by_role("button", name="Ask").click()
        asked = on_coach.locator(".replies article.post.probe")
        await expect(asked).to_be_focused()
        await expect(asked.locator(".probe-note")).to_be_hidden()
        probe = member.locator(f"#post-{post['id']} .replies article.post.probe")
        await expect(probe.locator(".probe-note")).to_contain_text("A question from your coach")
        # The question's own actions stay inside its tinted card, on one row.
        probe_card = probe.locator(":scope > .post-card")
        assert await probe_card.evaluate("(el) => getComputedStyle(el).backgroundColor") != "rgba(0, 0, 0, 0)"
        assert await inside(probe_card.locator(".post-actions"), probe_card)
        assert await one_row(probe_card.locator(".post-actions"))

        # Pin with a note, typed into a small form under the post; the form goes once it is done.
        await post_action(on_coach, "Pin as key insight")
        await coach.get_by_label("A note for the circle").fill("An alternative is a kind no")
        await coach.locator(".post-form").get_by_role("button", name="Pin as key insight").click()
        await expect(member.locator(f"#pin-{post['id']} .pin-note")).to_have_text("An alternative is a kind no")
        await expect(coach.locator(".post-form")).to_have_count(0)

        # Hide with a reason: an empty reason is not sent; the member's page loses the post live.
        on_other = coach.locator(f"#post-{other['id']}")
        await post_action(on_other, "Hide from the circle")
        form = coach.locator(".post-form")
        await expect(form.get_by_label("Why hide it?")).to_be_focused()
        await form.get_by_role("button", name="Hide from the circle").click()
        assert await form.get_by_label("Why hide it?").evaluate("(el) => el.validity.valueMissing")
        await form.get_by_label("Why hide it?").fill("Please keep names out")
        await form.get_by_role("button", name="Hide from the circle").click()
        await expect(on_other.locator(".moderation-note")).to_contain_text("Please keep names out")
        await expect(coach.locator(".post-form")).to_have_count(0)
        await on_other.locator("details.more > summary").click()
        await expect(on_other.get_by_role("button", name="Hide from the circle")).to_be_hidden()
        await expect(on_other.get_by_role("button", name="Remove")).to_be_visible()
        await coach.keyboard.press("Escape")
        peer = await (await context_for(browser, server, "phone", b.token)).new_page()
        await peer.goto(f"{server.url}/rooms/{c.room_id}")
        await expect(peer.locator(f"#main-{other['id']}")).to_have_text("Hidden by the coach.")

        # Remove for good, with a reason.
        on_doomed = coach.locator(f"#post-{doomed['id']}")
        await post_action(on_doomed, "Remove")
        await coach.get_by_label("Why remove it?").fill("Phone numbers stay out of the circle")
        await coach.get_by_role("button", name="Remove for good").click()
        await expect(member.locator(f"#main-{doomed['id']}")).to_have_text("This post was deleted.")
        await shot(coach, f"{backend}-coach-actions-phone")
        await shot(member, f"{backend}-member-probe-phone")
        assert dialogs == [], dialogs
        await coach_ctx.close()
        await member_ctx.close()
        await peer.context.close()
    finally:
        await api.aclose()


async def test_reporting_again_after_a_dismissed_report_says_what_happened(
    browser: Browser, server: Server, backend: str
) -> None:
    api = server.client()
    try:
        c = await make_circle(api, members=2)
        a, b = c.members
        post = await a.post(c.room_id, "Everyone here is too soft.")
        context = await context_for(browser, server, "phone", b.token)
        page = await context.new_page()
        await page.goto(f"{server.url}/rooms/{c.room_id}")
        await expect(page.locator("#presence-names")).to_contain_text("Here now")
        mine = page.locator(f"#post-{post['id']}")

        async def report(reason: str) -> Locator:
            await post_action(mine, "Report to the coach")
            await page.get_by_label("What is wrong with this post?").fill(reason)
            await page.get_by_role("button", name="Send to your coach").click()
            done = mine.locator(".done")
            await expect(done).to_be_visible()
            return done

        # The control: a first report is thanked and reaches the coach's queue.
        await expect(await report("Unkind to the group")).to_have_text("Thank you. Your coach will look at it. Dismiss")
        queue = await c.coach.ok("GET", f"/api/v1/circles/{c.id}/reports")
        assert [r["reason"] for r in queue] == ["Unkind to the group"]
        await mine.locator(".done").get_by_role("button", name="Dismiss").click()

        # Again while it is open: the member is told the coach already has it.
        done = await report("Still unkind")
        await expect(done).to_contain_text("You already reported this post")
        await done.get_by_role("button", name="Dismiss").click()

        # The coach dismisses it; reporting again reopens it with the new words, back in the coach's queue.
        await c.coach.ok("POST", f"/api/v1/reports/{queue[0]['id']}/resolve", {"action": "dismiss"}, status=200)
        done = await report("It is still there")
        await expect(done).to_contain_text("Thank you. Your coach will look at it.")
        reopened = await c.coach.ok("GET", f"/api/v1/circles/{c.id}/reports")
        assert [r["reason"] for r in reopened] == ["It is still there"]
        await shot(page, f"{backend}-report-again")
        await context.close()
    finally:
        await api.aclose()
