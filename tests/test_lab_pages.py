"""The lab and journals in the pages, over HTTP on both backends: the guided composer (and its refusals, which write
nothing), the debrief from the card and from the due notification, the circle's lab page, a member's own lab, the
small wins wall, "My journal", the composer's "Just my coach", and the coach's list of journals with what is new.

The browser tests (tests/test_browser_lab.py) drive the same flows in Chromium; these check every rule and refusal."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from db.tables import Post as PostRow
from tests.client import ApiClient, User, make_circle, page_client
from tests.conftest import Server

pytestmark = pytest.mark.anyio

FORM = {
    "assumption": "If I say no, she will stop trusting me",
    "belief_before": "80",
    "action": "Decline the Friday extra shift, kindly and briefly",
    "prediction": "She will be cold with me all week",
    "prediction_confidence": "70",
    "safety_behaviours": "over-explaining\n\n  offering to do it next time  \n",
    "check_back": "7",
    "body": "This one scares me a little.",
}


async def membership_id(user: User, circle_id: str) -> str:
    me = await user.ok("GET", "/api/v1/me")
    return str(next(m["membership_id"] for m in me["memberships"] if m["circle_id"] == circle_id))


async def journal_of(user: User, circle_id: str) -> dict[str, Any]:
    result: dict[str, Any] = await user.ok("GET", f"/api/v1/memberships/{await membership_id(user, circle_id)}/journal")
    return result


async def plan(browser: httpx.AsyncClient, room_id: str, **changes: str) -> httpx.Response:
    return await browser.post(f"/rooms/{room_id}/experiments", data={**FORM, **changes})


async def test_the_guided_composer_plans_an_experiment_in_the_room_or_just_for_the_coach(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    jackie, peer = c.members
    async with page_client(api, jackie) as browser:
        form = await browser.get(f"/rooms/{c.room_id}/experiments/new")
        assert form.status_code == 200
        for step in ("The old assumption", "How true it feels", "The small action", "What the old assumption predicts"):
            assert step in form.text
        assert 'type="range"' in form.text and "Just my coach" in form.text
        before = datetime.now(UTC)
        made = await plan(browser, c.room_id)
        assert made.status_code == 303, made.text
        post_id = made.headers["location"].rsplit("/", 1)[1]
        thread = await browser.get(made.headers["location"])
        assert "80" in thread.text and "How did it go?" in thread.text and 'id="experiment-' in thread.text
    post = await peer.ok("GET", f"/api/v1/posts/{post_id}")
    record = post["experiment"]
    assert record["state"] == "planned" and record["belief_before"] == 80 and record["prediction_confidence"] == 70
    assert record["safety_behaviours"] == ["over-explaining", "offering to do it next time"]
    due = datetime.fromisoformat(record["due_at"])
    assert timedelta(days=6, hours=23) < due - before < timedelta(days=7, minutes=5)
    assert post["body"] == "This one scares me a little." and post["room_id"] == c.room_id

    # "Just my coach": the same plan goes to the member's journal; the room does not get it.
    async with page_client(api, jackie) as browser:
        made = await plan(browser, c.room_id, where="journal", assumption="If I rest, I am lazy")
        assert made.status_code == 303, made.text
    private_id = made.headers["location"].rsplit("/", 1)[1]
    journal = await journal_of(jackie, c.id)
    assert (await jackie.ok("GET", f"/api/v1/posts/{private_id}"))["room_id"] == journal["id"]
    assert (await peer.call("GET", f"/api/v1/posts/{private_id}")).status_code == 404
    listed = await peer.ok("GET", f"/api/v1/circles/{c.id}/experiments")
    assert [p["id"] for p in listed["items"]] == [post_id], "the peer sees the room's experiment, not the journal's"

    # A date the member picks: 18:00 of that day in their own zone (the browser says it is 60 minutes behind UTC).
    day = (datetime.now(UTC) + timedelta(days=10)).date()
    async with page_client(api, jackie) as browser:
        made = await plan(browser, c.room_id, check_back="date", check_back_date=day.isoformat(), tz_offset="60")
        assert made.status_code == 303, made.text
    dated = await jackie.ok("GET", f"/api/v1/posts/{made.headers['location'].rsplit('/', 1)[1]}")
    assert datetime.fromisoformat(dated["experiment"]["due_at"]) == datetime.combine(
        day, datetime.min.time(), tzinfo=UTC
    ) + timedelta(hours=19)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"belief_before": "150"}, "belief_before"),
        ({"belief_before": "very"}, "belief_before"),
        ({"assumption": "   "}, "assumption"),
        ({"action": "x" * 1001}, "action"),
        ({"prediction": ""}, "prediction"),
        ({"safety_behaviours": "\n".join(f"thing {i}" for i in range(11))}, "precautions"),
        ({"safety_behaviours": "x" * 201}, "safety_behaviours"),
        ({"check_back": "someday"}, "check back"),
        ({"check_back": "date", "check_back_date": "next tuesday"}, "day"),
        ({"check_back": "date", "check_back_date": "2020-01-01"}, "due_at"),
        ({"check_back": "date", "check_back_date": "2099-01-01"}, "due_at"),
        ({"check_back": "date", "check_back_date": "2026-12-20", "tz_offset": "9999"}, "tz_offset"),
        ({"where": "somewhere-else"}, "where"),
    ],
)
async def test_a_refused_plan_says_what_to_fix_keeps_what_was_typed_and_writes_nothing(
    api: ApiClient, changes: dict[str, str], named: str
) -> None:
    c = await make_circle(api, members=1)
    (jackie,) = c.members
    async with page_client(api, jackie) as browser:
        refused = await plan(browser, c.room_id, **changes)
    assert refused.status_code == 400, refused.text
    alert = re.search(r'<p class="error" role="alert"[^>]*>(.*?)</p>', refused.text, re.S)
    assert alert and named in alert.group(1), (named, alert and alert.group(1))
    assert "This one scares me a little." in refused.text, "what was typed is still there"
    assert (await jackie.ok("GET", f"/api/v1/circles/{c.id}/experiments"))["items"] == []
    # The control: the same form without the fault is accepted.
    async with page_client(api, jackie) as browser:
        assert (await plan(browser, c.room_id)).status_code == 303


async def test_the_debrief_from_the_card_and_from_the_due_notification(api: ApiClient, server: Server) -> None:
    from app.services import lab

    c = await make_circle(api, members=2)
    jackie, peer = c.members
    async with page_client(api, jackie) as browser:
        made = await plan(browser, c.room_id)
    post_id = made.headers["location"].rsplit("/", 1)[1]
    # It comes due: the reminder opens the debrief.
    await PostRow.update({PostRow.experiment_due_at: datetime.now(UTC) - timedelta(minutes=1)}).where(
        PostRow.id == uuid.UUID(post_id)
    )
    assert await lab.send_due(server.app.state["live"]) == 1
    (note,) = await jackie.ok("GET", "/api/v1/notifications")
    async with page_client(api, jackie) as browser:
        opened = await browser.get(f"/notifications/{note['id']}/open")
        assert opened.status_code == 303 and opened.headers["location"] == f"/posts/{post_id}/debrief"
        page = await browser.get(f"/posts/{post_id}/debrief")
        assert page.status_code == 200 and "How did it go?" in page.text and "If I say no" in page.text
        # Only its author debriefs it.
        async with page_client(api, peer) as other:
            assert (await other.get(f"/posts/{post_id}/debrief")).status_code == 403
            refused = await other.post(f"/posts/{post_id}/debrief", data={"state": "tried"})
            assert refused.status_code == 403
        # "I've tried it, more later".
        tried = await browser.post(
            f"/posts/{post_id}/debrief", data={"state": "tried", "outcome": "Said it on Tuesday"}
        )
        assert tried.status_code == 303
        assert (await peer.ok("GET", f"/api/v1/posts/{post_id}"))["experiment"]["state"] == "tried"
        # A debrief without what was learned: named, and nothing moves.
        half = {"state": "debriefed", "outcome": "She said fine", "matched_prediction": "no", "belief_after": "30"}
        refused = await browser.post(f"/posts/{post_id}/debrief", data=half)
        assert refused.status_code == 400 and "learning" in refused.text and "She said fine" in refused.text
        assert (await peer.ok("GET", f"/api/v1/posts/{post_id}"))["experiment"]["state"] == "tried"
        bad = await browser.post(
            f"/posts/{post_id}/debrief", data={**half, "matched_prediction": "maybe", "learning": "x"}
        )
        assert bad.status_code == 400 and "matched_prediction" in bad.text
        done = await browser.post(f"/posts/{post_id}/debrief", data={**half, "learning": "A kind no kept it"})
        assert done.status_code == 303
        thread = await browser.get(f"/posts/{post_id}")
        assert re.search(r'class="num before">80</span>.*class="num after">30</span>', thread.text, re.S)
        again = await browser.post(f"/posts/{post_id}/debrief", data={"state": "abandoned"})
        assert again.status_code == 409 and "cannot move any more" in again.text
    record = (await peer.ok("GET", f"/api/v1/posts/{post_id}"))["experiment"]
    assert (record["state"], record["belief_after"], record["learning"]) == ("debriefed", 30, "A kind no kept it")
    kinds = [n["kind"] for n in await c.coach.ok("GET", "/api/v1/notifications")]
    assert kinds == ["experiment.debriefed"], "the coach is told of the debrief"


async def test_the_circle_lab_and_a_members_own_lab(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    jackie, peer = c.members
    async with page_client(api, jackie) as browser:
        done = (await plan(browser, c.room_id)).headers["location"].rsplit("/", 1)[1]
        await browser.post(
            f"/posts/{done}/debrief",
            data={
                "state": "debriefed",
                "outcome": "Fine",
                "matched_prediction": "partly",
                "belief_after": "35",
                "learning": "LEARNED-IN-THE-ROOM",
            },
        )
        await plan(browser, c.room_id, assumption="OPEN-IN-THE-ROOM")
        await plan(browser, c.room_id, where="journal", assumption="KEPT-IN-THE-JOURNAL")
    jackie_mid = await membership_id(jackie, c.id)
    async with page_client(api, peer) as browser:
        lab = await browser.get(f"/circles/{c.id}/lab")
        assert lab.status_code == 200
        assert "LEARNED-IN-THE-ROOM" in lab.text and "OPEN-IN-THE-ROOM" in lab.text
        assert "KEPT-IN-THE-JOURNAL" not in lab.text
        # A peer's own lab is theirs; someone else's is not gathered for them.
        assert (await browser.get(f"/circles/{c.id}/lab/members/{jackie_mid}")).status_code == 404
        empty = await browser.get(f"/circles/{c.id}/lab/mine")
        assert empty.status_code == 200 and "OPEN-IN-THE-ROOM" not in empty.text
    async with page_client(api, jackie) as browser:
        mine = await browser.get(f"/circles/{c.id}/lab/mine")
        assert "KEPT-IN-THE-JOURNAL" in mine.text and "OPEN-IN-THE-ROOM" in mine.text
        assert "<svg" in mine.text and "<table" in mine.text and "<td>80</td><td>35</td>" in mine.text
        # The circle's lab shows the room's experiments only, even to their author.
        assert "KEPT-IN-THE-JOURNAL" not in (await browser.get(f"/circles/{c.id}/lab")).text
    async with page_client(api, c.coach) as browser:
        theirs = await browser.get(f"/circles/{c.id}/lab/members/{jackie_mid}")
        assert theirs.status_code == 200 and "KEPT-IN-THE-JOURNAL" in theirs.text
        lab = await browser.get(f"/circles/{c.id}/lab")
        assert f'hx-get="/posts/{done}/form/pin"' in lab.text, "the coach can pin what was learned"
    outsider = await api.signup()
    async with page_client(api, outsider) as browser:
        assert (await browser.get(f"/circles/{c.id}/lab")).status_code == 404


async def test_the_small_wins_wall(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    jackie, peer = c.members
    first = await jackie.post(c.room_id, "FIRST-WIN", kind="win")
    second = await peer.post(c.room_id, "SECOND-WIN", kind="win")
    await jackie.post(c.room_id, "NOT-A-WIN")
    await jackie.post(c.room_id, "A-REPLY-WIN", kind="win", parent_id=second["id"])
    journal = await journal_of(jackie, c.id)
    await jackie.post(journal["id"], "JOURNAL-WIN", kind="win")
    hidden = await peer.post(c.room_id, "HIDDEN-WIN", kind="win")
    await c.coach.ok("PUT", f"/api/v1/posts/{hidden['id']}/hidden", {"reason": "names someone"})
    await c.coach.ok("PUT", f"/api/v1/posts/{first['id']}/like")
    async with page_client(api, jackie) as browser:
        wall = (await browser.get(f"/circles/{c.id}/wins")).text
    assert wall.index("SECOND-WIN") < wall.index("FIRST-WIN"), "newest first"
    for absent in ("NOT-A-WIN", "A-REPLY-WIN", "JOURNAL-WIN", "HIDDEN-WIN"):
        assert absent not in wall, absent
    assert wall.count("Your coach liked this") == 1
    async with page_client(api, c.coach) as browser:
        wall = (await browser.get(f"/circles/{c.id}/wins")).text
    assert "HIDDEN-WIN" in wall and "hidden from the circle" in wall and "JOURNAL-WIN" not in wall


async def test_journals_my_journal_just_my_coach_and_the_coachs_unread_markers(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    jackie, peer = c.members
    async with page_client(api, jackie) as browser:
        opened = await browser.get(f"/circles/{c.id}/journal")
        assert opened.status_code == 303
        journal_page = await browser.get(opened.headers["location"])
        assert "My journal" in journal_page.text and "Only you and your coach can read this" in journal_page.text
        journal_id = opened.headers["location"].rsplit("/", 1)[1]
        # From the room's composer, "Just my coach": the answer says where it went; the room's list does not get it.
        sent = await browser.post(
            f"/rooms/{c.room_id}/posts",
            data={"body": "JUST-FOR-MY-COACH", "where": "journal"},
            headers={"HX-Request": "true"},
        )
        assert sent.status_code == 200 and "Sent to your journal" in sent.text
        assert sent.headers["hx-retarget"] == "#composer-status"
        refused = await browser.post(f"/rooms/{c.room_id}/posts", data={"body": "x", "where": "everywhere"})
        assert refused.status_code == 400 and "where" in refused.text
    in_journal = (await jackie.ok("GET", f"/api/v1/rooms/{journal_id}/posts"))["items"]
    assert [p["body"] for p in in_journal] == ["JUST-FOR-MY-COACH"]
    assert (await peer.ok("GET", f"/api/v1/rooms/{c.room_id}/posts"))["items"] == []
    async with page_client(api, peer) as browser:
        assert (await browser.get(f"/rooms/{journal_id}")).status_code == 404
        assert (await browser.get(f"/circles/{c.id}/journals")).status_code == 403
    # The coach's list: Jackie's journal has one new post; opening it reads it.
    async with page_client(api, c.coach) as browser:
        listed = await browser.get(f"/circles/{c.id}/journals")
        assert listed.status_code == 200
        line = re.search(r'<li class="card journal-line unread">.*?</li>', listed.text, re.S)
        assert line and "Member1" in line.group(0) and "1 new" in line.group(0)
        assert listed.text.count("journal-line unread") == 1, "the other journal has nothing new"
        assert "1 new" in (await browser.get(f"/circles/{c.id}")).text
        page = await browser.get(f"/rooms/{journal_id}")
        assert "Member1’s journal" in page.text and "JUST-FOR-MY-COACH" in page.text
        assert "journal-line unread" not in (await browser.get(f"/circles/{c.id}/journals")).text
        # The coach writes back: the member sees it is new, until they open their journal.
        await c.coach.post(journal_id, "Thank you for telling me", parent_id=in_journal[0]["id"])
    async with page_client(api, jackie) as browser:
        assert "1 new from your coach" in (await browser.get(f"/circles/{c.id}")).text
        await browser.get(f"/rooms/{journal_id}")
        assert "new from your coach" not in (await browser.get(f"/circles/{c.id}")).text
