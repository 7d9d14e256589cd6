"""Digests by email (docs/email.md): the member's (what they missed, at their hour in their time zone) and the
coach's (who needs her, before a working day), driven with an explicit `now`, against a real SMTP server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from app.services import coach_digest, digests, lab
from db.tables import MailMessage
from db.tables import Post as PostRow
from tests.client import ApiClient, Circle, User, make_circle, page_client
from tests.conftest import Server
from tests.smtp import MailCatcher, catcher, html_of, mail_settings, text_of

pytestmark = pytest.mark.anyio

KOLKATA = ZoneInfo("Asia/Kolkata")
PLAN = {
    "assumption": "If I say no, she will stop trusting me",
    "belief_before": 80,
    "action": "Decline the Friday shift",
    "prediction": "She will be cold",
}


@pytest.fixture
def smtp() -> Iterator[MailCatcher]:
    yield from catcher()


@pytest.fixture
def settings_env(smtp: MailCatcher) -> dict[str, str]:
    # The job is driven by the tests, with an explicit `now`.
    return mail_settings(smtp, KINDRED_DIGEST_INTERVAL="0")


async def mail_prefs(user: User, zone: str, **mail_settings: Any) -> None:
    prefs = await user.ok("GET", "/api/v1/notifications/preferences")
    prefs["timezone"] = zone
    prefs["mail"] = {**prefs["mail"], **mail_settings}
    await user.ok("PUT", "/api/v1/notifications/preferences", prefs)


async def written(address: str, kind: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await MailMessage.select().where(
        (MailMessage.to_addr == address) & (MailMessage.kind == kind)
    )
    return rows


async def lived_in(api: ApiClient, server: Server) -> tuple[Circle, dict[str, Any]]:
    """Member1's week: the coach appreciated a post and then asked about it, Member2 replied, an experiment came due,
    the coach pinned Member2's insight, two small wins (Member2's the more liked), a drop-in in two days."""
    c = await make_circle(api, members=2)
    m1, m2 = c.members
    post = await m1.post(c.room_id, "I said no to my sister and then felt awful.")
    await m1.post(c.room_id, "I left work on time", kind="win")
    win2 = await m2.post(c.room_id, "Said no to a meeting", kind="win")
    await m1.ok("PUT", f"/api/v1/posts/{win2['id']}/like")
    await c.coach.ok("PUT", f"/api/v1/posts/{win2['id']}/like")
    await c.coach.ok("PUT", f"/api/v1/posts/{post['id']}/like")
    question = await c.coach.post(c.room_id, "What did you notice?", kind="question", parent_id=post["id"])
    reply = await m2.post(c.room_id, "Same here, every time.", parent_id=post["id"])
    insight = await m2.post(c.room_id, "Buying time is a kind of no.")
    await c.coach.ok("PUT", f"/api/v1/posts/{insight['id']}/pin", {"note": "Worth keeping"})
    due = await m1.post(
        c.room_id,
        "",
        kind="experiment",
        experiment={**PLAN, "due_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()},
    )
    await PostRow.update({PostRow.experiment_due_at: datetime.now(UTC) - timedelta(minutes=5)}).where(
        PostRow.id == uuid.UUID(due["id"])
    )
    await lab.send_due(server.app.state["live"])
    starts = (datetime.now(UTC) + timedelta(days=2)).replace(second=0, microsecond=0)
    await c.coach.ok(
        "POST",
        f"/api/v1/circles/{c.id}/dropins",
        {"title": "Thursday drop-in", "starts_at": starts.isoformat(), "duration_minutes": 30},
    )
    return c, {"question": question["id"], "reply": reply["id"], "insight": insight["id"], "starts": starts}


async def test_the_digest_comes_at_the_members_hour_in_order_by_alias_and_once(
    api: ApiClient, server: Server, smtp: MailCatcher
) -> None:
    c, ids = await lived_in(api, server)
    m1, m2 = c.members
    live, settings = server.app.state["live"], server.settings
    at = datetime.now(UTC)
    # Member1 lives in Kolkata (UTC+05:30) and wants the digest at this hour there; Member2 at another hour.
    await mail_prefs(m1, "Asia/Kolkata", digest_hour=at.astimezone(KOLKATA).hour)
    await mail_prefs(m2, "UTC", digest_hour=(at.hour + 3) % 24)
    await mail_prefs(c.coach, "UTC", digest="off")
    # An hour later it is not Member1's hour any more: nothing.
    assert await digests.send_digests(live, settings, at + timedelta(hours=1)) == 0
    # Two instances at the same moment, then a later run within the hour: one digest.
    counts = await asyncio.gather(
        digests.send_digests(live, settings, at), digests.send_digests(live, settings, at + timedelta(seconds=1))
    )
    assert sum(counts) == 1
    assert await digests.send_digests(live, settings, at + timedelta(minutes=5)) == 0
    [message] = await smtp.wait_for(1)
    assert message["To"] == m1.email and len(await written(m1.email, "digest")) == 1
    assert await written(m2.email, "digest") == []
    text, html = text_of(message), html_of(message)
    order = [
        "FROM YOUR COACH",
        "EXPERIMENTS TO LOOK BACK ON",
        "REPLIES TO YOU",
        "NEW KEY INSIGHTS",
        "SMALL WINS: 2",
        "UPCOMING DROP-INS",
    ]
    places = [text.find(h) for h in order]
    assert -1 not in places and places == sorted(places), text
    # The coach's question first, then her appreciation; the more liked win first.
    assert text.find("asked you a question") < text.find("appreciated your post")
    assert text.find("Said no to a meeting") < text.find("I left work on time")
    # Links open the exact post (the question, the reply, the insight, the debrief).
    for link in (f"/posts/{ids['question']}", f"/posts/{ids['reply']}", f"/posts/{ids['insight']}", "/debrief"):
        assert link in text and link in html
    # The drop-in at its time in Kolkata.
    assert ids["starts"].astimezone(KOLKATA).strftime("%a %d %b, %H:%M") in text
    # Peers by alias only.
    assert "Member2" in text
    # (The coach's alias is her display name unless she chose another: not a secret.)
    for secret in (m2.email, m2.name, c.coach.email, m2.id, c.coach.id):
        assert secret not in text and secret not in html
    # (A long header may be folded right after its colon: its value then starts with the folding space.)
    assert message["List-Unsubscribe"].strip().startswith("<http://127.0.0.1:9/unsubscribe/")
    assert message["List-Unsubscribe"].strip().endswith(".digest>")


async def test_no_digest_when_nothing_is_new_when_visited_or_turned_off(
    api: ApiClient, server: Server, smtp: MailCatcher
) -> None:
    c = await make_circle(api, members=4)
    empty, visitor, off, control = c.members
    for member in (visitor, off, control):
        post = await member.post(c.room_id, "Something I tried")
        await c.coach.post(c.room_id, "And then?", kind="question", parent_id=post["id"])
    at = datetime.now(UTC)
    await mail_prefs(c.coach, "UTC", digest="off")
    for member in c.members:
        await mail_prefs(member, "UTC", digest_hour=at.hour)
    await mail_prefs(off, "UTC", digest="off")
    async with page_client(api, visitor) as browser:  # the visitor opens Kindred: they have seen it
        assert (await browser.get("/notifications")).status_code == 200
    await digests.send_digests(server.app.state["live"], server.settings, at)
    await smtp.wait_for(1)  # the control
    assert [m["To"] for m in smtp.messages] == [control.email]
    for member in (empty, visitor, off):
        assert await written(member.email, "digest") == []
    # The next day (nothing new since the last digest): nothing for the control either.
    assert await digests.send_digests(server.app.state["live"], server.settings, at + timedelta(days=1)) == 0


def working_day(zone: ZoneInfo) -> datetime:
    """Now, moved on by whole days until it is a working day in `zone`."""
    at = datetime.now(UTC)
    while at.astimezone(zone).weekday() >= 5:
        at += timedelta(days=1)
    return at


async def test_the_coachs_digest_before_a_working_day_from_the_pulse(
    api: ApiClient, server: Server, smtp: MailCatcher
) -> None:
    c = await make_circle(api, members=3)
    m1, m2, _ = c.members  # the third never posts: gone quiet
    waiting = await m1.post(c.room_id, "Nobody has answered this yet")
    asked = await m2.post(c.room_id, "I could not do it")
    question = await c.coach.post(c.room_id, "What stopped you?", kind="question", parent_id=asked["id"])
    due = await m2.post(
        c.room_id,
        "",
        kind="experiment",
        experiment={**PLAN, "due_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()},
    )
    await PostRow.update({PostRow.experiment_due_at: datetime.now(UTC) - timedelta(minutes=5)}).where(
        PostRow.id == uuid.UUID(due["id"])
    )
    zone = ZoneInfo("America/Chicago")
    at = working_day(zone)
    await mail_prefs(c.coach, "America/Chicago", coach_digest_hour=at.astimezone(zone).hour, digest="off")
    live, settings = server.app.state["live"], server.settings
    saturday = at + timedelta(days=(5 - at.astimezone(zone).weekday()))
    assert await coach_digest.send_coach_digests(live, settings, saturday) == 0  # no working day
    assert await coach_digest.send_coach_digests(live, settings, at + timedelta(hours=2)) == 0  # not her hour
    counts = await asyncio.gather(
        coach_digest.send_coach_digests(live, settings, at),
        coach_digest.send_coach_digests(live, settings, at + timedelta(minutes=5)),
    )
    assert sum(counts) == 1
    [message] = await smtp.wait_for(1)
    assert message["To"] == c.coach.email and message["Subject"] == "Who needs you today"
    text = text_of(message)
    places = [
        text.find(h)
        for h in ("Gone quiet:", "Your questions still open:", "Experiments past due:", "Waiting for a first reply:")
    ]
    assert -1 not in places and places == sorted(places), text
    assert "Member3 has not posted yet" in text
    assert f"/posts/{question['id']}" in text or f"/posts/{asked['id']}" in text
    assert f"/posts/{due['id']}" in text and f"/posts/{waiting['id']}" in text
    for member in c.members:
        assert member.email not in text and member.name not in text
    # Unsubscribed with the mail's own link: no coach's digest the next working day.
    link = message["List-Unsubscribe"].strip().strip("<>")
    assert link.endswith(".coach_digest")
    async with httpx.AsyncClient() as client:
        done = await client.post(
            link.replace("http://127.0.0.1:9", api.base_url), data={"List-Unsubscribe": "One-Click"}
        )
    assert done.status_code == 200
    next_day = at + timedelta(days=1)
    while next_day.astimezone(zone).weekday() >= 5:
        next_day += timedelta(days=1)
    assert await coach_digest.send_coach_digests(live, settings, next_day) == 0
