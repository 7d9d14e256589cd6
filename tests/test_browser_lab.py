"""The lab and journals in Chromium, as people use them: a member plans an experiment with the guided composer on a
phone while a peer watches the room; debriefs it from the card ("How did it go?") and the peer's card turns to
"80 → 30" live; a reflection goes to "Just my coach" from the room's composer; the coach finds it marked new in the
list of journals and answers there. Screenshots land in test-artifacts/ (lab-*.png)."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.browser import shot
from tests.client import make_circle
from tests.conftest import Server
from tests.test_browser_a11y import context_for

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


async def test_plan_and_debrief_an_experiment_on_a_phone_while_a_peer_watches(
    browser: Browser, server: Server, backend: str
) -> None:
    api = server.client()
    try:
        c = await make_circle(api, members=2)
        jackie, peer = c.members
        watcher_context = await context_for(browser, server, "desktop", peer.token)
        watcher = await watcher_context.new_page()
        await watcher.goto(f"{server.url}/rooms/{c.room_id}")
        await expect(watcher.locator("#presence-names")).to_contain_text("Here now")

        context = await context_for(browser, server, "phone", jackie.token)
        page = await context.new_page()
        await page.goto(f"{server.url}/rooms/{c.room_id}")
        await page.get_by_role("link", name="Plan an experiment, step by step").click()
        await expect(page.get_by_role("heading", name="Plan a small experiment")).to_be_visible()
        await page.get_by_label("What do you expect will happen if you do the thing you avoid?").fill(
            "If I say no, she will stop trusting me"
        )
        await page.get_by_label("Right now, how true does it feel?").fill("80")
        await expect(page.locator("#belief-value")).to_have_text("80")
        await page.get_by_label("What will you do, when, where, and with whom?").fill(
            "On Tuesday, decline the Friday extra shift, kindly and briefly"
        )
        await page.get_by_label("If the assumption were true, what exactly would happen?").fill(
            "She will be cold with me all week"
        )
        await page.get_by_label("What do you usually do to feel safe").fill("over-explaining\noffering to do it later")
        await page.get_by_label("In 3 days").check()
        await shot(page, f"{backend}-lab-plan-phone")
        await page.get_by_role("button", name="Plan it").click()

        card = page.locator(".experiment-card")
        await expect(card.locator('[aria-current="step"]')).to_have_text("Planned")
        await expect(card).to_contain_text("If I say no, she will stop trusting me")
        await expect(card).to_contain_text("over-explaining")
        # The peer's open room got it live, without "How did it go?" (that is its author's).
        watched = watcher.locator(".experiment-card")
        await expect(watched).to_contain_text("If I say no, she will stop trusting me")
        await expect(watched.get_by_role("link", name="How did it go?")).to_be_hidden()
        await shot(page, f"{backend}-lab-card-phone")

        await card.get_by_role("link", name="How did it go?").click()
        await expect(page.get_by_role("heading", name="How did it go?")).to_be_visible()
        await page.get_by_label("Tell it plainly, as it happened.").fill("She said fine, and asked about my weekend")
        await page.get_by_label("No", exact=True).check()
        await page.get_by_label("how true does it feel now?").fill("30")
        await expect(page.locator("#after-value")).to_have_text("30")
        await page.get_by_label("What do you know now that you didn't before?").fill(
            "A kind no kept the relationship; the coldness was my prediction"
        )
        await shot(page, f"{backend}-lab-debrief-phone")
        await page.get_by_role("button", name="Save my debrief").click()

        shift = page.locator(".experiment-card .belief-shift")
        await expect(shift).to_contain_text("80")
        await expect(shift.locator(".after")).to_have_text("30")
        await expect(page.locator(".experiment-card [aria-current='step']")).to_have_text("Debriefed")
        # The peer's card turned too, live (experiment.changed), without a reload.
        await expect(watched.locator(".belief-shift .after")).to_have_text("30")
        await expect(watched.locator("[aria-current='step']")).to_have_text("Debriefed")
        await shot(page, f"{backend}-lab-debriefed-phone")
        await shot(watcher, f"{backend}-lab-debriefed-peer")

        # What was learned is on the circle's lab page.
        await watcher.goto(f"{server.url}/circles/{c.id}/lab")
        await expect(watcher.locator(".learnings")).to_contain_text("the coldness was my prediction")
        await shot(watcher, f"{backend}-lab-circle")
        await context.close()
        await watcher_context.close()
    finally:
        await api.aclose()


async def test_just_my_coach_from_the_room_and_the_coach_answers_in_the_journal(
    browser: Browser, server: Server, backend: str
) -> None:
    api = server.client()
    try:
        c = await make_circle(api, members=2)
        jackie = c.members[0]
        context = await context_for(browser, server, "phone", jackie.token)
        page = await context.new_page()
        await page.goto(f"{server.url}/rooms/{c.room_id}")
        await expect(page.locator("#presence-names")).to_contain_text("Here now")
        await page.get_by_label("Your post").fill("Not ready to say this to everyone: I'm scared of being a burden.")
        await page.get_by_label("Who sees it").select_option("journal")
        await page.get_by_role("button", name="Post").click()
        await expect(page.locator("#composer-status")).to_contain_text("Sent to your journal")
        # The room's list did not get it; the control: the room shows its empty state still.
        await expect(page.locator("#empty-room")).to_be_visible()
        await expect(page.locator("#threads")).not_to_contain_text("scared of being a burden")
        await shot(page, f"{backend}-lab-just-my-coach-phone")

        coach_context = await context_for(browser, server, "desktop", c.coach.token)
        coach = await coach_context.new_page()
        await coach.goto(f"{server.url}/circles/{c.id}/journals")
        line = coach.locator(".journal-line.unread")
        await expect(line).to_contain_text("Member1")
        await expect(line).to_contain_text("1 new")
        await shot(coach, f"{backend}-lab-journals-coach")
        await line.get_by_role("link").click()
        await expect(coach.get_by_role("heading", name="Member1’s journal")).to_be_visible()
        await expect(coach.locator(".private-note")).to_contain_text("Member1 and you")
        post = coach.locator("article.post").filter(has_text="scared of being a burden")
        await post.get_by_role("button", name="Ask a question").click()
        await coach.locator(".reply-form textarea").fill("What would tell you that you are not a burden?")
        await coach.locator(".reply-form").get_by_role("button", name="Ask").click()
        await expect(post.locator(":scope > .replies")).to_contain_text("not a burden?")

        # The member opens My journal from the room and finds the coach's question there.
        await page.get_by_role("link", name="My journal").click()
        await expect(page.get_by_role("heading", name="My journal")).to_be_visible()
        await expect(page.locator(".private-note")).to_contain_text("Only you and your coach can read this")
        await expect(page.locator(".probe")).to_contain_text("not a burden?")
        await shot(page, f"{backend}-lab-journal-phone")
        await coach_context.close()
        await context.close()
    finally:
        await api.aclose()
