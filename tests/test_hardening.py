"""Issue 12: the classes of defect a hostile walk found, each held in place over HTTP and websockets on both
backends. Every "refused" check sits beside a control that must succeed, so a test cannot pass by everything
failing."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from typing import Any

import httpx
import pytest
import websockets

from tests.client import PASSWORD, ApiClient, Circle, Match, User, make_circle
from tests.conftest import Server
from tests.test_dropins import is_dropin_event, membership_id, schedule

pytestmark = pytest.mark.anyio


def is_event(room_id: str, name: str) -> Match:
    return lambda f: f.get("type") == "event" and f["room_id"] == room_id and f["event"] == name


async def replay(user: User, room_id: str) -> list[dict[str, Any]]:
    """Everything a fresh `subscribe` with `since: 0` returns, up to its `subscribed` frame."""
    ws = await user.ws()
    await ws.send({"op": "subscribe", "room_id": room_id, "since": 0})
    frames: list[dict[str, Any]] = []
    while True:
        frame = await ws.recv()
        if frame.get("type") == "subscribed" and frame["room_id"] == room_id:
            await ws.close()
            return frames
        if frame.get("type") == "event":
            frames.append(frame)


# --- 1. malformed bodies ------------------------------------------------------------------------------------------

BAD_BODIES = {
    "invalid UTF-8 in a string": (b'{"password": "\xff\xfe", "email": "a@b.c"}', "UTF-8"),
    "nesting 1000 deep": (b"[" * 1000 + b"]" * 1000, "nests deeper"),
    "nesting inside an object": (b'{"body": ' + b"[" * 200 + b"]" * 200 + b"}", "nests deeper"),
}


async def test_every_body_taking_endpoint_answers_malformed_json_with_400(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    post = await c.members[0].post(c.room_id, "target")
    schema = (await api.http.get("/schema/openapi.json")).json()
    ids = {"circle_id": c.id, "room_id": c.room_id, "post_id": post["id"], "code": c.invite}
    tried = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if "requestBody" not in operation:
                continue
            url = path
            for name in ids:
                url = url.replace("{" + name + "}", ids[name])
            url = url.replace("{membership_id}", str(uuid.uuid4())).replace("{dropin_id}", str(uuid.uuid4()))
            url = url.replace("{report_id}", str(uuid.uuid4())).replace("{id}", str(uuid.uuid4()))
            for label, (body, words) in BAD_BODIES.items():
                r = await api.http.request(
                    method.upper(),
                    url,
                    content=body,
                    headers={"Authorization": f"Bearer {c.coach.token}", "Content-Type": "application/json"},
                )
                assert r.status_code == 400, f"{method} {path} with {label}: {r.status_code} {r.text}"
                assert words in r.json()["detail"], (path, label, r.text)
                tried += 1
    assert tried >= 3 * 20, "the walk must cover the API's body-taking operations"
    # Signed out too: sign-in and sign-up decode their bodies before anything else.
    for path in ("/api/v1/auth/login", "/api/v1/accounts"):
        r = await api.http.post(path, content=BAD_BODIES["invalid UTF-8 in a string"][0])
        assert r.status_code == 400 and "UTF-8" in r.json()["detail"]
    # Control: the same endpoint with a well-formed body works.
    r = await api.http.post("/api/v1/auth/login", json={"email": c.coach.email, "password": PASSWORD})
    assert r.status_code == 200


async def test_malformed_websocket_frames_are_refused_and_the_socket_lives_on(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    ws = await c.members[0].ws()
    for frame in (b'{"op":"subscribe","room_id":"\xff"}', b"[" * 5000, '{"op":"ping","x":' + "[" * 5000):
        await ws.conn.send(frame)
        error = await ws.recv_until(lambda f: f.get("type") == "error")
        assert error["code"] == "bad_frame"
    await ws.send({"op": "ping"})
    assert (await ws.recv_until(lambda f: f.get("type") in ("pong", "error")))["type"] == "pong"


# --- 2, 3. what embeds a post follows it --------------------------------------------------------------------------


async def _live_dropin(c: Circle) -> dict[str, Any]:
    created = await schedule(c)
    await c.coach.ok("POST", f"/api/v1/dropins/{created['id']}/start", status=200)
    return created


async def test_a_drop_in_spotlight_follows_its_post_in_the_log_and_live(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    dropin = await _live_dropin(c)
    room = dropin["room_id"]
    post = await a.post(room, "the words at first")
    await c.coach.ok("PUT", f"/api/v1/dropins/{dropin['id']}/spotlight", {"post_id": post["id"]}, status=200)
    watcher = await b.ws()
    await watcher.subscribe(room)

    await a.ok("PATCH", f"/api/v1/posts/{post['id']}", {"body": "the words now"})
    fresh = await watcher.recv_until(lambda f: is_dropin_event(room)(f) and f["data"]["spotlight_post"] is not None)
    assert fresh["data"]["spotlight_post"]["body"] == "the words now"
    log = json.dumps(await replay(b, room))
    assert "the words now" in log and "the words at first" not in log

    await c.coach.ok("PUT", f"/api/v1/posts/{post['id']}/hidden", {"reason": "names"})
    log = json.dumps(await replay(b, room))
    assert "the words now" not in log, "a hidden post's text comes back through no drop-in state"
    await c.coach.ok("DELETE", f"/api/v1/posts/{post['id']}/hidden", status=200)
    assert "the words now" in json.dumps(await replay(b, room))  # control: restored, it is there again

    await a.ok("DELETE", f"/api/v1/posts/{post['id']}", status=204)
    cleared = await watcher.recv_until(lambda f: is_dropin_event(room)(f) and f["data"]["spotlight"] is None)
    assert cleared["data"]["spotlight_post"] is None
    assert "the words now" not in json.dumps(await replay(b, room))
    assert (await b.ok("GET", f"/api/v1/dropins/{dropin['id']}"))["spotlight"] is None


async def test_a_share_follows_its_original(api: ApiClient) -> None:
    c = await make_circle(api, members=3)
    author, sharer, peer = c.members
    wins = await c.coach.ok("POST", f"/api/v1/circles/{c.id}/rooms", {"name": "Wins"})
    original = await author.post(c.room_id, "I said no, first version")
    copy = await sharer.ok("POST", f"/api/v1/posts/{original['id']}/shares", {"room_id": wins["id"]})
    assert copy["body"] == original["body"] and copy["shared_from"]["post_id"] == original["id"]

    await author.ok("PATCH", f"/api/v1/posts/{original['id']}", {"body": "I said no, as I meant it"})
    assert (await peer.ok("GET", f"/api/v1/posts/{copy['id']}"))["body"] == "I said no, as I meant it"
    log = json.dumps(await replay(peer, wins["id"]))
    assert "as I meant it" in log and "first version" not in log
    refused = await sharer.call("PATCH", f"/api/v1/posts/{copy['id']}", {"body": "other words"})
    assert refused.status_code == 409

    await c.coach.ok("PUT", f"/api/v1/posts/{original['id']}/hidden", {"reason": "names"})
    for viewer in (peer, sharer):
        seen = await viewer.ok("GET", f"/api/v1/posts/{copy['id']}")
        assert seen["hidden"] is True and seen["body"] == "", "the sharer's copy holds someone else's hidden words"
    assert "as I meant it" not in json.dumps(await replay(peer, wins["id"]))
    page = await peer.call("GET", f"/rooms/{wins['id']}")
    assert page.status_code == 200 and "as I meant it" not in page.text
    assert (await c.coach.ok("GET", f"/api/v1/posts/{copy['id']}"))["body"] == "I said no, as I meant it"
    assert (await c.coach.call("DELETE", f"/api/v1/posts/{copy['id']}/hidden")).status_code == 409
    await c.coach.ok("DELETE", f"/api/v1/posts/{original['id']}/hidden", status=200)
    assert (await peer.ok("GET", f"/api/v1/posts/{copy['id']}"))["body"] == "I said no, as I meant it"

    await author.ok("DELETE", f"/api/v1/posts/{original['id']}", status=204)
    assert (await peer.call("GET", f"/api/v1/posts/{copy['id']}")).status_code in (404, 410) or (
        await peer.ok("GET", f"/api/v1/posts/{copy['id']}")
    )["deleted"]
    assert "as I meant it" not in json.dumps(await replay(peer, wins["id"]))
    assert "as I meant it" not in (await peer.call("GET", f"/rooms/{wins['id']}")).text


# --- 4. erased accounts -------------------------------------------------------------------------------------------


async def test_an_erased_account_never_authenticates(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    gone = c.members[0]
    other = await api.signup()
    await gone.ok("DELETE", "/api/v1/me", {"password": PASSWORD})
    from app.auth.passwords import DUMMY_PASSWORD

    for password in (DUMMY_PASSWORD, PASSWORD, ""):
        r = await api.http.post(
            "/api/v1/auth/login", json={"email": f"deleted-{gone.id}@deleted.invalid", "password": password}
        )
        assert r.status_code in (400, 401), (password, r.text)
    assert (await gone.call("GET", "/api/v1/me")).status_code == 401
    assert (await gone.call("GET", "/api/v1/me/export")).status_code == 401
    # Control: a live account signs in and reads its export.
    r = await api.http.post("/api/v1/auth/login", json={"email": other.email, "password": PASSWORD})
    assert r.status_code == 200
    assert (await other.call("GET", "/api/v1/me/export")).status_code == 200


# --- 5. look-alike aliases ----------------------------------------------------------------------------------------


async def test_look_alike_aliases_are_refused_in_words(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    first = c.members[0]
    await first.ok("PATCH", f"/api/v1/circles/{c.id}/membership", {"alias": "Lantern"})
    for alias, words in (
        ("Lаntern", "looks too much like"),  # Cyrillic а
        ("Ｌantern", "taken"),  # fullwidth: NFKC makes it the same letters
        ("LANTERN", "taken"),
        ("Coach Dаna", "your coach"),
        ("C0ach Dana", "your coach"),
    ):
        newcomer = await api.signup()
        r = await newcomer.call("POST", f"/api/v1/invites/{c.invite}/join", {"alias": alias})
        assert r.status_code == 409 and words in r.json()["detail"], (alias, r.text)
    # A former member's alias stays reserved, look-alikes included.
    leaver = await api.signup()
    await leaver.ok("POST", f"/api/v1/invites/{c.invite}/join", {"alias": "Harbour"}, status=201)
    await leaver.ok("DELETE", f"/api/v1/circles/{c.id}/members/{await membership_id(leaver, c.id)}", status=204)
    r = await (await api.signup()).call("POST", f"/api/v1/invites/{c.invite}/join", {"alias": "Hаrbour"})
    assert r.status_code == 409
    # Changing to a look-alike is refused the same way; a different name is welcome (control).
    r = await first.call("PATCH", f"/api/v1/circles/{c.id}/membership", {"alias": "Coach Dаna"})
    assert r.status_code == 409 and "your coach" in r.json()["detail"]
    joined = await (await api.signup()).ok(
        "POST", f"/api/v1/invites/{c.invite}/join", {"alias": "Lighthouse"}, status=201
    )
    assert joined["alias"] == "Lighthouse"


# --- 6. replay amplification --------------------------------------------------------------------------------------

SMALL_QUEUE = {"KINDRED_WS_SEND_QUEUE_BYTES": "65536", "KINDRED_POSTS_PER_MINUTE": "1000"}


@pytest.mark.parametrize("settings_env", [SMALL_QUEUE])
async def test_a_replay_streams_within_the_byte_bound_and_a_hoarder_is_cut_off(api: ApiClient, server: Server) -> None:
    c = await make_circle(api, members=1)
    writer = c.members[0]
    big = "x" * 15_000
    for i in range(20):  # ~20 x 30 KB of frames (body and html): far beyond the 64 KB bound
        await writer.post(c.room_id, f"{i} {big}")

    # A reader gets all of it: the replay streams as it drains instead of being queued whole.
    frames = await replay(writer, c.room_id)
    assert [f["seq"] for f in frames] == list(range(1, 21))

    # A socket that asks again and again and never reads: its replays wait for it to drain, so the server holds
    # at most a quarter of the bound (plus one frame) for it, however many it asks for.
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn = await websockets.connect(
        server.ws_url, sock=sock, additional_headers={"Authorization": f"Bearer {writer.token}"}, max_size=2**24
    )
    conn.transport.pause_reading()
    for _ in range(40):
        await conn.send(json.dumps({"op": "subscribe", "room_id": c.room_id, "since": 0}))

    def held() -> list[int]:
        return [sc.queued_bytes for conns in server.hub.accounts.values() for sc in conns]

    for _ in range(1200):  # waits on the server's state (the kernel's buffers filled, the queue in use), not a clock
        if max(held(), default=0) > 65536 // 4:
            break
        await asyncio.sleep(0.05)
    assert max(held()) > 65536 // 4, "the hoarder's replay reached the point where it must wait"
    assert max(held()) <= 65536 // 4 + 40_000, held()
    conn.transport.abort()
    for _ in range(400):
        if max(held(), default=0) == 0:
            break
        await asyncio.sleep(0.05)
    assert max(held(), default=0) == 0, "the aborted socket is let go"


# --- 7. Host header -----------------------------------------------------------------------------------------------


async def test_the_host_header_is_parsed_strictly(api: ApiClient, server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        for host in (f"127.0.0.1:{server.port}@evil.example", "evil.example", "127.0.0.1:99999", "127.0.0.1 x", "a/b"):
            r = await client.get("/signin", headers={"Host": host})
            assert r.status_code == 400, (host, r.status_code)
        assert (await client.get("/signin", headers={"Host": f"127.0.0.1:{server.port}"})).status_code == 200
        assert (await client.get("/signin", headers={"Host": f"[::1]:{server.port}"})).status_code == 200


# --- 8. a hidden post takes no gesture from peers -----------------------------------------------------------------


async def test_hidden_posts_take_no_gestures_replies_or_reports_from_peers(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    author, peer = c.members
    hidden = await author.post(c.room_id, "names were here")
    shown = await author.post(c.room_id, "all fine")
    await c.coach.ok("PUT", f"/api/v1/posts/{hidden['id']}/hidden", {"reason": "names"})
    attempts = (
        ("PUT", "/api/v1/posts/{}/like", None),
        ("POST", "/api/v1/posts/{}/reports", {"reason": "still there"}),
        ("POST", "/api/v1/posts/{}/shares", {"room_id": c.room_id}),
    )
    for method, path, body in attempts:
        r = await peer.call(method, path.format(hidden["id"]), body)
        assert r.status_code == 404, (path, r.text)
    r = await peer.call("POST", f"/api/v1/rooms/{c.room_id}/posts", {"body": "reply", "parent_id": hidden["id"]})
    assert r.status_code == 404
    # Control: the same gestures on a visible post work.
    assert (await peer.call("PUT", f"/api/v1/posts/{shown['id']}/like")).status_code == 200
    assert (await peer.call("POST", f"/api/v1/posts/{shown['id']}/reports", {"reason": "x"})).status_code == 201
    await peer.post(c.room_id, "reply", parent_id=shown["id"])
    kinds = [n["kind"] for n in await author.ok("GET", "/api/v1/notifications")]
    assert kinds.count("like") == 1, "only the visible post's like reached its author"


# --- 9. a removed member's hand -----------------------------------------------------------------------------------


async def test_a_removed_members_hand_is_lowered_everywhere(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    stays, goes = c.members
    dropin = await _live_dropin(c)
    did, room = dropin["id"], dropin["room_id"]
    coach_ws = await c.coach.ws()
    await coach_ws.subscribe(room)
    await goes.ok("PUT", f"/api/v1/dropins/{did}/hand")
    await stays.ok("PUT", f"/api/v1/dropins/{did}/hand")
    await c.coach.ok("DELETE", f"/api/v1/circles/{c.id}/members/{await membership_id(goes, c.id)}", status=204)
    frame = await coach_ws.recv_until(
        lambda f: (
            f.get("type") == "presence" and f["room_id"] == room and [h["alias"] for h in f["hands"]] == ["Member1"]
        )
    )
    assert "Member2" not in json.dumps(frame["hands"])
    called = await c.coach.ok("POST", f"/api/v1/dropins/{did}/hands/next", status=200)
    assert called["hands"] == []  # Member1 (the control) was called; nobody else was waiting
    assert (await c.coach.call("POST", f"/api/v1/dropins/{did}/hands/next")).status_code == 409


# --- 10. the smaller ones -----------------------------------------------------------------------------------------


async def test_alias_changes_need_a_voice_and_an_open_circle(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    muted, other = c.members
    mid = await membership_id(muted, c.id)
    await c.coach.ok("PUT", f"/api/v1/circles/{c.id}/members/{mid}/mute", {"minutes": 30, "reason": "pause"})
    r = await muted.call("PATCH", f"/api/v1/circles/{c.id}/membership", {"alias": "Someone New"})
    assert r.status_code == 403
    await other.ok("PATCH", f"/api/v1/circles/{c.id}/membership", {"alias": "Fresh Start"})  # control
    post = await other.post(c.room_id, "a post to report")
    await c.coach.ok("POST", f"/api/v1/circles/{c.id}/close", status=200)
    assert (await other.call("PATCH", f"/api/v1/circles/{c.id}/membership", {"alias": "Later"})).status_code == 409
    r = await muted.call("POST", f"/api/v1/posts/{post['id']}/reports", {"reason": "x"})
    assert r.status_code == 409 and "closed" in r.json()["detail"]


async def test_private_responses_are_not_stored_and_static_files_are(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    member = c.members[0]
    for path in ("/api/v1/me", "/api/v1/me/export", "/api/v1/notifications"):
        assert (await member.call("GET", path)).headers.get("cache-control") == "no-store", path
    cookies = {"kindred_session": member.token}
    async with httpx.AsyncClient(base_url=api.base_url, cookies=cookies) as browser:
        for path in ("/", f"/circles/{c.id}", f"/rooms/{c.room_id}", "/notifications"):
            r = await browser.get(path)
            assert r.status_code == 200 and r.headers.get("cache-control") == "no-store", path
        static = await browser.get("/static/htmx.min.js")
        assert static.status_code == 200 and static.headers.get("cache-control") != "no-store"


async def test_a_csrf_token_is_good_for_its_own_session_only(api: ApiClient) -> None:
    """Double submit with a planted pair: a valid token and cookie from another session (or from before sign-in)
    are refused; the next page load issues one for the current session, which works."""
    c = await make_circle(api, members=2)
    victim, attacker = c.members
    body = {"body": "posted from a page", "client_id": "csrf-1"}

    async def token_for(session: str | None) -> str:
        cookies = {"kindred_session": session} if session else {}
        async with httpx.AsyncClient(base_url=api.base_url, cookies=cookies) as browser:
            page = await browser.get("/signin" if session is None else "/")
            token = page.cookies.get("kindred_csrf")
            assert token, "a page load issues a CSRF cookie"
            return token

    planted = [await token_for(attacker.token), await token_for(None)]
    cookies = {"kindred_session": victim.token}
    async with httpx.AsyncClient(base_url=api.base_url, cookies=cookies) as browser:
        for token in planted:
            browser.cookies.delete("kindred_csrf")
            browser.cookies.set("kindred_csrf", token)
            r = await browser.post(f"/api/v1/rooms/{c.room_id}/posts", json=body, headers={"x-csrftoken": token})
            assert r.status_code == 403 and "CSRF" in r.json()["detail"], r.text
            # The page load that follows replaces the planted cookie with the victim's own.
            page = await browser.get("/")
            own = page.cookies.get("kindred_csrf")
            assert own and own != token
        r = await browser.post(f"/api/v1/rooms/{c.room_id}/posts", json=body, headers={"x-csrftoken": own or ""})
        assert r.status_code == 201, r.text
    # No post was written by the refused attempts: the room holds exactly the one that passed.
    posts = await victim.ok("GET", f"/api/v1/rooms/{c.room_id}/posts")
    assert [p["body"] for p in posts["items"]].count("posted from a page") == 1


@pytest.mark.parametrize("settings_env", [{"KINDRED_OPS_TOKEN": "an operator's token"}])
async def test_healthz_keeps_its_counters_for_an_operator(api: ApiClient) -> None:
    public = (await api.http.get("/healthz")).json()
    assert public["status"] in ("ok", "degraded") and set(public) == {"status", "database", "bus"}
    wrong = (await api.http.get("/healthz", headers={"Authorization": "Bearer guess"})).json()
    assert "stats" not in wrong
    operator = (await api.http.get("/healthz", headers={"Authorization": "Bearer an operator's token"})).json()
    assert {"sockets", "rooms", "stats"} <= set(operator)


async def test_liking_again_notifies_once(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    author, fan = c.members
    post = await author.post(c.room_id, "a small win")
    other = await author.post(c.room_id, "another")
    for _ in range(3):
        await fan.ok("PUT", f"/api/v1/posts/{post['id']}/like")
        await fan.ok("DELETE", f"/api/v1/posts/{post['id']}/like", status=200)
    await fan.ok("PUT", f"/api/v1/posts/{other['id']}/like")  # control: a like of another post does notify
    notes = [n for n in await author.ok("GET", "/api/v1/notifications") if n["kind"] == "like"]
    assert sorted(n["post_id"] for n in notes) == sorted([post["id"], other["id"]])


async def test_calendar_files_keep_to_rfc_5545(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    dropin = await schedule(c, agenda="first line\rBEGIN:VALARM\r\nsecond\x07 line " + "é" * 80)
    cookies = {"kindred_session": c.members[0].token}
    async with httpx.AsyncClient(base_url=api.base_url, cookies=cookies) as browser:
        r = await browser.get(f"/dropins/{dropin['id']}/calendar.ics")
    assert r.status_code == 200 and r.headers["content-type"].count("charset") == 1
    lines = r.content.split(b"\r\n")
    assert b"\r" not in b"".join(lines) and b"\n" not in b"".join(lines) and b"\x07" not in r.content
    assert all(len(line) <= 75 for line in lines)
    assert not any(line.startswith(b"BEGIN:VALARM") for line in lines)
    unfolded = r.content.replace(b"\r\n ", b"").decode()
    assert "DESCRIPTION:first line\\nBEGIN:VALARM\\nsecond line " + "é" * 80 in unfolded


@pytest.mark.parametrize("settings_env", [{"KINDRED_PRESENCE_JITTER": "1.5"}])
async def test_presence_with_jitter_still_tells_who_is_here_in_each_circle(api: ApiClient) -> None:
    """With the presence side channel closed by a random delay per room (the unit test shows the delays are
    independent), presence still arrives: one socket of Sam's in two circles appears, then leaves, in both rooms."""
    one = await make_circle(api, members=2)
    sam, peer = one.members
    two = await make_circle(api, members=0)
    for user, alias in ((sam, "Second Self"), (peer, "Peer Two")):
        await user.ok("POST", f"/api/v1/invites/{two.invite}/join", {"alias": alias})
    watcher = await peer.ws()
    for room in (one.room_id, two.room_id):
        await watcher.subscribe(room)
    ws = await sam.ws()
    for room in (one.room_id, two.room_id):
        await ws.subscribe(room)

    def present(room: str, alias: str, here: bool) -> Match:
        def match(f: dict[str, Any]) -> bool:
            names = [m["alias"] for m in f.get("present", [])]
            return f.get("type") == "presence" and f["room_id"] == room and (alias in names) == here

        return match

    await watcher.recv_until(present(one.room_id, "Member1", True))
    await watcher.recv_until(present(two.room_id, "Second Self", True))
    await ws.close()
    await watcher.recv_until(present(one.room_id, "Member1", False))
    await watcher.recv_until(present(two.room_id, "Second Self", False))
    await watcher.close()
