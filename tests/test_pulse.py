"""The coach's pulse on both backends, checked figure by figure against a hand-built history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from db.tables import Pin, PostLike, RoomEvent, Tag
from db.tables import Post as PostRow
from tests.client import ApiClient, User, make_circle

pytestmark = pytest.mark.anyio


async def test_pulse_answers_the_coach_only(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    outsider = await api.signup()
    got: dict[str, Any] = await c.coach.ok("GET", f"/api/v1/circles/{c.id}/pulse")
    assert got["days"] == 30 and len(got["circle"]["posts_by_day"]) == 30
    assert [m["member"]["alias"] for m in got["members"]] == ["Member1"]
    assert (await c.members[0].call("GET", f"/api/v1/circles/{c.id}/pulse")).status_code == 403
    assert (await outsider.call("GET", f"/api/v1/circles/{c.id}/pulse")).status_code == 404
    for bad in ("0", "366", "x"):
        r = await c.coach.call("GET", f"/api/v1/circles/{c.id}/pulse?days={bad}")
        assert r.status_code in (400, 422) and "days" in r.text, r.text


async def _at(post_id: str, when: datetime) -> None:
    """Move a post back in time: the hand-built history needs its moments, not the seconds the test took."""
    await PostRow.update({PostRow.created_at: when}).where(PostRow.id == uuid.UUID(post_id))


async def _mid(user: User, circle_id: str) -> str:
    me = await user.ok("GET", "/api/v1/me")
    return str(next(m["membership_id"] for m in me["memberships"] if m["circle_id"] == circle_id))


async def test_every_figure_of_a_hand_built_history(api: ApiClient) -> None:
    c = await make_circle(api, members=4)
    coach, (a, b, cc, d) = c.coach, c.members
    mid = {u.aliases[c.id]: await _mid(u, c.id) for u in (a, b, cc, d)}
    other_room = await coach.ok("POST", f"/api/v1/circles/{c.id}/rooms", {"name": "Wins"})
    journal = await b.ok("GET", f"/api/v1/memberships/{mid['Member2']}/journal")
    now = datetime.now(UTC)
    base = now - timedelta(hours=3)
    since3 = datetime.combine(now.date() - timedelta(days=2), time(), UTC)

    def m(minutes: int) -> datetime:
        return base + timedelta(minutes=minutes)

    # A (Member1): a win the coach likes, pins, shares and asks about; A answers elsewhere, so that question stays open.
    p1 = await a.post(c.room_id, "I said no to the extra shift", kind="win")
    cp = await coach.post(c.room_id, "This week: one small no each")  # the coach's post: not a member's
    q1 = await coach.post(c.room_id, "What did you feel just before?", kind="question", parent_id=p1["id"])
    elsewhere = await a.post(c.room_id, "Mine was at work", parent_id=cp["id"])
    # A's second post: B replies first, then the coach asks, and A replies to the question in its thread: closed.
    p2 = await a.post(c.room_id, "Still afraid of the next one")
    b_reply = await b.post(c.room_id, "Same here", parent_id=p2["id"])
    q2 = await coach.post(c.room_id, "What is the worst that could happen?", kind="question", parent_id=p2["id"])
    closing = await a.post(c.room_id, "That she is cold for a day", parent_id=q2["id"])
    await coach.ok("PUT", f"/api/v1/posts/{p1['id']}/like")
    await coach.ok("PUT", f"/api/v1/posts/{p1['id']}/pin", {"note": "a first no"})
    share = await coach.ok("POST", f"/api/v1/posts/{p1['id']}/shares", {"room_id": other_room["id"]})
    await coach.ok("POST", f"/api/v1/posts/{cp['id']}/tags", {"membership_id": mid["Member1"]})
    # B (Member2): a journal post (counts, never "unanswered"), a room post nobody answers, two experiments.
    j1 = await b.post(journal["id"], "Not ready to share this")
    r1 = await b.post(c.room_id, "Nobody answers me")
    await a.ok("PUT", f"/api/v1/posts/{r1['id']}/like")
    await coach.ok("PUT", f"/api/v1/posts/{r1['id']}/like")
    plan = {"assumption": "If I say no she leaves", "belief_before": 80, "action": "say no", "prediction": "cold"}
    e1 = await b.post(journal["id"], "", kind="experiment", experiment=plan)
    debrief = {
        "state": "debriefed",
        "outcome": "fine",
        "matched_prediction": "no",
        "belief_after": 30,
        "learning": "ok",
    }
    await b.ok("PATCH", f"/api/v1/posts/{e1['id']}/experiment", debrief)
    e2 = await b.post(journal["id"], "", kind="experiment", experiment=plan)
    # C (Member3): one post on the first moment of a three-day window, one a microsecond before it.
    c1 = await cc.post(c.room_id, "On the edge")
    c2 = await cc.post(c.room_id, "Just outside")
    # D (Member4) posts, then leaves: gone from every figure.
    d1 = await d.post(c.room_id, "I am leaving")
    await d.ok("DELETE", f"/api/v1/circles/{c.id}/members/{mid['Member4']}")

    times = {
        p1["id"]: m(0), cp["id"]: m(5), q1["id"]: m(10), elsewhere["id"]: m(40), p2["id"]: m(60),
        b_reply["id"]: m(80), q2["id"]: m(90), closing["id"]: m(100), share["id"]: m(13), j1["id"]: m(20),
        r1["id"]: m(30), e1["id"]: m(50), e2["id"]: m(55), c1["id"]: since3, c2["id"]: since3 - timedelta(microseconds=1),
        d1["id"]: m(15),
    }  # fmt: skip
    for pid, when in times.items():
        await _at(pid, when)
    coach_mid = uuid.UUID(await _mid(coach, c.id))
    await PostLike.update({PostLike.created_at: m(11)}).where(PostLike.membership == coach_mid)
    await PostLike.update({PostLike.created_at: m(35)}).where(PostLike.membership == uuid.UUID(mid["Member1"]))
    await Pin.update({Pin.pinned_at: m(12)}).where(Pin.post == uuid.UUID(p1["id"]))
    await Tag.update({Tag.created_at: m(14)}).where(Tag.tagged_by == coach_mid)
    await RoomEvent.update({RoomEvent.created_at: m(57)}).where(RoomEvent.post_id == uuid.UUID(e1["id"]))
    await PostRow.update({PostRow.experiment_due_at: now - timedelta(minutes=1)}).where(
        PostRow.id == uuid.UUID(e2["id"])
    )

    got = await coach.ok("GET", f"/api/v1/circles/{c.id}/pulse")
    members = {x["member"]["alias"]: x for x in got["members"]}
    assert list(members) == ["Member1", "Member2", "Member3"], "current members only, not the coach, not D"
    assert all(x["member"]["role"] == "member" for x in got["members"])
    ma, mb, mc = members["Member1"], members["Member2"], members["Member3"]
    assert (ma["posts"], ma["replies"], ma["wins"]) == (2, 2, 1)
    assert ma["coach_gestures"] == {"likes": 1, "questions": 2, "pins": 1, "shares": 1, "tags": 1}
    assert ma["open_questions"] == 1, "a reply in another thread does not close a question"
    assert _t(ma["last_active_at"]) == m(100) and ma["days_quiet"] == (now.date() - m(100).date()).days
    assert _t(ma["last_coach_gesture_at"]) == m(90)
    assert (mb["posts"], mb["replies"], mb["wins"]) == (4, 1, 0), "journal posts and experiments count"
    assert mb["experiments"] == {"planned": 1, "tried": 0, "debriefed": 1, "abandoned": 0, "overdue": 1}
    assert mb["belief_shift_median"] == 50
    assert mb["coach_gestures"] == {"likes": 1, "questions": 0, "pins": 0, "shares": 0, "tags": 0}
    assert _t(mb["last_active_at"]) == m(80) and mb["open_questions"] == 0
    assert (mc["posts"], mc["replies"], mc["days_quiet"]) == (2, 0, 2)
    assert _t(mc["last_active_at"]) == since3 and mc["last_coach_gesture_at"] is None
    assert mc["belief_shift_median"] is None

    circle = got["circle"]
    assert circle["active_members_7d"] == 3 and circle["open_questions"] == 1
    assert circle["unanswered"] == [c2["id"], c1["id"], r1["id"]], "oldest first; no journal, coach's or D's post"
    assert (circle["median_minutes_to_first_reply"], circle["median_minutes_to_coach"]) == (15, 20)
    member_posts = [t for pid, t in times.items() if pid not in {cp["id"], q1["id"], q2["id"], share["id"], d1["id"]}]
    expected = {day: sum(1 for t in member_posts if t.date().isoformat() == day) for day in _days(now, 30)}
    assert {x["date"]: x["posts"] for x in circle["posts_by_day"]} == expected
    assert [x["date"] for x in circle["posts_by_day"]] == _days(now, 30), "every day of the window, oldest first"

    # The window's edges: a three-day window starts at midnight UTC two days ago, and holds C's first post only.
    short = await coach.ok("GET", f"/api/v1/circles/{c.id}/pulse?days=3")
    by_alias = {x["member"]["alias"]: x for x in short["members"]}
    assert by_alias["Member3"]["posts"] == 1 and short["circle"]["unanswered"] == [c1["id"], r1["id"]]
    assert sum(x["posts"] for x in short["circle"]["posts_by_day"]) == len(member_posts) - 1
    one = await coach.ok("GET", f"/api/v1/circles/{c.id}/pulse?days=1")
    assert [x["date"] for x in one["circle"]["posts_by_day"]] == [now.date().isoformat()]
    assert {x["member"]["alias"]: x["posts"] for x in one["members"]}["Member3"] == 0


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _days(now: datetime, days: int) -> list[str]:
    return [(now.date() - timedelta(days=days - 1 - i)).isoformat() for i in range(days)]


async def test_hidden_and_deleted_posts_are_not_waiting_and_deleted_ones_do_not_count(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    ana = c.members[0]
    shown = await ana.post(c.room_id, "Waiting for someone")
    hidden = await ana.post(c.room_id, "Hidden by the coach")
    gone = await ana.post(c.room_id, "Deleted by me")
    await c.coach.ok("PUT", f"/api/v1/posts/{hidden['id']}/hidden", {"reason": "names a colleague"})
    await ana.ok("DELETE", f"/api/v1/posts/{gone['id']}")
    got = await c.coach.ok("GET", f"/api/v1/circles/{c.id}/pulse?days=1")
    assert got["circle"]["unanswered"] == [shown["id"]]
    assert got["members"][0]["posts"] == 2, "a hidden post is still the member's; a deleted one is not"
    assert sum(d["posts"] for d in got["circle"]["posts_by_day"]) == 2


async def test_gestures_at_the_window_edge_and_the_last_reach_before_it(api: ApiClient) -> None:
    """Gestures count from the window's first moment; the last reach is the latest ever, found just before the window
    (the coach's side) or long before it (the member's side), the same whatever the window."""
    c = await make_circle(api, members=4)
    coach, (a, b, cc, d) = c.coach, c.members
    mid = {u.aliases[c.id]: uuid.UUID(await _mid(u, c.id)) for u in (a, b, cc, d)}
    coach_mid = uuid.UUID(await _mid(coach, c.id))
    other_room = await coach.ok("POST", f"/api/v1/circles/{c.id}/rooms", {"name": "Wins"})
    now = datetime.now(UTC)
    since3 = datetime.combine(now.date() - timedelta(days=2), time(), UTC)

    def ago(days: int) -> datetime:
        return now - timedelta(days=days)

    cp = await coach.post(c.room_id, "This week: one small no each")
    # Member1: a like on the window's first moment (counts), a pin a microsecond before it (does not).
    a1 = await a.post(c.room_id, "On the edge")
    await coach.ok("PUT", f"/api/v1/posts/{a1['id']}/like")
    await coach.ok("PUT", f"/api/v1/posts/{a1['id']}/pin", {"note": "edge"})
    # Member2: a like 200 days ago, a question 150 days ago: beyond the look just before the window.
    b1 = await b.post(c.room_id, "Long ago")
    await coach.ok("PUT", f"/api/v1/posts/{b1['id']}/like")
    q = await coach.post(c.room_id, "What then?", kind="question", parent_id=b1["id"])
    # Member3: a share 40 days ago (just before a 3-day window), a tag 300 days ago.
    c1 = await cc.post(c.room_id, "Worth sharing")
    share = await coach.ok("POST", f"/api/v1/posts/{c1['id']}/shares", {"room_id": other_room["id"]})
    await coach.ok("POST", f"/api/v1/posts/{cp['id']}/tags", {"membership_id": str(mid["Member3"])})
    # Member4: a pin 95 days ago and a tag 99 days ago, both beyond the look just before a 3-day window.
    d1 = await d.post(c.room_id, "Pinned long ago")
    await coach.ok("PUT", f"/api/v1/posts/{d1['id']}/pin", {"note": "old"})
    await coach.ok("POST", f"/api/v1/posts/{cp['id']}/tags", {"membership_id": str(mid["Member4"])})

    for pid, when in {a1["id"]: since3, b1["id"]: ago(200), q["id"]: ago(150), c1["id"]: ago(60),
                      share["id"]: ago(40), d1["id"]: ago(120), cp["id"]: ago(301)}.items():  # fmt: skip
        await _at(pid, when)
    like = PostLike.membership == coach_mid
    await PostLike.update({PostLike.created_at: since3}).where(like & (PostLike.post == uuid.UUID(a1["id"])))
    await PostLike.update({PostLike.created_at: ago(200)}).where(like & (PostLike.post == uuid.UUID(b1["id"])))
    await Pin.update({Pin.pinned_at: since3 - timedelta(microseconds=1)}).where(Pin.post == uuid.UUID(a1["id"]))
    await Pin.update({Pin.pinned_at: ago(95)}).where(Pin.post == uuid.UUID(d1["id"]))
    await Tag.update({Tag.created_at: ago(300)}).where(Tag.membership == mid["Member3"])
    await Tag.update({Tag.created_at: ago(99)}).where(Tag.membership == mid["Member4"])

    zero = {"likes": 0, "questions": 0, "pins": 0, "shares": 0, "tags": 0}
    last = {"Member1": since3, "Member2": ago(150), "Member3": ago(40), "Member4": ago(95)}
    short = await coach.ok("GET", f"/api/v1/circles/{c.id}/pulse?days=3")
    got = {x["member"]["alias"]: x for x in short["members"]}
    assert got["Member1"]["coach_gestures"] == {**zero, "likes": 1}, "from the first moment, not a microsecond before"
    for alias in ("Member2", "Member3", "Member4"):
        assert got[alias]["coach_gestures"] == zero, alias
    assert {k: _t(x["last_coach_gesture_at"]) for k, x in got.items()} == last
    year = await coach.ok("GET", f"/api/v1/circles/{c.id}/pulse?days=365")
    got = {x["member"]["alias"]: x for x in year["members"]}
    assert got["Member1"]["coach_gestures"] == {**zero, "likes": 1, "pins": 1}
    assert got["Member2"]["coach_gestures"] == {**zero, "likes": 1, "questions": 1}
    assert got["Member3"]["coach_gestures"] == {**zero, "shares": 1, "tags": 1}
    assert got["Member4"]["coach_gestures"] == {**zero, "pins": 1, "tags": 1}
    assert {k: _t(x["last_coach_gesture_at"]) for k, x in got.items()} == last
