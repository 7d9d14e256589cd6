"""Coach gestures in Chromium: the coach likes and pins in one or two clicks and the member's page changes live;
mention autocomplete; sharing, within the circle and into another; the Key insights board; a probing question and
the thread page it leads to; drawing a member in."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, expect

from tests.browser import post_action, shot
from tests.client import make_circle
from tests.conftest import Server
from tests.test_browser_live import open_room, signed_in

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

NOTE = "“Buying time” — a kind of no ✓"


async def test_coach_gestures_land_live_on_the_members_page(browser: Browser, server: Server, backend: str) -> None:
    api = server.client()
    try:
        c = await make_circle(api, members=2)
        a = c.members[0]
        post = await a.post(
            c.room_id, "I asked for a day to think instead of saying yes on the spot.", kind="experiment"
        )
        await c.coach.ok("POST", f"/api/v1/circles/{c.id}/rooms", {"name": "Wins"})

        coach_ctx = await signed_in(browser, server, c.coach.token)
        member_ctx = await signed_in(browser, server, a.token)
        coach = await open_room(coach_ctx, server, c)
        member = await open_room(member_ctx, server, c)
        on_coach = coach.locator(f"#post-{post['id']}")
        on_member = member.locator(f"#post-{post['id']}")

        # One click: the coach's Like, marked as the coach's on the member's page.
        await on_coach.get_by_role("button", name="Like").click()
        await expect(on_coach.get_by_role("button", name="Like")).to_have_attribute("aria-pressed", "true")
        await expect(on_member.locator(".coach-liked")).to_have_text("Your coach appreciated this")
        await expect(on_member.locator(".likes .count")).to_have_text("1 like")
        await expect(on_member.get_by_role("button", name="Like")).to_have_attribute("aria-pressed", "false")

        # Pin as key insight from the post's menu, with a note typed into a small form under the post (beyond
        # Latin-1: it arrives as typed).
        await post_action(on_coach, "Pin as key insight")
        await coach.get_by_label("A note for the circle").fill(NOTE)
        await coach.locator(".post-form").get_by_role("button", name="Pin as key insight").click()
        await expect(on_member.locator(".badge.insight")).to_have_text("Key insight")
        await expect(on_member.locator(".pin-note")).to_have_text(NOTE)
        await expect(on_coach.locator(".pin-note")).to_have_text(NOTE)
        await expect(on_member.get_by_role("button", name="Pin as key insight")).to_be_hidden()
        await expect(coach.locator(".post-form")).to_have_count(0)
        await on_coach.locator("details.more > summary").click()
        await expect(on_coach.get_by_role("button", name="Unpin")).to_be_visible()
        await expect(on_coach.get_by_role("button", name="Pin as key insight")).to_be_hidden()
        await on_coach.locator("details.more > summary").click()

        # Sharing it to another room of the circle.
        await on_coach.get_by_role("button", name="Share").click()
        await coach.get_by_label("Share to").select_option(label="Wins")
        await coach.locator(".share-form").get_by_label("Note").fill("Worth trying")
        await coach.locator(".share-form").get_by_role("button", name="Share").click()
        await expect(on_coach.locator(".done")).to_contain_text("Shared to Wins")
        await coach.get_by_role("link", name="Wins", exact=True).click()
        await expect(coach.locator(".shared-from").first).to_contain_text("Shared from Member1’s post: Worth trying")
        await coach.go_back()
        await expect(on_coach).to_be_visible()

        # The member takes back nothing, but replies with an @mention picked from the autocomplete.
        await on_member.get_by_role("button", name="Reply").click()
        reply_box = member.get_by_placeholder("Reply to Member1…")
        await reply_box.press_sequentially("Thanks @Coa")
        await expect(member.locator(".mention-list [role=option]").first).to_have_text("@Coach Dana")
        await reply_box.press("Enter")
        await expect(reply_box).to_have_value("Thanks @Coach Dana ")
        await member.locator(".reply-form").get_by_role("button", name="Reply").click()
        await expect(on_coach.locator(".replies .mention")).to_have_text("@Coach Dana")

        await shot(coach, f"{backend}-gestures-coach")
        await shot(member, f"{backend}-gestures-member")

        # The Key insights board lists the pin.
        await member.goto(f"{server.url}/circles/{c.id}/insights")
        await expect(member.locator(".insight-card")).to_have_count(1)
        await expect(member.locator(".insight-card .pin-note")).to_have_text(f"“{NOTE}”")
        await shot(member, f"{backend}-insights")
        await coach_ctx.close()
        await member_ctx.close()
    finally:
        await api.aclose()


async def test_a_probing_question_lands_live_and_leads_to_a_whole_thread(
    browser: Browser, server: Server, backend: str
) -> None:
    api = server.client()
    try:
        c = await make_circle(api, members=2)
        a = c.members[0]
        post = await a.post(c.room_id, "I said yes to the Friday shift again.")
        await c.coach.ok("PUT", f"/api/v1/posts/{post['id']}/pin", {"note": "The pattern, named"})
        coach_ctx = await signed_in(browser, server, c.coach.token)
        member_ctx = await signed_in(browser, server, a.token)
        coach = await open_room(coach_ctx, server, c)
        member = await open_room(member_ctx, server, c)
        await expect(member.locator("#unread-count")).to_have_text("1")  # the pin

        # The coach replies as a probing question: two clicks and a sentence.
        on_coach = coach.locator(f"#post-{post['id']}")
        await on_coach.get_by_role("button", name="Ask a question").click()
        await coach.get_by_label("Ask Member1 a question").fill("What would “not yet” have sounded like?")
        await coach.locator(".reply-form").get_by_role("button", name="Ask").click()
        question = coach.locator(f"#replies-{post['id']} article.post")
        await expect(question).to_have_class(re.compile(r"\bprobe\b"))

        # On the member's page it arrives live, highlighted, with an invitation to answer; the bell counts it.
        probe = member.locator(f"#replies-{post['id']} article.post.probe")
        await expect(probe.locator(".probe-note")).to_contain_text("answer when you are ready")
        await expect(probe.locator(".body")).to_have_text("What would “not yet” have sounded like?")
        await expect(member.locator("#unread-count")).to_have_text("2")
        await probe.get_by_role("button", name="Like").click()
        await expect(probe.get_by_role("button", name="Like")).to_have_attribute("aria-pressed", "true")
        await shot(member, f"{backend}-probe")

        # The notification leads to the thread page, which is the room's thread in full: the reader's own like,
        # the pin and its note, and @mention autocomplete in the reply.
        await member.goto(f"{server.url}/notifications")
        await member.get_by_role("link", name="Coach Dana asked you a question about your post").click()
        await expect(member.locator("#threads.single")).to_be_visible()
        probe = member.locator(f"#replies-{post['id']} article.post.probe")
        await expect(probe).to_have_class(re.compile(r"\bfocused\b"))
        await expect(probe.get_by_role("button", name="Like")).to_have_attribute("aria-pressed", "true")
        await expect(probe.locator(".coach-liked")).to_have_count(0)
        root = member.locator(f"#post-{post['id']}")
        await expect(root.locator(".pin-note").first).to_have_text("The pattern, named")
        await expect(root.get_by_role("button", name="Like").first).to_have_attribute("aria-pressed", "false")
        await probe.get_by_role("button", name="Reply").click()
        answer = member.get_by_placeholder("Reply to Coach Dana…")
        await answer.press_sequentially("@Coa")
        await expect(member.locator(".mention-list [role=option]").first).to_have_text("@Coach Dana")
        await answer.press("Enter")
        await answer.press_sequentially("it would have sounded calm.")
        await member.locator(".reply-form").get_by_role("button", name="Reply").click()
        await expect(coach.locator(f"#replies-{post['id']} .mention")).to_have_text("@Coach Dana")
        await shot(member, f"{backend}-thread-page")
        await coach_ctx.close()
        await member_ctx.close()
    finally:
        await api.aclose()


async def test_drawing_a_member_in_and_sharing_into_another_circle(
    browser: Browser, server: Server, backend: str
) -> None:
    api = server.client()
    try:
        c = await make_circle(api, members=2)
        a, b = c.members
        post = await a.post(c.room_id, "Thanks @Member2: asking for a day to think worked.")
        second = await c.coach.ok("POST", "/api/v1/circles", {"name": "Growth", "commonality": "Fixed to growth"})
        second_room = (await c.coach.ok("GET", f"/api/v1/circles/{second['id']}/rooms"))[0]
        invite = await c.coach.ok("POST", f"/api/v1/circles/{second['id']}/invites", {})
        # In the other circle someone else entirely goes by Member2.
        namesake = await api.signup()
        await namesake.ok("POST", f"/api/v1/invites/{invite['code']}/join", {"alias": "Member2"})

        coach_ctx = await signed_in(browser, server, c.coach.token)
        drawn_ctx = await signed_in(browser, server, b.token)
        elsewhere_ctx = await signed_in(browser, server, namesake.token)
        coach = await open_room(coach_ctx, server, c)
        drawn = await drawn_ctx.new_page()
        await drawn.goto(f"{server.url}/circles/{c.id}")
        await expect(drawn.locator("#unread-count")).to_have_text("1")  # the mention
        elsewhere = await elsewhere_ctx.new_page()
        await elsewhere.goto(f"{server.url}/rooms/{second_room['id']}")
        await expect(elsewhere.locator("#presence-names")).to_contain_text("Here now")

        # "Invite a member to reply": the member picked is notified, live, wherever they are.
        on_coach = coach.locator(f"#post-{post['id']}")
        await post_action(on_coach, "Invite a member to reply")
        await coach.get_by_label("Invite a member to reply").select_option(label="Member2")
        await coach.get_by_role("button", name="Notify them").click()
        await expect(on_coach.locator(".done")).to_contain_text("Member2 was notified.")
        await expect(drawn.locator("#unread-count")).to_have_text("2")
        await expect(drawn.locator("#bell")).to_have_attribute("aria-label", "Notifications: 2 unread")

        # Shared into the coach's other circle: there it is from "a member of another circle", and its @Member2
        # is text, not a link to the namesake, who is not notified.
        await on_coach.locator(".done").get_by_role("button", name="Dismiss").click()
        await on_coach.get_by_role("button", name="Share").click()
        share = coach.locator(".share-form")
        await expect(share.locator(".hint")).to_contain_text("a member of another circle")
        await share.get_by_label("Share to").select_option(value=second_room["id"])
        await share.get_by_label("Note").fill("From another circle, worth a look")
        await share.get_by_role("button", name="Share").click()
        await expect(on_coach.locator(".done")).to_contain_text("Shared to General")
        arrived = elsewhere.locator("article.post").first
        await expect(arrived.locator(".shared-from")).to_have_text(
            "Shared from a member of another circle: From another circle, worth a look"
        )
        await expect(arrived.locator(".body")).to_have_text("Thanks @Member2: asking for a day to think worked.")
        await expect(arrived.locator(".mention")).to_have_count(0)
        await expect(arrived.locator(".post-head .alias")).to_have_text("Coach Dana")
        await expect(elsewhere.locator("#unread-count")).to_be_hidden()
        await shot(elsewhere, f"{backend}-shared-across")
        for ctx in (coach_ctx, drawn_ctx, elsewhere_ctx):
            await ctx.close()
    finally:
        await api.aclose()
