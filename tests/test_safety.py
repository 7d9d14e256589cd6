"""Trust and safety through the API and websocket, on both backends: moderation, reports, the audit log, alias
changes, password changes, data rights, closing circles, and every limit crossed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.client import PASSWORD, ApiClient, Match, User, make_circle

pytestmark = pytest.mark.anyio


def is_event(room_id: str, name: str) -> Match:
    return lambda f: f.get("type") == "event" and f["room_id"] == room_id and f["event"] == name


def is_note(kind: str) -> Match:
    return lambda f: f.get("type") == "notification" and f["data"]["kind"] == kind


async def mid(user: User, circle_id: str) -> str:
    me = await user.ok("GET", "/api/v1/me")
    return str(next(m["membership_id"] for m in me["memberships"] if m["circle_id"] == circle_id))


async def test_coach_hides_restores_and_removes_posts_with_reasons(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    post = await a.post(c.room_id, "something that crosses a line")
    author_ws, peer_ws = await a.ws(), await b.ws()
    await peer_ws.subscribe(c.room_id)

    assert (await b.call("PUT", f"/api/v1/posts/{post['id']}/hidden", {"reason": "no"})).status_code == 403
    assert (await c.coach.call("PUT", f"/api/v1/posts/{post['id']}/hidden", {})).status_code == 400
    hidden = await c.coach.ok("PUT", f"/api/v1/posts/{post['id']}/hidden", {"reason": "Please keep names out"})
    assert hidden["hidden"] is True and hidden["body"] and hidden["moderation_reason"] == "Please keep names out"

    frame = await peer_ws.recv_until(is_event(c.room_id, "post.updated"))
    assert frame["data"]["hidden"] is True and frame["data"]["body"] == "" and frame["data"]["html"] == ""
    assert frame["data"]["moderation_reason"] is None, "the reason is for the author, not the circle"
    note = await author_ws.recv_until(is_note("moderation"))
    assert "Please keep names out" in note["data"]["reason"]

    peer_view = await b.ok("GET", f"/api/v1/posts/{post['id']}")
    assert peer_view["body"] == "" and peer_view["hidden"] is True and peer_view["moderation_reason"] is None
    own_view = await a.ok("GET", f"/api/v1/posts/{post['id']}")
    assert own_view["body"] == post["body"] and own_view["moderation_reason"] == "Please keep names out"
    # The log keeps only what peers may see: a replay does not bring the text back.
    replay = await b.ws()
    await replay.send({"op": "subscribe", "room_id": c.room_id, "since": 0})
    replayed = await replay.recv_until(is_event(c.room_id, "post.created"))
    assert replayed["data"]["body"] == "" and "crosses a line" not in json.dumps(replayed)
    assert (await a.call("PATCH", f"/api/v1/posts/{post['id']}", {"body": "edited"})).status_code == 409

    restored = await c.coach.ok("DELETE", f"/api/v1/posts/{post['id']}/hidden", status=200)
    assert restored["hidden"] is False and restored["body"] == post["body"]
    frame = await peer_ws.recv_until(is_event(c.room_id, "post.updated"))
    assert frame["data"]["body"] == post["body"] and frame["data"]["hidden"] is False

    assert (await c.coach.call("POST", f"/api/v1/posts/{post['id']}/removal", {})).status_code == 400
    await c.coach.ok("POST", f"/api/v1/posts/{post['id']}/removal", {"reason": "Off topic"}, status=204)
    assert (await peer_ws.recv_until(is_event(c.room_id, "post.deleted")))["data"]["id"] == post["id"]
    assert "Off topic" in (await author_ws.recv_until(is_note("moderation")))["data"]["reason"]
    assert (await b.call("GET", f"/api/v1/posts/{post['id']}")).status_code == 404

    audit = await c.coach.ok("GET", f"/api/v1/circles/{c.id}/audit")
    assert [(e["action"], e["reason"]) for e in audit] == [
        ("remove", "Off topic"),
        ("restore", None),
        ("hide", "Please keep names out"),
    ]
    assert all(e["actor"]["role"] == "coach" and e["post_id"] == post["id"] for e in audit)
    assert (await b.call("GET", f"/api/v1/circles/{c.id}/audit")).status_code == 403


async def test_muting_pauses_posting_and_reacting(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    target = await mid(a, c.id)
    post = await b.post(c.room_id, "hi")
    muted = await c.coach.ok(
        "PUT", f"/api/v1/circles/{c.id}/members/{target}/mute", {"minutes": 30, "reason": "cool off"}
    )
    assert muted["membership_id"] == target and muted["reason"] == "cool off"
    refused = await a.call("POST", f"/api/v1/rooms/{c.room_id}/posts", {"body": "let me speak"})
    assert (
        refused.status_code == 403 and "paused" in refused.json()["detail"] and "cool off" in refused.json()["detail"]
    )
    assert (await a.call("PUT", f"/api/v1/posts/{post['id']}/like")).status_code == 403
    assert (await a.call("GET", f"/api/v1/rooms/{c.room_id}/posts")).status_code == 200, "reading is still fine"
    assert (await b.call("PUT", f"/api/v1/circles/{c.id}/members/{target}/mute", {"minutes": 5})).status_code == 403
    coach_mid = await mid(c.coach, c.id)
    assert (
        await c.coach.call("PUT", f"/api/v1/circles/{c.id}/members/{coach_mid}/mute", {"minutes": 5})
    ).status_code == 400
    assert (
        await c.coach.call("PUT", f"/api/v1/circles/{c.id}/members/{target}/mute", {"minutes": 0})
    ).status_code == 400
    await c.coach.ok("DELETE", f"/api/v1/circles/{c.id}/members/{target}/mute", status=200)
    await a.post(c.room_id, "thank you")
    kinds = [n["kind"] for n in await a.ok("GET", "/api/v1/notifications")]
    assert kinds == ["moderation", "moderation"]
    actions = [e["action"] for e in await c.coach.ok("GET", f"/api/v1/circles/{c.id}/audit")]
    assert actions == ["unmute", "mute"]


async def test_reports_reach_the_coachs_queue_and_resolve(api: ApiClient) -> None:
    c = await make_circle(api, members=3)
    a, b, d = c.members
    post = await a.post(c.room_id, "a questionable post")
    coach_ws = await c.coach.ws()
    assert (await a.call("POST", f"/api/v1/posts/{post['id']}/reports", {"reason": "mine"})).status_code == 400
    assert (await b.call("POST", f"/api/v1/posts/{post['id']}/reports", {})).status_code == 400
    first = await b.ok("POST", f"/api/v1/posts/{post['id']}/reports", {"reason": "It names a colleague"})
    again = await b.ok("POST", f"/api/v1/posts/{post['id']}/reports", {"reason": "again"})
    assert first["id"] == again["id"] and first["reason"] == "It names a colleague"
    await d.ok("POST", f"/api/v1/posts/{post['id']}/reports", {"reason": "Unkind"})
    note = await coach_ws.recv_until(is_note("report"))
    assert note["data"]["post_id"] == post["id"]

    queue = await c.coach.ok("GET", f"/api/v1/circles/{c.id}/reports")
    assert [r["reason"] for r in queue] == ["It names a colleague", "Unkind"]
    assert queue[0]["post"]["id"] == post["id"] and queue[0]["reporter"]["alias"] == "Member2"
    assert (await b.call("GET", f"/api/v1/circles/{c.id}/reports")).status_code == 403
    outsider = await api.signup()
    assert (await outsider.call("POST", f"/api/v1/posts/{post['id']}/reports", {"reason": "x"})).status_code == 404

    resolved = await c.coach.ok(
        "POST", f"/api/v1/reports/{first['id']}/resolve", {"action": "hide", "reason": "Names stay out"}, status=200
    )
    assert resolved["resolution"] == "hidden" and resolved["resolved_at"]
    assert await c.coach.ok("GET", f"/api/v1/circles/{c.id}/reports") == [], "one decision resolves every report"
    assert (await b.ok("GET", f"/api/v1/posts/{post['id']}"))["hidden"] is True
    again = await c.coach.call("POST", f"/api/v1/reports/{first['id']}/resolve", {"action": "dismiss"})
    assert again.status_code == 409
    history = await c.coach.ok("GET", f"/api/v1/circles/{c.id}/reports?open=false")
    assert {r["resolution"] for r in history} == {"hidden"}


async def test_alias_change_leaves_no_trace_of_the_old_alias(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    await a.post(c.room_id, "my first post")
    reply_target = await b.post(c.room_id, "hello")
    await a.post(c.room_id, "a reply", parent_id=reply_target["id"])
    await b.post(c.room_id, "thanks @Member1")
    other_room = await c.coach.ok("POST", f"/api/v1/circles/{c.id}/rooms", {"name": "Elsewhere"})
    original = (await a.ok("GET", f"/api/v1/rooms/{c.room_id}/posts"))["items"][-1]
    await b.ok("POST", f"/api/v1/posts/{original['id']}/shares", {"room_id": other_room["id"]})

    changed = await a.ok("PATCH", f"/api/v1/circles/{c.id}/membership", {"alias": "Quiet River"}, status=200)
    assert changed["alias"] == "Quiet River"
    taken = await b.call("PATCH", f"/api/v1/circles/{c.id}/membership", {"alias": "quiet river"})
    assert taken.status_code == 409

    seen: list[object] = [
        await b.ok("GET", f"/api/v1/rooms/{c.room_id}/posts"),
        await b.ok("GET", f"/api/v1/rooms/{other_room['id']}/posts"),
        await b.ok("GET", f"/api/v1/circles/{c.id}/members"),
        await b.ok("GET", f"/api/v1/posts/{reply_target['id']}"),
    ]
    for room in (c.room_id, other_room["id"]):
        ws = await b.ws()
        await ws.send({"op": "subscribe", "room_id": room, "since": 0})
        seen.append(await ws.recv_until(lambda f: f.get("type") == "subscribed"))
        seen.extend(ws.backlog)
    aliases = set(_aliases(seen))
    assert "Member1" not in aliases and "Quiet River" in aliases
    # The words "@Member1" in Member2's own post stay (they are Member2's words) but no longer link to anyone.
    assert f'data-membership=\\"{changed["membership_id"]}\\"' not in json.dumps(seen)
    assert '<span class=\\"mention\\">@Member1</span>' in json.dumps(seen)


def _aliases(value: object) -> Iterator[object]:
    """Every `alias` anywhere in a JSON-like value."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "alias":
                yield item
            yield from _aliases(item)
    elif isinstance(value, list):
        for item in value:
            yield from _aliases(item)


async def test_password_change_ends_other_sign_ins_and_their_sockets(api: ApiClient) -> None:
    user = await api.signup()
    other = (await api.http.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})).json()[
        "token"
    ]
    api.http.cookies.clear()
    other_ws = await api.ws(other)
    wrong = await user.call(
        "POST", "/api/v1/me/password", {"current_password": "nope nope nope", "new_password": "a brand new passphrase"}
    )
    assert wrong.status_code == 403, "401 would mean not signed in"
    weak = await user.call("POST", "/api/v1/me/password", {"current_password": PASSWORD, "new_password": "short"})
    assert weak.status_code == 400
    await user.ok(
        "POST",
        "/api/v1/me/password",
        {"current_password": PASSWORD, "new_password": "an entirely new passphrase"},
        status=204,
    )
    assert (await api.http.get("/api/v1/me", headers={"Authorization": f"Bearer {other}"})).status_code == 401
    assert (await user.call("GET", "/api/v1/me")).status_code == 200, "the sign-in that changed it stays"
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(other_ws.conn.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    login = await api.http.post(
        "/api/v1/auth/login", json={"email": user.email, "password": "an entirely new passphrase"}
    )
    assert login.status_code == 200


async def test_logout_closes_the_sockets_of_that_sign_in(api: ApiClient) -> None:
    user = await api.signup()
    ws = await user.ws()
    await user.ok("POST", "/api/v1/auth/logout", status=204)
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.conn.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    with pytest.raises(InvalidStatus):
        await user.ws()


async def test_export_holds_my_data_and_nobody_elses(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    mine = await a.post(c.room_id, "my words")
    await b.post(c.room_id, "their words", parent_id=mine["id"])
    await a.ok("PUT", f"/api/v1/posts/{mine['id']}/like")
    r = await a.call("GET", "/api/v1/me/export")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    data = r.json()
    assert data["account"]["email"] == a.email and data["account"]["name"] == a.name
    assert [p["body"] for p in data["posts"]] == ["my words"]
    assert data["memberships"][0]["alias"] == "Member1" and data["likes"] == [mine["id"]]
    assert [n["kind"] for n in data["notifications"]] == ["reply"]
    text = r.text
    for secret in (b.email, b.name, b.id, "their words"):
        assert secret not in text


@pytest.mark.parametrize("choice", ["anonymize", "remove"])
async def test_deleting_an_account(api: ApiClient, choice: str) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    post = await a.post(c.room_id, "before I go")
    watcher = await b.ws()
    await watcher.subscribe(c.room_id)
    wrong = await a.call("DELETE", "/api/v1/me", {"password": "not it at all", "posts": choice})
    assert wrong.status_code == 403
    await a.ok("DELETE", "/api/v1/me", {"password": PASSWORD, "posts": choice}, status=204)
    assert (await a.call("GET", "/api/v1/me")).status_code == 401
    listing = await b.ok("GET", f"/api/v1/rooms/{c.room_id}/posts")
    members = await b.ok("GET", f"/api/v1/circles/{c.id}/members")
    assert "Member1" not in json.dumps([listing, members])
    if choice == "remove":
        assert listing["items"] == []
        assert (await watcher.recv_until(is_event(c.room_id, "post.deleted")))["data"]["id"] == post["id"]
    else:
        assert [p["author"]["alias"].startswith("Former member") for p in listing["items"]] == [True]
        assert listing["items"][0]["body"] == "before I go"
    # The email is free again, and nothing of the old account remains attached to it.
    again = await api.http.post("/api/v1/accounts", json={"email": a.email, "password": PASSWORD, "name": a.name})
    assert again.status_code == 201


async def test_closing_a_circle_makes_it_read_only_then_gone(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    a = c.members[0]
    await a.post(c.room_id, "last words")
    assert (await a.call("POST", f"/api/v1/circles/{c.id}/close")).status_code == 403
    closed = await c.coach.ok("POST", f"/api/v1/circles/{c.id}/close", status=200)
    assert closed["closed_at"] and closed["delete_after"]
    assert "circle.closed" in [n["kind"] for n in await a.ok("GET", "/api/v1/notifications")]
    refused = await a.call("POST", f"/api/v1/rooms/{c.room_id}/posts", {"body": "hello?"})
    assert refused.status_code == 409 and "closed" in refused.json()["detail"]
    assert (await a.call("GET", f"/api/v1/rooms/{c.room_id}/posts")).status_code == 200
    newcomer = await api.signup()
    assert (await newcomer.call("POST", f"/api/v1/invites/{c.invite}/join", {"alias": "Late"})).status_code == 410
    await c.coach.ok("POST", f"/api/v1/circles/{c.id}/reopen", status=200)
    await a.post(c.room_id, "we are back")

    await c.coach.ok("POST", f"/api/v1/circles/{c.id}/close", status=200)
    from app.services.circles import purge_closed_circles
    from db.tables import Circle

    assert await purge_closed_circles() == 0, "nothing is deleted during the grace period"
    await Circle.update({Circle.delete_after: datetime.now(UTC) - timedelta(seconds=1)}).where(Circle.id == c.id)
    assert await purge_closed_circles() == 1
    assert (await c.coach.call("GET", f"/api/v1/circles/{c.id}")).status_code == 404
    assert (await a.call("GET", f"/api/v1/rooms/{c.room_id}/posts")).status_code == 404


# --- every limit, crossed ---------------------------------------------------------------------------------------------


async def test_contract_post_limit_allows_bursts_and_stops_at_a_hundred(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    a = c.members[0]
    burst = await asyncio.gather(
        *(a.call("POST", f"/api/v1/rooms/{c.room_id}/posts", {"body": f"b{i}"}) for i in range(20))
    )
    assert {r.status_code for r in burst} == {201}, "20 posts in 10 seconds are fine"
    for i in range(80):
        assert (await a.call("POST", f"/api/v1/rooms/{c.room_id}/posts", {"body": f"p{i}"})).status_code == 201
    limited = await a.call("POST", f"/api/v1/rooms/{c.room_id}/posts", {"body": "one too many"})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert "wait" in limited.json()["detail"]
    # The limit is per account: someone else in the room is not affected.
    other = await c.coach.call("POST", f"/api/v1/rooms/{c.room_id}/posts", {"body": "still here"})
    assert other.status_code == 201


@pytest.mark.parametrize(
    "settings_env",
    [
        {
            "KINDRED_GESTURES_PER_MINUTE": "3",
            "KINDRED_INVITES_PER_HOUR": "2",
            "KINDRED_JOINS_PER_HOUR": "1",
            "KINDRED_REPORTS_PER_HOUR": "1",
        }
    ],
)
async def test_gesture_invite_join_and_report_limits(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    a = c.members[0]
    post = await c.coach.post(c.room_id, "like me")
    codes = [(await a.call("PUT", f"/api/v1/posts/{post['id']}/like")).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    codes = [(await c.coach.call("POST", f"/api/v1/circles/{c.id}/invites", {})).status_code for _ in range(2)]
    assert codes == [201, 429], "make_circle already made one invite this hour"
    second = await c.coach.ok("POST", "/api/v1/circles", {"name": "Two", "commonality": "two"})
    joiner = await api.signup()
    invite = await c.coach.call("POST", f"/api/v1/circles/{second['id']}/invites", {})
    assert invite.status_code == 429
    assert (await joiner.call("POST", f"/api/v1/invites/{c.invite}/join", {"alias": "J1"})).status_code == 201
    assert (await joiner.call("POST", "/api/v1/invites/nope/join", {"alias": "J2"})).status_code == 429
    other = await c.coach.post(c.room_id, "report me")
    assert (await a.call("POST", f"/api/v1/posts/{other['id']}/reports", {"reason": "x"})).status_code == 201
    another = await c.coach.post(c.room_id, "and me")
    assert (await a.call("POST", f"/api/v1/posts/{another['id']}/reports", {"reason": "y"})).status_code == 429


@pytest.mark.parametrize("settings_env", [{"KINDRED_LOGINS_PER_ADDRESS": "6", "KINDRED_SIGNUPS_PER_ADDRESS": "3"}])
async def test_sign_in_and_sign_up_throttles(api: ApiClient) -> None:
    user = await api.signup()  # one sign-up and one sign-in
    for _ in range(4):
        r = await api.http.post("/api/v1/auth/login", json={"email": user.email, "password": "wrong password!"})
        assert r.status_code == 401
    r = await api.http.post("/api/v1/auth/login", json={"email": "someone@else.org", "password": "wrong password!"})
    assert r.status_code == 401
    limited = await api.http.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert limited.status_code == 429 and limited.headers["retry-after"]
    for i in range(2):
        r = await api.http.post("/api/v1/accounts", json={"email": f"n{i}@x.org", "password": PASSWORD, "name": "N"})
        assert r.status_code == 201
    r = await api.http.post("/api/v1/accounts", json={"email": "n9@x.org", "password": PASSWORD, "name": "N"})
    assert r.status_code == 429


async def test_sign_in_attempts_per_account_are_throttled(api: ApiClient) -> None:
    user = await api.signup()
    for _ in range(10):
        r = await api.http.post("/api/v1/auth/login", json={"email": user.email, "password": "wrong password!"})
        assert r.status_code == 401
    r = await api.http.post("/api/v1/auth/login", json={"email": user.email.upper(), "password": PASSWORD})
    assert r.status_code == 429, "ten failures per account and address per five minutes, whatever the spelling"
    other = await api.signup()
    assert (await other.call("GET", "/api/v1/me")).status_code == 200


@pytest.mark.parametrize("settings_env", [{"KINDRED_SOCKETS_PER_ACCOUNT": "2"}])
async def test_socket_cap_per_account(api: ApiClient) -> None:
    user = await api.signup()
    await user.ws()
    await user.ws()
    with pytest.raises(InvalidStatus) as refused:
        await user.ws()
    assert refused.value.response.status_code == 403
