"""Sign-ins and room access remembered in-process (app/auth/cache.py), on both backends: a warm cache is used (the
lookup counters say so), and still a sign-out or a removal stops the very next request and socket post, on this
instance and on another one, and nothing is served from memory while the bus is away."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

import pytest

from tests.client import DEADLINE, ApiClient, User, WsClient, make_circle
from tests.conftest import Server
from tests.procs import KindredProcess, RedisProcess

pytestmark = pytest.mark.anyio

OPS_TOKEN = "ops-token-for-cache-tests"


async def ws_post(ws: WsClient, room_id: str, body: str) -> dict[str, Any]:
    cid = f"c-{uuid.uuid4().hex[:12]}"
    await ws.send({"op": "post", "room_id": room_id, "body": body, "client_id": cid})
    return await ws.recv_until(lambda f: f.get("type") in ("posted", "error") and f.get("client_id") == cid)


async def membership_id(user: User) -> str:
    me = await user.ok("GET", "/api/v1/me")
    return str(me["memberships"][0]["membership_id"])


async def test_a_warm_cache_is_used_and_still_a_sign_out_or_removal_stops_the_next_request(
    api: ApiClient, server: Server
) -> None:
    stats = server.app.state["live"].caches.stats
    c = await make_circle(api, members=2)
    a, b = c.members
    await a.post(c.room_id, "first")
    before = dict(stats)
    await a.post(c.room_id, "second")
    # The proof the cache is on the path: the second post asked neither query again.
    assert stats["access_lookups"] == before["access_lookups"]
    assert stats["access_hits"] == before["access_hits"] + 1
    assert stats["token_lookups"] == before["token_lookups"]
    assert stats["token_hits"] > before["token_hits"]

    # B is remembered too (HTTP and socket), then removed: the next post is refused, both ways.
    await b.post(c.room_id, "while a member")
    wb = await b.ws()
    assert (await ws_post(wb, c.room_id, "socket, while a member"))["type"] == "posted"
    hits = stats["access_hits"]
    assert (await ws_post(wb, c.room_id, "socket again"))["type"] == "posted"
    assert stats["access_hits"] == hits + 1
    await c.coach.ok("DELETE", f"/api/v1/circles/{c.id}/members/{await membership_id(b)}")
    refused = await b.call("POST", f"/api/v1/rooms/{c.room_id}/posts", {"body": "after removal"})
    assert refused.status_code == 404
    gone = await ws_post(wb, c.room_id, "socket, after removal")
    assert (gone["type"], gone["status"]) == ("error", 404)

    # A signs out: the token, served from memory a moment ago, is refused at once.
    assert (await a.call("GET", "/api/v1/me")).status_code == 200
    await a.ok("POST", "/api/v1/auth/logout", status=204)
    assert (await a.call("GET", "/api/v1/me")).status_code == 401
    # The control: the coach's token, remembered the same way, still works.
    assert (await c.coach.call("GET", "/api/v1/me")).status_code == 200
    bodies = [p["body"] for p in (await c.coach.ok("GET", f"/api/v1/rooms/{c.room_id}/posts"))["items"]]
    assert "after removal" not in bodies and "socket, after removal" not in bodies
    assert "socket again" in bodies


@pytest.mark.parametrize("settings_env", [{"KINDRED_AUTH_CACHE": "0"}])
async def test_turned_off_every_request_asks_the_database(api: ApiClient, server: Server) -> None:
    stats = server.app.state["live"].caches.stats
    c = await make_circle(api, members=1)
    (a,) = c.members
    await a.post(c.room_id, "first")
    before = dict(stats)
    await a.post(c.room_id, "second")
    assert stats["access_lookups"] == before["access_lookups"] + 1
    assert stats["token_lookups"] > before["token_lookups"]
    assert stats["access_hits"] == stats["token_hits"] == 0


# --- several instances (Postgres + Redis: the memory bus is one process) ---------------------------------------------


async def health(api: ApiClient) -> dict[str, Any]:
    r = await api.http.get("/healthz", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
    return r.json()  # type: ignore[no-any-return]


async def wait_bus(api: ApiClient, state: str) -> None:
    """Until the instance's /healthz says its bus is `state` (a state, polled; DEADLINE bounds it)."""
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while (await health(api))["bus"] != state:
        assert asyncio.get_running_loop().time() < deadline, f"the bus never became {state}"
        await asyncio.sleep(0.05)


@pytest.mark.multi
async def test_across_instances_a_revocation_or_removal_stops_at_once_and_a_lost_bus_serves_nothing_cached(
    pg_url: str, private_redis: RedisProcess
) -> None:
    prefix = f"kc{uuid.uuid4().hex[:8]}"
    procs = [KindredProcess(pg_url, private_redis.url, prefix, KINDRED_OPS_TOKEN=OPS_TOKEN) for _ in range(2)]
    for proc in procs:
        await proc.start()
    api_a, api_b = (ApiClient(p.url, p.ws_url) for p in procs)
    try:
        c = await make_circle(api_a, members=3)
        on_b = [dataclasses.replace(u, api=api_b) for u in c.members]
        m1, m2, m3 = on_b
        # Warm B's caches for m1, m2 (HTTP and socket) and prove they are used.
        for user in (m1, m2):
            await user.post(c.room_id, "warm")
        w2 = await api_b.ws(m2.token)
        assert (await ws_post(w2, c.room_id, "socket warm"))["type"] == "posted"
        before = (await health(api_b))["stats"]
        await m1.post(c.room_id, "warm again")
        after = (await health(api_b))["stats"]
        assert after["access_lookups"] == before["access_lookups"]
        assert after["access_hits"] == before["access_hits"] + 1

        # Removed on A: m2's next post on B is refused, over HTTP and over the socket.
        await c.coach.ok("DELETE", f"/api/v1/circles/{c.id}/members/{await membership_id(c.members[1])}")
        assert (await m2.call("POST", f"/api/v1/rooms/{c.room_id}/posts", {"body": "removed"})).status_code == 404
        gone = await ws_post(w2, c.room_id, "removed, socket")
        assert (gone["type"], gone["status"]) == ("error", 404)

        # Signed out on A: m1's token, remembered on B, is refused on B at once.
        assert (await m1.call("GET", "/api/v1/me")).status_code == 200
        await c.members[0].ok("POST", "/api/v1/auth/logout", status=204)
        assert (await m1.call("GET", "/api/v1/me")).status_code == 401
        assert (await m3.call("GET", "/api/v1/me")).status_code == 200, "the control: another remembered token"

        # Redis away: B serves nothing from memory (every request asks), and a sign-out made on A meanwhile, whose
        # message is lost, is refused on B at once.
        await m3.post(c.room_id, "before the outage")
        private_redis.stop()
        await wait_bus(api_b, "down")
        await wait_bus(api_a, "down")
        before = (await health(api_b))["stats"]
        for _ in range(2):
            assert (await m3.call("GET", "/api/v1/me")).status_code == 200
        after = (await health(api_b))["stats"]
        assert after["token_hits"] == before["token_hits"]
        assert after["token_lookups"] >= before["token_lookups"] + 2
        await c.members[2].ok("POST", "/api/v1/auth/logout", status=204)
        assert (await m3.call("GET", "/api/v1/me")).status_code == 401

        # Back: the caches start empty and fill again (the control that hits resume).
        await private_redis.start()
        await wait_bus(api_b, "up")
        coach_b = dataclasses.replace(c.coach, api=api_b)
        await coach_b.post(c.room_id, "after the outage")
        before = (await health(api_b))["stats"]
        await coach_b.post(c.room_id, "and again")
        after = (await health(api_b))["stats"]
        assert after["access_hits"] == before["access_hits"] + 1
    finally:
        for client in (api_a, api_b):
            await client.aclose()
        for proc in procs:
            proc.stop()
