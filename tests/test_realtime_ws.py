"""The websocket protocol against a real server, on both backends: live delivery, replay, resync, errors, limits."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.client import ApiClient, Match, User, WsClient, make_circle
from tests.conftest import Server

pytestmark = pytest.mark.anyio


def is_event(room_id: str) -> Match:
    return lambda f: f.get("type") == "event" and f.get("room_id") == room_id


async def test_live_post_reply_edit_delete_reach_subscribers(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    ws = await b.ws()
    sub = await ws.subscribe(c.room_id)
    assert sub == {"type": "subscribed", "room_id": c.room_id, "last_seq": 0}

    post = await a.post(c.room_id, "live one")
    frame = await ws.recv_until(is_event(c.room_id))
    assert frame == {"type": "event", "room_id": c.room_id, "seq": 1, "event": "post.created", "data": post}

    reply = await a.post(c.room_id, "a reply", parent_id=post["id"])
    edited = await a.ok("PATCH", f"/api/v1/posts/{post['id']}", {"body": "live one, edited"})
    await a.ok("DELETE", f"/api/v1/posts/{reply['id']}")
    frames = await ws.events(c.room_id, 3)
    assert [(f["seq"], f["event"]) for f in frames] == [(2, "post.created"), (3, "post.updated"), (4, "post.deleted")]
    assert frames[0]["data"]["parent_id"] == post["id"]
    assert frames[1]["data"] == edited
    assert frames[2]["data"] == {"id": reply["id"], "room_id": c.room_id}


async def test_replay_since_then_live_exactly_once(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    ws = await b.ws()
    await ws.subscribe(c.room_id)
    await a.post(c.room_id, "before the drop")
    first = await ws.recv_until(is_event(c.room_id))
    await ws.close()

    missed = [await a.post(c.room_id, f"while away {i}") for i in range(10)]
    ws2 = await b.ws()
    await ws2.send({"op": "subscribe", "room_id": c.room_id, "since": first["seq"]})
    replay = await ws2.events(c.room_id, 10)
    assert [f["data"]["id"] for f in replay] == [p["id"] for p in missed]
    assert [f["seq"] for f in replay] == list(range(2, 12))
    done = await ws2.recv_until(lambda f: f.get("type") == "subscribed")
    assert done == {"type": "subscribed", "room_id": c.room_id, "last_seq": 11}
    live = await a.post(c.room_id, "back live")
    frame = await ws2.recv_until(is_event(c.room_id))
    assert (frame["seq"], frame["data"]["id"]) == (12, live["id"])
    extra = [f for f in await ws2.quiet(0.5) if f.get("type") == "event"]
    assert extra == [], "nothing twice"


async def test_replay_races_concurrent_posts_without_gap_or_duplicate(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    for i in range(30):
        await a.post(c.room_id, f"old {i}")

    async def writer() -> None:
        for i in range(30):
            await a.post(c.room_id, f"new {i}")

    task = asyncio.create_task(writer())
    await asyncio.sleep(0.05)
    ws = await b.ws()
    await ws.send({"op": "subscribe", "room_id": c.room_id, "since": 5})
    await task
    frames = await ws.events(c.room_id, 55)
    assert [f["seq"] for f in frames] == list(range(6, 61))
    assert [f for f in await ws.quiet(0.5) if f.get("type") == "event"] == []


@pytest.mark.parametrize("settings_env", [{"KINDRED_REPLAY_CAP": "5"}])
async def test_resync_when_too_far_behind(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    a = c.members[0]
    for i in range(8):
        await a.post(c.room_id, f"p{i}")
    ws = await a.ws()
    answer = await ws.subscribe(c.room_id, since=1)
    assert answer == {"type": "resync", "room_id": c.room_id, "last_seq": 8}
    await a.post(c.room_id, "after resync")
    frame = await ws.recv_until(is_event(c.room_id))
    assert frame["seq"] == 9
    # Within the cap, the same call replays instead.
    ws2 = await a.ws()
    await ws2.send({"op": "subscribe", "room_id": c.room_id, "since": 5})
    assert [f["seq"] for f in await ws2.events(c.room_id, 4)] == [6, 7, 8, 9]
    # A `since` ahead of the log (a client from another database) is told to resync too.
    ws3 = await a.ws()
    assert (await ws3.subscribe(c.room_id, since=500))["type"] == "resync"


async def test_four_writers_give_gap_free_seqs_delivered_once_in_order(api: ApiClient) -> None:
    c = await make_circle(api, members=4)
    sockets = []
    for member in c.members[:3]:
        ws = await member.ws()
        await ws.subscribe(c.room_id)
        sockets.append(ws)

    async def write(member: User, n: int) -> None:
        for i in range(n):
            await member.post(c.room_id, f"{member.name} {i}")

    await asyncio.gather(*(write(m, 25) for m in c.members))
    for ws in sockets:
        frames = await ws.events(c.room_id, 100, timeout=30)
        assert [f["seq"] for f in frames] == list(range(1, 101))
        assert len({f["data"]["id"] for f in frames}) == 100
        assert [f for f in await ws.quiet(0.3) if f.get("type") == "event"] == []
    room = (await c.coach.ok("GET", f"/api/v1/circles/{c.id}/rooms"))[0]
    assert room["last_seq"] == 100


async def test_non_member_gets_forbidden_and_socket_stays_open(api: ApiClient) -> None:
    c = await make_circle(api, members=0)
    outsider = await api.signup()
    ws = await outsider.ws()
    answer = await ws.subscribe(c.room_id)
    assert answer["type"] == "error" and answer["code"] == "forbidden"
    unknown = await ws.subscribe("00000000-0000-0000-0000-000000000000")
    assert unknown["code"] == "forbidden", "unknown and foreign rooms look the same"
    await ws.send({"op": "ping"})
    assert await ws.recv_until(lambda f: f.get("type") == "pong") == {"type": "pong"}


async def test_bad_frames_get_errors_without_closing(api: ApiClient) -> None:
    user = await api.signup()
    ws = await user.ws()
    for bad in [
        "not json",
        "[]",
        '{"op":"dance"}',
        '{"op":"subscribe"}',
        '{"op":"subscribe","room_id":"r","since":-1}',
    ]:
        await ws.send(bad)
        frame = await ws.recv()
        assert frame["type"] == "error" and frame["code"] == "bad_frame", (bad, frame)
    await ws.send({"op": "ping"})
    assert (await ws.recv())["type"] == "pong"


async def test_huge_since_is_a_bad_frame_and_the_largest_allowed_one_resyncs(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    ws = await c.members[0].ws()
    for since in (2**63, 2**64, 10**30):
        await ws.send(f'{{"op":"subscribe","room_id":"{c.room_id}","since":{since}}}')
        frame = await ws.recv_until(lambda f: f.get("type") == "error")
        assert frame["code"] == "bad_frame" and "since" in frame["detail"], frame
    # The largest since a client may send is ahead of any log: the answer is a resync, never "unavailable".
    answer = await ws.subscribe(c.room_id, since=2**63 - 1)
    assert answer == {"type": "resync", "room_id": c.room_id, "last_seq": 0}, answer
    post = await c.members[0].post(c.room_id, "still live")
    assert (await ws.recv_until(is_event(c.room_id)))["data"]["id"] == post["id"]


async def test_handshake_origin_and_auth(api: ApiClient, server: Server) -> None:
    user = await api.signup()
    with pytest.raises(InvalidStatus) as refused:
        await api.ws(user.token, Origin="https://evil.example")
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as anonymous:
        await api.ws(None)
    assert anonymous.value.response.status_code == 403
    # No Origin (not a browser) with a valid bearer, and our own origin, are both fine.
    ws = await api.ws(user.token)
    await ws.send({"op": "ping"})
    assert (await ws.recv())["type"] == "pong"
    same = await api.ws(user.token, Origin=server.url)
    await same.send({"op": "ping"})
    assert (await same.recv())["type"] == "pong"


async def test_oversized_frame_closes_1009(api: ApiClient) -> None:
    user = await api.signup()
    ws = await user.ws()
    await ws.send(json.dumps({"op": "ping", "pad": "x" * (64 * 1024 + 10)}))
    with pytest.raises(ConnectionClosed) as closed:
        await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_frame_flood_closes_1008(api: ApiClient) -> None:
    user = await api.signup()
    ws = await user.ws()
    with pytest.raises(ConnectionClosed) as closed:
        for _ in range(500):
            await ws.send('{"op":"ping"}')
        while True:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


@pytest.mark.parametrize("settings_env", [{"KINDRED_WS_SEND_QUEUE": "16", "KINDRED_POSTS_PER_MINUTE": "1000"}])
async def test_slow_consumer_is_cut_off_while_others_keep_receiving(api: ApiClient, server: Server) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    # A reader that never reads, with a tiny receive buffer so the server's writes back up quickly.
    raw = socket.create_connection(("127.0.0.1", server.port))
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow_conn = await websockets.connect(
        server.ws_url, sock=raw, additional_headers={"Authorization": f"Bearer {b.token}"}, max_size=2**24
    )
    slow = WsClient(slow_conn)
    await slow.subscribe(c.room_id)
    fast = await a.ws()
    await fast.subscribe(c.room_id)

    reader = asyncio.create_task(fast.events(c.room_id, 150, timeout=30))
    big = "x" * 19_000
    for i in range(150):
        await a.post(c.room_id, f"{i} {big}")
    frames = await reader
    assert [f["seq"] for f in frames] == list(range(1, 151))
    assert server.hub.stats["slow_closed"] == 1
    # The server lets go of the slow socket (it cannot even flush a close frame to a client that does not read)...
    for _ in range(100):
        if b.id not in server.hub.accounts:
            break
        await asyncio.sleep(0.05)
    assert b.id not in server.hub.accounts
    slow_conn.transport.abort()
    # ... and the client recovers by replay.
    again = await b.ws()
    await again.send({"op": "subscribe", "room_id": c.room_id, "since": 100})
    assert [f["seq"] for f in await again.events(c.room_id, 50)] == list(range(101, 151))


async def test_removed_member_stops_receiving_at_once(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    ws = await b.ws()
    await ws.subscribe(c.room_id)
    await a.post(c.room_id, "before")
    await ws.recv_until(is_event(c.room_id))
    me = await b.ok("GET", "/api/v1/me")
    await c.coach.ok("DELETE", f"/api/v1/circles/{c.id}/members/{me['memberships'][0]['membership_id']}")
    notice = await ws.recv_until(lambda f: f.get("type") == "error")
    assert notice["code"] == "forbidden" and notice["room_id"] == c.room_id
    await a.post(c.room_id, "after removal")
    assert [f for f in await ws.quiet(0.5) if f.get("type") == "event"] == []
    assert (await ws.subscribe(c.room_id))["code"] == "forbidden"
    assert (await b.call("GET", f"/api/v1/rooms/{c.room_id}/posts")).status_code == 404


async def test_presence_by_alias_joins_and_leaves(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    wa = await a.ws()
    await wa.subscribe(c.room_id)
    first = await wa.recv_until(lambda f: f.get("type") == "presence")
    assert first["room_id"] == c.room_id and [m["alias"] for m in first["present"]] == ["Member1"]
    assert set(first["present"][0]) == {"membership_id", "alias", "role"} and first["hands"] == []
    assert first["present_count"] == 1
    wb = await b.ws()
    await wb.subscribe(c.room_id)
    both = await wa.recv_until(lambda f: f.get("type") == "presence" and len(f["present"]) == 2)
    assert sorted(m["alias"] for m in both["present"]) == ["Member1", "Member2"] and both["present_count"] == 2
    await wb.close()
    gone = await wa.recv_until(lambda f: f.get("type") == "presence" and len(f["present"]) == 1)
    assert gone["present"][0]["alias"] == "Member1"


async def test_one_channel_subscription_and_one_render_per_instance(
    api: ApiClient, server: Server, backend: str
) -> None:
    c = await make_circle(api, members=3)
    pages = [await api.ws(member.token) for member in c.members]
    html_sockets = []
    for member in c.members:
        conn = await websockets.connect(
            server.ws_url + "?format=html", additional_headers={"Authorization": f"Bearer {member.token}"}
        )
        sock = WsClient(conn)
        await sock.subscribe(c.room_id)
        html_sockets.append(sock)
    for ws in pages:
        await ws.subscribe(c.room_id)
    if backend == "postgres":
        from redis.asyncio import Redis

        from tests.conftest import REDIS_URL

        redis = Redis.from_url(REDIS_URL)
        try:
            channel = server.hub.topics.room(c.room_id)
            assert await redis.pubsub_numsub(channel) == [(channel.encode(), 1)], "one subscription, six sockets"
        finally:
            await redis.aclose()

    rendered_before = server.hub.stats["rendered"]
    post = await c.members[0].post(c.room_id, "render me *once*")
    frames = [await s.recv_until(is_event(c.room_id)) for s in html_sockets]
    assert server.hub.stats["rendered"] - rendered_before == 1
    assert all(f == frames[0] for f in frames)
    assert frames[0]["post_id"] == post["id"] and "<em>once</em>" in frames[0]["html"]
    assert "data" not in frames[0]
    for ws in pages:
        assert (await ws.recv_until(is_event(c.room_id)))["data"] == post
    for sock in html_sockets:
        await sock.close()


async def test_alias_change_reaches_presence_and_cached_replays(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    wa, wb = await a.ws(), await b.ws()
    await wa.subscribe(c.room_id)
    await wb.subscribe(c.room_id)
    await a.post(c.room_id, "before the change")
    await wb.recv_until(lambda f: f.get("type") == "presence" and len(f["present"]) == 2)
    await wb.quiet(0.6)  # everything sent before the change

    await a.ok("PATCH", f"/api/v1/circles/{c.id}/membership", {"alias": "Quiet River"})
    changed = await wb.recv_until(lambda f: f.get("type") == "presence" and "Quiet River" in json.dumps(f))
    assert sorted(m["alias"] for m in changed["present"]) == ["Member2", "Quiet River"]
    after = await wb.quiet(0.8)
    assert "Member1" not in json.dumps(after), "no frame after the change carries the old alias"
    # The socket of the member who changed keeps working under the new alias...
    post = await a.post(c.room_id, "after the change")
    assert (await wb.recv_until(is_event(c.room_id)))["data"]["author"]["alias"] == "Quiet River"
    assert post["author"]["alias"] == "Quiet River"
    # ... and a replay (served from the instance's memory of recent events when it can) never brings the old one back.
    late = await b.ws()
    await late.send({"op": "subscribe", "room_id": c.room_id, "since": 0})
    await late.recv_until(lambda f: f.get("type") == "subscribed")
    await late.recv_until(lambda f: f.get("type") == "presence")
    seen = json.dumps(late.backlog + await late.quiet(0.5))
    assert "before the change" in seen and "Member1" not in seen
    await wa.close()
    gone = await wb.recv_until(lambda f: f.get("type") == "presence" and len(f["present"]) == 1)
    assert [m["alias"] for m in gone["present"]] == ["Member2"], "leaving removes the entry made under the new alias"


async def test_edits_are_not_replayed_from_memory_in_their_old_form(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    watcher = await b.ws()
    await watcher.subscribe(c.room_id)
    post = await a.post(c.room_id, "words I regret")
    await watcher.recv_until(is_event(c.room_id))
    await a.ok("PATCH", f"/api/v1/posts/{post['id']}", {"body": "better words"})
    await watcher.recv_until(is_event(c.room_id))
    again = await b.ws()
    await again.send({"op": "subscribe", "room_id": c.room_id, "since": 0})
    replay = await again.events(c.room_id, 2)
    assert "regret" not in json.dumps(replay) and replay[0]["data"]["body"] == "better words"
