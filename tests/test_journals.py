"""Journals on both backends: one per membership, for that member and the circle's coach only. A canary written in a
journal must never reach a peer: not by the API, not by a frame, not by a notification, not on the insights board or
in the lab's list; and a control written in the circle's room must reach the same peer, so the check can fail."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.client import ApiClient, User, make_circle

pytestmark = pytest.mark.anyio

CANARY = "canary-7c1f: my manager is Dana at Northwind"


async def membership_id(user: User, circle_id: str) -> str:
    me = await user.ok("GET", "/api/v1/me")
    return str(next(m["membership_id"] for m in me["memberships"] if m["circle_id"] == circle_id))


async def test_a_journal_is_its_members_and_the_coachs_alone(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    jackie, peer = c.members
    jackie_mid, peer_mid = await membership_id(jackie, c.id), await membership_id(peer, c.id)
    journal = await jackie.ok("GET", f"/api/v1/memberships/{jackie_mid}/journal")
    assert (journal["kind"], journal["membership_id"], journal["circle_id"]) == ("journal", jackie_mid, c.id)
    assert await c.coach.ok("GET", f"/api/v1/memberships/{jackie_mid}/journal") == journal, "the same room, once"
    jid = journal["id"]

    # The peer is listening everywhere they can: the circle's room and their own notifications.
    listening = await peer.ws()
    await listening.subscribe(c.room_id)
    refused = await listening.subscribe(jid)
    assert refused["type"] == "error" and refused["code"] == "forbidden"

    private = await jackie.post(jid, f"{CANARY} @Member2")
    await c.coach.post(jid, f"What did {CANARY[:6]} feel like?", kind="question", parent_id=private["id"])
    await c.coach.ok("PUT", f"/api/v1/posts/{private['id']}/pin", {"note": CANARY})
    await c.coach.ok("PUT", f"/api/v1/posts/{private['id']}/like")
    plan = {"assumption": CANARY, "belief_before": 90, "action": "ask", "prediction": "no"}
    lab = await jackie.post(jid, "", kind="experiment", experiment=plan)
    r = await c.coach.call("POST", f"/api/v1/posts/{private['id']}/tags", {"membership_id": peer_mid})
    assert r.status_code == 400 and "journal" in r.json()["detail"]

    # Jackie and the coach read it; the coach hears of Jackie's journal, Jackie of the coach's question.
    assert [p["id"] for p in (await c.coach.ok("GET", f"/api/v1/rooms/{jid}/posts"))["items"]] == [
        lab["id"],
        private["id"],
    ]
    assert [n["kind"] for n in await jackie.ok("GET", "/api/v1/notifications")] == ["coach_like", "pin", "question"]
    listed = await c.coach.ok("GET", f"/api/v1/circles/{c.id}/journals")
    assert {j["membership_id"]: j["kind"] for j in listed} == {jackie_mid: "journal", peer_mid: "journal"}
    mine = await jackie.ok("GET", f"/api/v1/circles/{c.id}/experiments")
    assert [p["id"] for p in mine["items"]] == [lab["id"]]

    # The control: Jackie says something in the circle's room, and the peer gets it live.
    public = await jackie.post(c.room_id, "control: said in the room")
    got = await listening.recv_until(lambda f: f.get("type") == "event" and f["data"].get("id") == public["id"])
    assert got["data"]["body"] == "control: said in the room"

    # The peer: 404 for the journal and its posts, nothing in the room list, the board, the lab, the feed.
    assert (await peer.call("GET", f"/api/v1/memberships/{jackie_mid}/journal")).status_code == 404
    assert (await peer.call("GET", f"/api/v1/rooms/{jid}/posts")).status_code == 404
    assert (await peer.call("GET", f"/api/v1/posts/{private['id']}")).status_code == 404
    assert (await peer.call("POST", f"/api/v1/rooms/{jid}/posts", {"body": "let me in"})).status_code == 404
    assert (await peer.call("GET", f"/api/v1/circles/{c.id}/journals")).status_code == 403
    seen: list[Any] = [
        await peer.ok("GET", f"/api/v1/circles/{c.id}/rooms"),
        await peer.ok("GET", f"/api/v1/circles/{c.id}/insights"),
        await peer.ok("GET", f"/api/v1/circles/{c.id}/experiments"),
        await peer.ok("GET", "/api/v1/notifications"),
        await peer.ok("GET", f"/api/v1/rooms/{c.room_id}/posts"),
        await listening.quiet(0.2),
        listening.backlog,
    ]
    assert jid not in json.dumps(seen) and CANARY not in json.dumps(seen) and CANARY[:11] not in json.dumps(seen)
    assert await c.coach.ok("GET", f"/api/v1/circles/{c.id}/insights") == [], "a journal pin stays in the journal"


async def test_only_its_author_carries_a_journal_post_into_the_room(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    jackie, peer = c.members
    jid = (await jackie.ok("GET", f"/api/v1/memberships/{await membership_id(jackie, c.id)}/journal"))["id"]
    post = await jackie.post(jid, "Ready to share this one")
    r = await c.coach.call("POST", f"/api/v1/posts/{post['id']}/shares", {"room_id": c.room_id})
    assert r.status_code == 403 and "only its author" in r.json()["detail"]
    shared = await jackie.ok("POST", f"/api/v1/posts/{post['id']}/shares", {"room_id": c.room_id})
    assert shared["author"]["alias"] == post["author"]["alias"] and shared["room_id"] == c.room_id
    assert shared["body"] == "Ready to share this one"
    assert (await peer.ok("GET", f"/api/v1/posts/{shared['id']}"))["body"] == "Ready to share this one"
    room_post = await peer.post(c.room_id, "mine")
    r = await peer.call("POST", f"/api/v1/posts/{room_post['id']}/shares", {"room_id": jid})
    assert r.status_code == 404, "someone else's journal does not exist for the peer"
    r = await jackie.call("POST", f"/api/v1/posts/{room_post['id']}/shares", {"room_id": jid})
    assert r.status_code == 400 and "journal" in r.json()["detail"]
    # Journals are never listed as rooms, nor offered as share targets; drop-in rooms say what they are.
    starts = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    dropin = await c.coach.ok(
        "POST", f"/api/v1/circles/{c.id}/dropins", {"title": "Tuesday", "starts_at": starts, "duration_minutes": 30}
    )
    rooms = await jackie.ok("GET", f"/api/v1/circles/{c.id}/rooms")
    assert {r["id"]: r["kind"] for r in rooms} == {c.room_id: "room", dropin["room_id"]: "dropin"}
    assert all(r["membership_id"] is None for r in rooms)
