"""Live drop-ins through the public API and websocket, on both backends: schedule, go live, hands, spotlight, end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.client import ApiClient, Circle, Match, User, WsClient, make_circle
from tests.conftest import Server

pytestmark = pytest.mark.anyio


def soon(minutes: float = 30) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


async def schedule(c: Circle, **extra: Any) -> dict[str, Any]:
    body = {"title": "Thursday drop-in", "starts_at": soon(), "duration_minutes": 30, **extra}
    return await c.coach.ok("POST", f"/api/v1/circles/{c.id}/dropins", body)  # type: ignore[no-any-return]


def is_dropin_event(room_id: str) -> Match:
    return lambda f: f.get("type") == "event" and f.get("room_id") == room_id and f.get("event") == "dropin.state"


def hands_are(room_id: str, aliases: list[str]) -> Match:
    return lambda f: (
        f.get("type") == "presence" and f["room_id"] == room_id and [m["alias"] for m in f["hands"]] == aliases
    )


async def membership_id(user: User, circle_id: str) -> str:
    me = await user.ok("GET", "/api/v1/me")
    return next(m["membership_id"] for m in me["memberships"] if m["circle_id"] == circle_id)  # type: ignore[no-any-return]


async def test_schedule_validates_and_only_the_coach_may(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    member = c.members[0]
    created = await schedule(c, agenda="Bring one experiment")
    assert created["state"] == "scheduled" and created["title"] == "Thursday drop-in"
    assert {"id", "room_id", "title", "starts_at", "state"} <= created.keys()

    path = f"/api/v1/circles/{c.id}/dropins"
    good = {"title": "x", "starts_at": soon(), "duration_minutes": 30}
    for bad, needle in [
        ({**good, "title": "   "}, "title"),
        ({**good, "duration_minutes": 0}, "minutes"),
        ({**good, "duration_minutes": 100000}, "minutes"),
        ({**good, "starts_at": "next thursday"}, "starts_at"),
        ({**good, "starts_at": "2001-01-01T10:00:00Z"}, "past"),
        ({"title": "x"}, "starts_at"),
    ]:
        r = await c.coach.call("POST", path, bad)
        assert r.status_code == 400, (bad, r.status_code, r.text)
        assert needle in r.text, r.json()  # in `detail`, or in `extra` for a body that does not parse

    # The longest title fits, although a room's name is shorter.
    longest = await schedule(c, title="T" * 120)
    assert longest["title"] == "T" * 120
    r = await c.coach.call("POST", path, {**good, "title": "T" * 121})
    assert r.status_code == 400

    r = await member.call("POST", path, good)
    assert r.status_code == 403 and "coach" in r.json()["detail"]
    outsider = await api.signup()
    assert (await outsider.call("POST", path, good)).status_code == 404
    assert (await outsider.call("GET", f"/api/v1/dropins/{created['id']}")).status_code == 404
    assert (await outsider.call("GET", "/api/v1/dropins/not-an-id")).status_code == 404

    listed = await member.ok("GET", path)
    assert [d["id"] for d in listed] == [created["id"], longest["id"]]
    # The drop-in's room is a room of the circle, marked as the drop-in's.
    rooms = await member.ok("GET", f"/api/v1/circles/{c.id}/rooms")
    assert {r["id"]: r["dropin_id"] for r in rooms}[created["room_id"]] == created["id"]

    # Members may not start or end it.
    for action in ("start", "end"):
        r = await member.call("POST", f"/api/v1/dropins/{created['id']}/{action}")
        assert r.status_code == 403, r.text


async def test_calendar_file_for_members(api: ApiClient, server: Server) -> None:
    c = await make_circle(api, members=1)
    created = await schedule(c, title="Saying no; at work, kindly", agenda="One experiment each")
    url = f"/dropins/{created['id']}/calendar.ics"
    r = await api.http.get(url, headers={"Cookie": f"kindred_session={c.members[0].token}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/calendar")
    assert "attachment" in r.headers["content-disposition"]
    text = r.text
    assert text.startswith("BEGIN:VCALENDAR\r\n") and text.endswith("END:VCALENDAR\r\n")
    starts = datetime.fromisoformat(created["starts_at"].replace("Z", "+00:00"))
    assert f"DTSTART:{starts:%Y%m%dT%H%M%SZ}" in text
    assert f"DTEND:{starts + timedelta(minutes=30):%Y%m%dT%H%M%SZ}" in text
    assert "SUMMARY:Drop-in: Saying no\\; at work\\, kindly" in text
    assert f"/rooms/{created['room_id']}" in text
    outsider = await api.signup()
    r = await api.http.get(url, headers={"Cookie": f"kindred_session={outsider.token}"})
    assert r.status_code == 404


async def _live(api: ApiClient, c: Circle) -> tuple[dict[str, Any], WsClient, WsClient, WsClient]:
    """A started drop-in with the coach and both members subscribed to its room."""
    created = await schedule(c)
    room = created["room_id"]
    sockets = []
    for user in (c.coach, *c.members):
        sock = await user.ws()
        assert (await sock.subscribe(room))["type"] == "subscribed"
        sockets.append(sock)
    started = await c.coach.ok("POST", f"/api/v1/dropins/{created['id']}/start", status=200)
    assert started["state"] == "live"
    for sock in sockets:
        frame = await sock.recv_until(is_dropin_event(room))
        assert frame["data"]["state"] == "live" and frame["data"]["id"] == created["id"]
    return created, sockets[0], sockets[1], sockets[2]


async def test_go_live_notifies_every_member_on_every_socket(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    created = await schedule(c)
    # Member2 is somewhere else in the app: only their account socket is open.
    elsewhere = await c.members[1].ws()
    await elsewhere.send({"op": "ping"})
    await elsewhere.recv_until(lambda f: f.get("type") == "pong")
    again = await c.coach.ok("POST", f"/api/v1/dropins/{created['id']}/start", status=200)
    frame = await elsewhere.recv_until(lambda f: f.get("type") == "notification")
    note = frame["data"]
    assert note["kind"] == "dropin.live" and note["room_id"] == created["room_id"]
    assert note["actor"]["role"] == "coach" and "Coach Dana" in note["text"]
    # Starting again changes nothing and notifies nobody twice.
    assert (await c.coach.ok("POST", f"/api/v1/dropins/{created['id']}/start", status=200))["state"] == again["state"]
    # Control that must arrive after anything a second start could have sent: a mention of Member2.
    await c.members[0].post(c.room_id, "@Member2 see you in there")
    control = await elsewhere.recv_until(lambda f: f.get("type") == "notification")
    assert control["data"]["kind"] == "mention"
    assert [f for f in elsewhere.backlog if f.get("type") == "notification"] == []
    feed = await c.members[1].ok("GET", "/api/v1/notifications")
    assert [n["kind"] for n in feed] == ["mention", "dropin.live"]
    # The coach is not notified of their own drop-in.
    assert await c.coach.ok("GET", "/api/v1/notifications") == []


async def test_ending_retires_its_notices_live_and_keeps_the_rest(api: ApiClient) -> None:
    """A drop-in that has ended has nothing to join: its `dropin.live` notice is marked read for everyone, and each
    open page lowers its bell at once (`notifications.read`); other notifications stay unread (the control)."""
    c = await make_circle(api, members=2)
    created = await schedule(c)
    member = c.members[1]
    ws = await member.ws()
    await c.coach.ok("POST", f"/api/v1/dropins/{created['id']}/start", status=200)
    await ws.recv_until(lambda f: f.get("type") == "notification" and f["data"]["kind"] == "dropin.live")
    await c.members[0].post(c.room_id, "@Member2 how did it go?")
    await ws.recv_until(lambda f: f.get("type") == "notification" and f["data"]["kind"] == "mention")
    await c.coach.ok("POST", f"/api/v1/dropins/{created['id']}/end", status=200)
    lowered = await ws.recv_until(lambda f: f.get("type") == "notifications.read")
    assert lowered["unread"] == 1
    feed = {n["kind"]: n["read"] for n in await member.ok("GET", "/api/v1/notifications")}
    assert feed == {"dropin.live": True, "mention": False}
    # Member1 had the notice too, read nowhere yet: retired as well.
    others = {n["kind"]: n["read"] for n in await c.members[0].ok("GET", "/api/v1/notifications")}
    assert others == {"dropin.live": True}
    await ws.close()


async def test_a_member_called_on_before_posting_is_named_in_the_state(api: ApiClient) -> None:
    """ "Next hand" on a member with no post yet spotlights nothing but still says who is up (`called`, alias only),
    live and on replay; the coach's own spotlight afterwards calls nobody."""
    c = await make_circle(api, members=2)
    created, coach_ws, m1_ws, m2_ws = await _live(api, c)
    did, room = created["id"], created["room_id"]
    m1 = c.members[0]
    await m1.ok("PUT", f"/api/v1/dropins/{did}/hand")
    await m2_ws.recv_until(hands_are(room, ["Member1"]))
    await c.coach.ok("POST", f"/api/v1/dropins/{did}/hands/next", status=200)
    state = await m2_ws.recv_until(lambda f: is_dropin_event(room)(f) and f["data"].get("called") is not None)
    assert state["data"]["spotlight"] is None and state["data"]["spotlight_post"] is None
    called = state["data"]["called"]
    assert called == {"membership_id": await membership_id(m1, c.id), "alias": "Member1", "role": "member"}
    detail = await m1.ok("GET", f"/api/v1/dropins/{did}")
    assert detail["called"]["alias"] == "Member1"
    # A late subscriber's replay carries it too.
    late = await c.members[1].ws()
    await late.send({"op": "subscribe", "room_id": room, "since": 0})
    replayed = await late.recv_until(lambda f: is_dropin_event(room)(f) and f["data"].get("called") is not None)
    assert replayed["data"]["called"]["alias"] == "Member1"
    # The coach spotlights a post of their own choosing: nobody is "called" any more.
    post = await c.members[1].post(room, "Something to look at")
    await c.coach.ok("PUT", f"/api/v1/dropins/{did}/spotlight", {"post_id": post["id"]}, status=200)
    after = await m2_ws.recv_until(lambda f: is_dropin_event(room)(f) and f["data"]["spotlight"] == post["id"])
    assert after["data"]["called"] is None
    for sock in (coach_ws, m1_ws, m2_ws, late):
        await sock.close()


async def test_hands_queue_in_order_and_the_coach_calls_on_them(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    created, coach_ws, m1_ws, _ = await _live(api, c)
    did, room = created["id"], created["room_id"]
    m1, m2 = c.members

    await m2.ok("PUT", f"/api/v1/dropins/{did}/hand")
    await m1.ok("PUT", f"/api/v1/dropins/{did}/hand")
    await m1.ok("PUT", f"/api/v1/dropins/{did}/hand")  # raising twice keeps the place in the queue
    await coach_ws.recv_until(hands_are(room, ["Member2", "Member1"]))
    await m1.ok("DELETE", f"/api/v1/dropins/{did}/hand", status=200)
    await m1_ws.recv_until(hands_are(room, ["Member2"]))
    hands = await m1.ok("PUT", f"/api/v1/dropins/{did}/hand")
    assert [m["alias"] for m in hands] == ["Member2", "Member1"]
    detail = await m1.ok("GET", f"/api/v1/dropins/{did}")
    assert [m["alias"] for m in detail["hands"]] == ["Member2", "Member1"]
    assert sorted(m["alias"] for m in detail["present"]) == ["Coach Dana", "Member1", "Member2"]
    assert {m["role"] for m in detail["present"] if m["alias"] == "Coach Dana"} == {"coach"}

    # Member2 says something, then the coach calls on the first hand: their latest post is spotlighted for all.
    await m2.post(room, "An older thought")
    latest = await m2.post(room, "I said no to the extra project today", kind="win")
    r = await m1.call("POST", f"/api/v1/dropins/{did}/hands/next")
    assert r.status_code == 403
    called = await c.coach.ok("POST", f"/api/v1/dropins/{did}/hands/next", status=200)
    assert called["spotlight"] == latest["id"] and called["spotlight_post"]["body"] == latest["body"]
    assert [m["alias"] for m in called["hands"]] == ["Member1"]
    for sock in (coach_ws, m1_ws):
        frame = await sock.recv_until(lambda f: is_dropin_event(room)(f) and f["data"]["spotlight"] == latest["id"])
        assert frame["data"]["spotlight_post"]["author"]["alias"] == "Member2"
        await sock.recv_until(hands_are(room, ["Member1"]))

    # Member1 has not posted here: called on, nothing is spotlighted.
    called = await c.coach.ok("POST", f"/api/v1/dropins/{did}/hands/next", status=200)
    assert called["spotlight"] is None and called["hands"] == []
    r = await c.coach.call("POST", f"/api/v1/dropins/{did}/hands/next")
    assert r.status_code == 409 and "no hands" in r.json()["detail"]


async def test_spotlight_any_post_and_a_late_joiner_sees_it(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    created, coach_ws, _, _ = await _live(api, c)
    did, room = created["id"], created["room_id"]
    post = await c.members[0].post(room, "What I noticed when I paused before answering")

    r = await c.members[1].call("PUT", f"/api/v1/dropins/{did}/spotlight", {"post_id": post["id"]})
    assert r.status_code == 403
    other = await make_circle(api, members=0, coach_name="Another Coach")
    foreign = await other.coach.post(other.room_id, "elsewhere")
    r = await c.coach.call("PUT", f"/api/v1/dropins/{did}/spotlight", {"post_id": foreign["id"]})
    assert r.status_code == 400 and "post_id" in r.json()["detail"]
    r = await c.coach.call("PUT", f"/api/v1/dropins/{did}/spotlight", {"post": post["id"]})
    assert r.status_code == 400

    lit = await c.coach.ok("PUT", f"/api/v1/dropins/{did}/spotlight", {"post_id": post["id"]})
    assert lit["spotlight"] == post["id"]

    # Someone joins the circle while the drop-in runs: they see the conversation so far and what is lit now.
    late = await api.signup()
    await late.ok("POST", f"/api/v1/invites/{c.invite}/join", {"alias": "Latecomer"})
    detail = await late.ok("GET", f"/api/v1/dropins/{did}")
    assert detail["state"] == "live" and detail["spotlight"] == post["id"]
    sock = await late.ws()
    await sock.send({"op": "subscribe", "room_id": room, "since": 0})
    replay = await sock.events(room, 3)
    assert [f["event"] for f in replay] == ["dropin.state", "post.created", "dropin.state"]
    assert replay[-1]["data"]["spotlight"] == post["id"]
    await sock.recv_until(lambda f: f.get("type") == "subscribed")
    page = await late.ok("GET", f"/api/v1/rooms/{room}/posts")
    assert [p["id"] for p in page["items"]] == [post["id"]]

    cleared = await c.coach.ok("DELETE", f"/api/v1/dropins/{did}/spotlight", status=200)
    assert cleared["spotlight"] is None
    frame = await coach_ws.recv_until(lambda f: is_dropin_event(room)(f) and f["data"]["spotlight"] is None)
    assert frame["data"]["spotlight_post"] is None


async def test_end_makes_the_room_read_only_with_a_summary(api: ApiClient) -> None:
    c = await make_circle(api, members=3)  # Member3 waits in the room, says nothing, and still took part
    created, _, m1_ws, _ = await _live(api, c)
    did, room = created["id"], created["room_id"]
    m1, m2, _ = c.members
    experiment = await m1.post(room, "Experiment: I will decline one meeting this week", kind="experiment")
    insight = await m2.post(room, "Saying no is also saying yes to something")
    question = await c.coach.post(room, "What did you fear would happen?", kind="question", parent_id=experiment["id"])
    await c.coach.ok("PUT", f"/api/v1/posts/{insight['id']}/pin", {"note": "worth keeping"})
    await m2.ok("PUT", f"/api/v1/dropins/{did}/hand")

    ended = await c.coach.ok("POST", f"/api/v1/dropins/{did}/end", status=200)
    assert ended["state"] == "ended"
    frame = await m1_ws.recv_until(lambda f: is_dropin_event(room)(f) and f["data"]["state"] == "ended")
    assert frame["data"]["spotlight"] is None

    detail = await m1.ok("GET", f"/api/v1/dropins/{did}")
    summary = detail["summary"]
    assert sorted(summary["participants"]) == ["Coach Dana", "Member1", "Member2", "Member3"]
    assert [i["post_id"] for i in summary["insights"]] == [insight["id"]]
    assert [i["post_id"] for i in summary["questions"]] == [question["id"]]
    assert [i["post_id"] for i in summary["experiments"]] == [experiment["id"]]
    assert summary["experiments"][0]["alias"] == "Member1"
    assert detail["hands"] == [] and detail["present"] == []

    # Read-only: the conversation stays, nothing more is added to it.
    r = await m1.call("POST", f"/api/v1/rooms/{room}/posts", {"body": "one more thing"})
    assert r.status_code == 409 and "read-only" in r.json()["detail"]
    r = await m1.call("PATCH", f"/api/v1/posts/{experiment['id']}", {"body": "changed"})
    assert r.status_code == 409
    r = await m1.call("PUT", f"/api/v1/posts/{insight['id']}/like")
    assert r.status_code == 409
    r = await m1.call("PUT", f"/api/v1/dropins/{did}/hand")
    assert r.status_code == 409 and "not live" in r.json()["detail"]
    r = await c.coach.call("POST", f"/api/v1/dropins/{did}/start")
    assert r.status_code == 409 and "ended" in r.json()["detail"]
    assert (await m1.ok("GET", f"/api/v1/rooms/{room}/posts"))["items"]
    assert await m1.ok("GET", f"/api/v1/circles/{c.id}/dropins") == []

    # The summary is read from the room as it is now: a pin after the end counts, a changed alias leaves no trace.
    await c.coach.ok("PUT", f"/api/v1/posts/{experiment['id']}/pin", {})
    await m1.ok("PATCH", f"/api/v1/circles/{c.id}/membership", {"alias": "Lantern"})
    summary = (await m2.ok("GET", f"/api/v1/dropins/{did}"))["summary"]
    assert sorted(i["post_id"] for i in summary["insights"]) == sorted([insight["id"], experiment["id"]])
    assert "Member1" not in str(summary) and "Lantern" in summary["participants"]

    # The next drop-in links back to this one.
    following = await schedule(c, title="Next week")
    nxt = await m2.ok("GET", f"/api/v1/dropins/{following['id']}")
    assert nxt["previous"]["id"] == did and nxt["previous"]["room_id"] == room


async def test_removed_member_loses_the_drop_in(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    created, _, _, _ = await _live(api, c)
    m1 = c.members[0]
    await m1.ok("PUT", f"/api/v1/dropins/{created['id']}/hand")
    mid = await membership_id(m1, c.id)
    await c.coach.ok("DELETE", f"/api/v1/circles/{c.id}/members/{mid}")
    assert (await m1.call("GET", f"/api/v1/dropins/{created['id']}")).status_code == 404
    assert (await m1.call("PUT", f"/api/v1/dropins/{created['id']}/hand")).status_code == 404


async def test_reminder_goes_out_once_ten_minutes_before(api: ApiClient, server: Server) -> None:
    from app.services import dropins

    c = await make_circle(api, members=2)
    await schedule(c, starts_at=soon(60))  # too early for a reminder
    near = await schedule(c, title="Soon", starts_at=soon(8))
    sock = await c.members[0].ws()
    live = server.app.state["live"]
    assert await dropins.send_reminders(live) == 1
    assert await dropins.send_reminders(live) == 0  # once
    frame = await sock.recv_until(lambda f: f.get("type") == "notification")
    assert frame["data"]["kind"] == "dropin.reminder" and frame["data"]["room_id"] == near["room_id"]
    for member in c.members:
        assert [n["kind"] for n in await member.ok("GET", "/api/v1/notifications")] == ["dropin.reminder"]
    assert await c.coach.ok("GET", "/api/v1/notifications") == []
