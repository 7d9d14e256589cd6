"""axe-core on the main pages, in Chromium, at desktop (1280×900) and phone (390×844) sizes, as a member, as the
coach and signed out: no serious or critical violation anywhere, one h1 per page, nothing wider than the screen."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright._impl._api_structures import ViewportSize
from playwright.async_api import Browser, BrowserContext, Page, expect

from app import mail
from tests.axe import serious
from tests.browser import shot
from tests.client import PASSWORD, ApiClient, Circle, make_circle
from tests.conftest import Server

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

SIZES: dict[str, ViewportSize] = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
# KINDRED_SCREENSHOTS=1 refreshes docs/screenshots/ from this walk (light scheme): <page>-<role>-<size>.png.
DOC_SHOTS = os.environ.get("KINDRED_SCREENSHOTS") == "1"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
DOC_PAGES = {
    "member": {"home", "circle", "room", "dropin-live", "notifications", "lab", "my-lab", "plan", "debrief", "journal"},
    "coach": {"circle", "room", "dropin-live", "moderation", "lab", "journals", "wins"},
    "signed-out": {"join"},
}


async def context_for(
    browser: Browser, server: Server, size: str, token: str | None = None, scheme: str = "light"
) -> BrowserContext:
    phone = size == "phone"
    context = await browser.new_context(
        viewport=SIZES[size],
        is_mobile=phone,
        has_touch=phone,
        color_scheme="dark" if scheme == "dark" else "light",
    )
    if token:
        await context.add_cookies([{"name": "kindred_session", "value": token, "url": server.url}])
    return context


async def a_lived_in_circle(api: ApiClient) -> tuple[Circle, dict[str, Any]]:
    """A circle with something of everything the pages show: each kind of post, a coach's question, a like, a pin
    with a note, a hidden post, an open report, notifications, and drop-ins scheduled, live and ended."""
    c = await make_circle(api, members=2)
    m1, m2 = c.members
    coach = c.coach
    experiment = await m1.post(c.room_id, "I will ask for a day to think before saying yes.", kind="experiment")
    win = await m1.post(c.room_id, "I said **no** to an extra project, and the sky did not fall.", kind="win")
    await m2.post(c.room_id, "Why is it so hard to say no to family?", kind="question")
    await m2.post(c.room_id, "Some days I notice the yes before I say it.")
    hidden = await m2.post(c.room_id, "My manager Jo at Acme is impossible.")
    question = await coach.post(
        c.room_id, "What did you tell yourself just before you said it?", kind="question", parent_id=win["id"]
    )
    await m1.post(c.room_id, "That I was allowed to.", parent_id=question["id"])
    await coach.ok("PUT", f"/api/v1/posts/{win['id']}/like")
    await coach.ok("PUT", f"/api/v1/posts/{experiment['id']}/pin", {"note": "Buying time is a kind of no"})
    await m1.ok("PUT", f"/api/v1/posts/{experiment['id']}/like")
    await coach.ok("PUT", f"/api/v1/posts/{hidden['id']}/hidden", {"reason": "Please keep names out"})
    await m2.ok("POST", f"/api/v1/posts/{win['id']}/reports", {"reason": "Just testing the queue"})

    soon = datetime.now(UTC) + timedelta(days=2)
    scheduled = await coach.ok(
        "POST",
        f"/api/v1/circles/{c.id}/dropins",
        {"title": "Thursday drop-in", "starts_at": soon.isoformat(), "duration_minutes": 30, "agenda": "Bring one."},
    )
    live = await coach.ok(
        "POST",
        f"/api/v1/circles/{c.id}/dropins",
        {"title": "Monday check-in", "starts_at": (soon + timedelta(days=1)).isoformat(), "duration_minutes": 30},
    )
    ended = await coach.ok(
        "POST",
        f"/api/v1/circles/{c.id}/dropins",
        {"title": "Last week's drop-in", "starts_at": (soon + timedelta(days=2)).isoformat(), "duration_minutes": 30},
    )
    await coach.ok("POST", f"/api/v1/dropins/{ended['id']}/start", status=200)
    await coach.post(ended["room_id"], "What is one no you said this week?", kind="question")
    await m1.post(ended["room_id"], "I turned down a meeting.", kind="win")
    await coach.ok("POST", f"/api/v1/dropins/{ended['id']}/end", status=200)
    await coach.ok("POST", f"/api/v1/dropins/{live['id']}/start", status=200)
    await m2.ok("PUT", f"/api/v1/dropins/{live['id']}/hand")
    await m1.post(live["room_id"], "Here, and a little nervous.")
    # The lab: an open experiment and a debriefed one; a private word in the member's journal.
    plan = {
        "assumption": "If I say no, my sister will stop calling",
        "belief_before": 80,
        "action": "Tell her I can't host this year",
        "prediction": "She won't call for a month",
        "safety_behaviours": ["over-explaining"],
    }
    open_experiment = await m1.post(c.room_id, "", kind="experiment", experiment=plan)
    done = await m1.post(c.room_id, "", kind="experiment", experiment={**plan, "assumption": "Rest is lazy"})
    debrief = {"state": "debriefed", "outcome": "Calm", "matched_prediction": "no", "belief_after": 30}
    await m1.ok("PATCH", f"/api/v1/posts/{done['id']}/experiment", {**debrief, "learning": "Rest is allowed"})
    me = await m1.ok("GET", "/api/v1/me")
    mid = next(m["membership_id"] for m in me["memberships"] if m["circle_id"] == c.id)
    journal = await m1.ok("GET", f"/api/v1/memberships/{mid}/journal")
    await m1.post(journal["id"], "Not ready to say this in the room yet.")
    await m1.post(c.room_id, "The anniversary is this week.", content_note="grief", reply_wish="listen")
    # The page an unsubscribe link in a digest opens (signed out, as from a mail client).
    from app.services import mailprefs

    unsubscribe = await mailprefs.unsubscribe_url(uuid.UUID(m1.id), "digest", "")
    # Mail (issue 19): a reset link and an address-change link, read from the queue (no SMTP server here: the mail
    # is logged and kept with its body).
    await api.http.post("/api/v1/auth/reset", json={"email": m2.email})
    await m2.ok("POST", "/api/v1/me/email", {"email": f"new-{m2.email}", "password": PASSWORD}, status=202)
    links = await mail_links({"reset", "email_confirm"})
    return c, {
        "unsubscribe": unsubscribe,
        "reset_link": links["reset"],
        "email_link": links["email_confirm"],
        "open_experiment": open_experiment["id"],
        "journal_room": journal["id"],
        "win": win["id"],
        "scheduled_room": scheduled["room_id"],
        "live_room": live["room_id"],
        "ended_room": ended["room_id"],
    }


async def mail_links(kinds: set[str]) -> dict[str, str]:
    """The path of the link in the newest queued mail of each kind, once each is there (written after the 202)."""
    found: dict[str, str] = {}
    async with asyncio.timeout(15):
        while set(found) != kinds:
            for row in await mail.recent(10):
                hit = re.search(r"https?://[^/\s]+(/\S+)", row["body_text"])
                if row["kind"] in kinds and hit and row["kind"] not in found:
                    found[row["kind"]] = hit.group(1)
            await asyncio.sleep(0.05)
    return found


def doc_name(c: Circle, ids: dict[str, Any], path: str) -> str | None:
    names = {
        "/": "home",
        f"/circles/{c.id}": "circle",
        f"/rooms/{c.room_id}": "room",
        f"/rooms/{ids['live_room']}": "dropin-live",
        "/notifications": "notifications",
        f"/circles/{c.id}/moderation": "moderation",
        f"/join/{c.invite}": "join",
        f"/circles/{c.id}/lab": "lab",
        f"/circles/{c.id}/lab/mine": "my-lab",
        f"/circles/{c.id}/wins": "wins",
        f"/circles/{c.id}/journals": "journals",
        f"/rooms/{c.room_id}/experiments/new": "plan",
        f"/posts/{ids['open_experiment']}/debrief": "debrief",
        f"/rooms/{ids['journal_room']}": "journal",
    }
    return names.get(path)


def pages_for(c: Circle, ids: dict[str, Any], role: str) -> list[str]:
    if role == "signed-out":
        return [
            "/",
            "/signin",
            "/signup",
            f"/join/{c.invite}",
            "/reset",
            ids["reset_link"],
            "/reset/not-a-token",
            ids["email_link"],
            "/email/confirm/not-a-token",
            ids["unsubscribe"],
        ]
    common = [
        "/",
        f"/circles/{c.id}",
        f"/rooms/{c.room_id}",
        f"/posts/{ids['win']}",
        f"/rooms/{ids['scheduled_room']}",
        f"/rooms/{ids['live_room']}",
        f"/rooms/{ids['ended_room']}",
        f"/circles/{c.id}/insights",
        "/notifications",
        "/settings/notifications",
        "/account",
        f"/circles/{c.id}/lab",
        f"/circles/{c.id}/wins",
        f"/circles/{c.id}/search?q=my",
        f"/circles/{c.id}/search?q=zzzqqq",
        f"/rooms/{c.room_id}/experiments/new",
        f"/rooms/{ids['journal_room']}",
        f"/posts/{ids['open_experiment']}",
        f"/circles/{c.id}/care",
        f"/circles/{c.id}/about",
    ]
    if role == "coach":
        return [
            *common,
            f"/circles/{c.id}/moderation",
            "/circles/new",
            f"/circles/{c.id}/journals",
            f"/circles/{c.id}/pulse",
        ]
    return [
        *common,
        f"/join/{c.invite}",
        f"/circles/{c.id}/lab/mine",
        f"/posts/{ids['open_experiment']}/debrief",
    ]


async def check_page(page: Page, server: Server, path: str) -> list[str]:
    await page.goto(server.url + path)
    in_room = path.startswith(("/rooms/", "/posts/")) and not path.endswith(("/experiments/new", "/debrief"))
    if in_room:
        await expect(page.locator("#presence-names")).not_to_have_text("Connecting…")
    problems = [f"{path}: {line}" for line in await serious(page)]
    h1 = await page.locator("h1").count()
    if h1 != 1:
        problems.append(f"{path}: {h1} h1 elements, not one")
    overflow = await page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    if overflow > 0:
        problems.append(f"{path}: the page is {overflow}px wider than the screen")
    return problems


@pytest.mark.parametrize(("size", "scheme"), [("desktop", "light"), ("phone", "light"), ("phone", "dark")])
async def test_no_serious_accessibility_violations_on_the_main_pages(
    browser: Browser, server: Server, backend: str, size: str, scheme: str
) -> None:
    api = server.client()
    try:
        c, ids = await a_lived_in_circle(api)
        problems: list[str] = []
        for role, token in (("member", c.members[0].token), ("coach", c.coach.token), ("signed-out", None)):
            context = await context_for(browser, server, size, token, scheme)
            page = await context.new_page()
            for path in pages_for(c, ids, role):
                problems += [f"{role} {size} {scheme} {p}" for p in await check_page(page, server, path)]
                name = doc_name(c, ids, path)
                if DOC_SHOTS and scheme == "light" and backend == "sqlite" and name in DOC_PAGES[role]:
                    await page.screenshot(path=str(DOCS / f"{name}-{role}-{size}.png"))
            if role != "signed-out":
                await page.goto(f"{server.url}/rooms/{c.room_id}")
                await expect(page.locator("#presence-names")).to_contain_text("Here now")
                await shot(page, f"{backend}-a11y-{role}-{size}-{scheme}-room")
            await context.close()
    finally:
        await api.aclose()
    assert problems == [], "\n".join(problems)


async def test_focus_follows_what_you_send_and_the_composer_shows_its_focus(
    browser: Browser, server: Server, backend: str
) -> None:
    api = server.client()
    try:
        c = await make_circle(api, members=2)
        first = await c.members[1].post(c.room_id, "Anyone else find Mondays hardest?")
        context = await context_for(browser, server, "phone", c.members[0].token)
        page = await context.new_page()
        await page.goto(f"{server.url}/rooms/{c.room_id}")
        await expect(page.locator("#presence-names")).to_contain_text("Here now")

        # The composer's card carries a visible focus ring while its text box has the focus.
        composer = page.locator("#composer")
        assert await composer.evaluate("(el) => getComputedStyle(el).outlineStyle") == "none"
        await page.get_by_label("Your post").focus()
        await expect(composer).to_have_css("outline-style", "solid")
        assert await composer.evaluate("(el) => parseFloat(getComputedStyle(el).outlineWidth)") >= 2

        # Sent from the keyboard: focus moves to the new post, and a polite live region says so.
        await page.keyboard.type("Mondays, yes. I plan one small no for each.")
        await page.keyboard.press("Control+Enter")
        mine = page.locator("article.post", has_text="one small no for each")
        await expect(mine).to_be_focused()
        await expect(page.locator("#announce")).to_have_text("Your post is shared with the circle.")
        await expect(page.locator("#announce")).to_have_attribute("aria-live", "polite")

        # A reply: focus lands on the reply itself, inside its thread.
        theirs = page.locator(f"#post-{first['id']}")
        await theirs.get_by_role("button", name="Reply").first.click()
        await page.get_by_placeholder("Reply to Member2…").fill("Same here.")
        await page.locator(".reply-form").get_by_role("button", name="Reply").click()
        reply = theirs.locator(".replies article.post", has_text="Same here.")
        await expect(reply).to_be_focused()
        await expect(page.locator("#announce")).to_have_text("Your reply is posted.")
        await shot(page, f"{backend}-focus-after-reply-phone")
        await context.close()
    finally:
        await api.aclose()
