"""Posting over the socket (issue 20), on both backends: the same rules, rights, limits and idempotency as
`POST /rooms/{room_id}/posts`, the same fan-out, and refusals that carry the HTTP API's status and message."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from tests.client import ApiClient, Frame, Match, User, WsClient, make_circle

pytestmark = pytest.mark.anyio


def is_event(room_id: str) -> Match:
    return lambda f: f.get("type") == "event" and f.get("room_id") == room_id


def answers(client_id: str) -> Match:
    return lambda f: f.get("type") in ("posted", "error") and f.get("client_id") == client_id


async def ws_post(ws: WsClient, room_id: str, body: str, client_id: str | None = None, **extra: Any) -> Frame:
    """Send a post op and return its answer: `posted` or `error`, matched by client_id."""
    cid = client_id or f"c-{uuid.uuid4().hex[:12]}"
    await ws.send({"op": "post", "room_id": room_id, "body": body, "client_id": cid, **extra})
    return await ws.recv_until(answers(cid))


async def http_refusal(user: User, room_id: str, body: dict[str, Any]) -> tuple[int, str]:
    """The HTTP API's status and message for the same request (with `extra`, where it names the field, appended)."""
    response = await user.call("POST", f"/api/v1/rooms/{room_id}/posts", body)
    assert response.status_code >= 400, response.text
    answer = response.json()
    return response.status_code, answer["detail"] + (f" {answer['extra']}" if answer.get("extra") else "")


async def still_open(ws: WsClient) -> None:
    await ws.send({"op": "ping"})
    assert await ws.recv_until(lambda f: f.get("type") == "pong") == {"type": "pong"}


async def test_a_socket_post_is_created_and_fans_out_like_an_http_post(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    wa, wb = await a.ws(), await b.ws()
    await wa.subscribe(c.room_id)
    await wb.subscribe(c.room_id)

    ack = await ws_post(wa, c.room_id, "over the *socket*", "first", content_note="work", reply_wish="listen")
    assert ack["type"] == "posted" and ack["client_id"] == "first" and set(ack) == {"type", "client_id", "post"}
    post = ack["post"]
    assert post["body"] == "over the *socket*" and "<em>socket</em>" in post["html"]
    assert (post["seq"], post["content_note"], post["reply_wish"]) == (1, "work", "listen")
    assert post["author"]["alias"] == "Member1"
    expected = {"type": "event", "room_id": c.room_id, "seq": 1, "event": "post.created", "data": post}
    assert await wb.recv_until(is_event(c.room_id)) == expected
    # The poster gets its own event on its subscription, as after an HTTP post.
    assert await wa.recv_until(is_event(c.room_id)) == expected
    # What the API reads back is what the ack said.
    assert (await b.ok("GET", f"/api/v1/posts/{post['id']}"))["body"] == post["body"]

    # A reply, by the other member; and an HTTP post in between: one seq sequence, in order, for everyone.
    reply = await ws_post(wb, c.room_id, "a reply", "reply-1", parent_id=post["id"], kind="question")
    assert reply["type"] == "posted" and reply["post"]["parent_id"] == post["id"]
    await a.post(c.room_id, "over HTTP")
    frames = await wa.events(c.room_id, 2)
    assert [(f["seq"], f["data"]["parent_id"]) for f in frames] == [(2, post["id"]), (3, None)]
    assert frames[0]["data"] == reply["post"]
    # Posts sent back to back on one socket are written in the order sent.
    for i in range(5):
        await wa.send({"op": "post", "room_id": c.room_id, "body": f"burst {i}", "client_id": f"burst-{i}"})
    acks = [await wa.recv_until(answers(f"burst-{i}")) for i in range(5)]
    assert [f["post"]["seq"] for f in acks] == [4, 5, 6, 7, 8]
    assert [f["data"]["body"] for f in await wb.events(c.room_id, 7)][2:] == [f"burst {i}" for i in range(5)]
    # A notification for the reply reached the parent's author, as over HTTP.
    note = await wa.recv_until(lambda f: f.get("type") == "notification")
    assert note["data"]["kind"] == "reply" and note["data"]["post_id"] == reply["post"]["id"]


async def test_a_repeated_client_id_returns_the_same_post_and_one_event(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    wa, wb = await a.ws(), await b.ws()
    await wb.subscribe(c.room_id)
    first = await ws_post(wa, c.room_id, "only once", "same-id")
    again = await ws_post(wa, c.room_id, "only once", "same-id")
    assert again == first
    # Sockets and HTTP share idempotency: the same member, the same client_id, the same post.
    over_http = await a.post(c.room_id, "only once", client_id="same-id")
    assert over_http == first["post"]
    # Another member may use the same client_id: it is their own.
    theirs = await ws_post(wb, c.room_id, "mine", "same-id")
    assert theirs["post"]["id"] != first["post"]["id"]
    frames = await wb.events(c.room_id, 2)
    assert [(f["seq"], f["data"]["id"]) for f in frames] == [(1, first["post"]["id"]), (2, theirs["post"]["id"])]
    listing = await a.ok("GET", f"/api/v1/rooms/{c.room_id}/posts")
    assert [p["body"] for p in listing["items"]] == ["mine", "only once"]


async def test_outsiders_and_removed_members_get_the_http_refusal(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    outsider = await api.signup()
    wo = await outsider.ws()
    refused = await ws_post(wo, c.room_id, "let me in", "out-1")
    status, detail = await http_refusal(outsider, c.room_id, {"body": "let me in"})
    assert refused == {
        "type": "error",
        "code": "not_found",
        "detail": detail,
        "op": "post",
        "status": status,
        "client_id": "out-1",
        "room_id": c.room_id,
    }
    assert status == 404
    unknown = await ws_post(wo, str(uuid.uuid4()), "anyone?", "out-2")
    assert (unknown["status"], unknown["detail"]) == (404, detail), "unknown and foreign rooms look the same"
    not_an_id = await ws_post(wo, "not-a-room", "anyone?", "out-3")
    assert (not_an_id["status"], not_an_id["detail"]) == (404, detail)
    await still_open(wo)

    # A member removed while the socket is open: refused at once, like their HTTP requests.
    wb = await b.ws()
    await wb.subscribe(c.room_id)
    assert (await ws_post(wb, c.room_id, "while a member", "b-1"))["type"] == "posted"
    me = await b.ok("GET", "/api/v1/me")
    await c.coach.ok("DELETE", f"/api/v1/circles/{c.id}/members/{me['memberships'][0]['membership_id']}")
    gone = await ws_post(wb, c.room_id, "after removal", "b-2")
    assert (gone["type"], gone["status"], gone["code"], gone["detail"]) == ("error", 404, "not_found", detail)
    bodies = [p["body"] for p in (await a.ok("GET", f"/api/v1/rooms/{c.room_id}/posts"))["items"]]
    assert bodies == ["while a member"]
    await still_open(wb)


@pytest.mark.parametrize("settings_env", [{"KINDRED_POSTS_PER_MINUTE": "3"}])
async def test_socket_posts_spend_the_http_rate_limit(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    a = c.members[0]
    ws = await a.ws()
    await a.post(c.room_id, "one over HTTP")
    assert (await ws_post(ws, c.room_id, "two over the socket", "two"))["type"] == "posted"
    await a.post(c.room_id, "three over HTTP")
    limited = await ws_post(ws, c.room_id, "four", "four")
    over_http = await a.call("POST", f"/api/v1/rooms/{c.room_id}/posts", {"body": "four"})
    assert over_http.status_code == 429
    assert (limited["status"], limited["code"], limited["detail"]) == (429, "rate_limited", over_http.json()["detail"])
    assert limited["client_id"] == "four" and 1 <= limited["retry_after"] <= 61
    assert limited["retry_after"] <= int(over_http.headers["retry-after"]) + 1
    assert len((await a.ok("GET", f"/api/v1/rooms/{c.room_id}/posts"))["items"]) == 3
    await still_open(ws)


async def test_bad_post_frames_get_clear_errors_and_the_socket_stays_open(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    ws = await a.ws()
    await ws.subscribe(c.room_id)
    root = (await ws_post(ws, c.room_id, "a root", "root"))["post"]
    # Refused by the service: the HTTP API's status and message, word for word.
    service_refusals: list[tuple[str, dict[str, Any]]] = [
        ("   ", {}),
        ("x" * 20_001, {}),
        ("a reply", {"parent_id": str(uuid.uuid4())}),
        (
            "not an experiment",
            {"experiment": {"assumption": "a", "belief_before": 5, "action": "b", "prediction": "c"}},
        ),
        ("", {"kind": "experiment", "experiment": {"assumption": "a", "belief_before": 500, "action": "b"}}),
    ]
    for body, extra in service_refusals:
        cid = f"bad-{uuid.uuid4().hex[:8]}"
        refused = await ws_post(ws, c.room_id, body, cid, **extra)
        status, detail = await http_refusal(a, c.room_id, {"body": body, **extra})
        assert refused["type"] == "error" and refused["op"] == "post" and refused["client_id"] == cid, refused
        assert refused["status"] == status and status in (400, 422), (extra, refused, detail)
        if "experiment" not in extra or extra.get("kind") != "experiment":
            assert refused["detail"] == detail, (refused, detail)
        else:
            # msgspec's own check: HTTP names the field in `extra`, the frame in `detail`.
            assert "$.experiment.belief_before" in refused["detail"] and "belief_before" in detail, (refused, detail)
    # Refused as a frame: the field is named, the op and client_id are echoed when the frame has them.
    frame_refusals: list[tuple[dict[str, Any], str]] = [
        ({"op": "post", "room_id": c.room_id, "body": 5, "client_id": "t1"}, "$.body"),
        ({"op": "post", "room_id": c.room_id, "body": "hi"}, "client_id"),
        ({"op": "post", "room_id": c.room_id, "body": "hi", "client_id": ""}, "$.client_id"),
        ({"op": "post", "room_id": c.room_id, "body": "hi", "client_id": "t2", "kind": "rant"}, "$.kind"),
        ({"op": "post", "room_id": c.room_id, "body": "hi", "client_id": "t3", "content_note": "n" * 81}, "content"),
        ({"op": "post", "room_id": c.room_id, "body": "hi", "client_id": "t4", "reply_wish": "fix"}, "reply_wish"),
        ({"op": "post", "body": "hi", "client_id": "t5"}, "room_id"),
        ({"op": "post", "room_id": c.room_id, "body": "hi", "client_id": "t6", "mood": "x"}, "mood"),
    ]
    for raw, field in frame_refusals:
        await ws.send(raw)
        frame = await ws.recv_until(lambda f: f.get("type") == "error")
        assert frame["code"] == "bad_frame" and frame["op"] == "post" and frame["status"] == 400, (raw, frame)
        assert field in frame["detail"], (raw, frame)
        assert frame.get("client_id") == raw.get("client_id"), (raw, frame)
    # None of it was written, nothing reached the room, and the socket still posts.
    assert (await ws_post(ws, c.room_id, "still here", "after", parent_id=root["id"]))["type"] == "posted"
    frames = await ws.events(c.room_id, 2)
    assert [f["data"]["body"] for f in frames] == ["a root", "still here"]
    bodies = [p["body"] for p in (await b.ok("GET", f"/api/v1/rooms/{c.room_id}/posts"))["items"]]
    assert bodies == ["a root"]


async def test_a_revoked_sign_in_is_refused_even_without_its_signed_out_frame(api: ApiClient) -> None:
    """The token is revoked as a lost bus message would leave it (no `signed_out` arrives): the socket's next post
    closes it (1008), as `signed_out` would have, and writes nothing."""
    from app.auth import tokens

    c = await make_circle(api, members=2)
    a, b = c.members
    ws = await a.ws()
    assert (await ws_post(ws, c.room_id, "before", "before"))["type"] == "posted"
    principal = await tokens.resolve(a.token, "bearer")
    assert principal is not None
    await tokens.revoke(principal.token_id)
    await ws.send({"op": "post", "room_id": c.room_id, "body": "after", "client_id": "after"})
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    bodies = [p["body"] for p in (await b.ok("GET", f"/api/v1/rooms/{c.room_id}/posts"))["items"]]
    assert bodies == ["before"]
