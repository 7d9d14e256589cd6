"""Several `kindred serve` processes sharing Postgres and Redis, and what happens when Redis or Postgres fails."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import asyncpg
import pytest

from tests.client import ApiClient, Match, make_circle
from tests.conftest import REDIS_URL
from tests.procs import KindredProcess, RedisProcess

pytestmark = [pytest.mark.anyio, pytest.mark.multi]

# Lets the tests read /healthz's delivery counters, as an operator would.
OPS_TOKEN = "ops-token-for-tests"


@contextlib.asynccontextmanager
async def two_instances(pg_url: str, redis_url: str) -> AsyncIterator[tuple[ApiClient, ApiClient]]:
    """Two `kindred serve` processes sharing Postgres and Redis: a client for each; all stopped afterwards."""
    a_proc, b_proc = await _instances(pg_url, redis_url)
    api_a, api_b = ApiClient(a_proc.url, a_proc.ws_url), ApiClient(b_proc.url, b_proc.ws_url)
    try:
        yield api_a, api_b
    finally:
        await api_a.aclose()
        await api_b.aclose()
        for proc in (a_proc, b_proc):
            proc.stop()


async def _instances(pg_url: str, redis_url: str, n: int = 2) -> list[KindredProcess]:
    prefix = f"kt{uuid.uuid4().hex[:8]}"
    procs = [KindredProcess(pg_url, redis_url, prefix, KINDRED_OPS_TOKEN=OPS_TOKEN) for _ in range(n)]
    await asyncio.gather(*(p.start() for p in procs))
    return procs


def is_event(room_id: str) -> Match:
    return lambda f: f.get("type") == "event" and f.get("room_id") == room_id


async def test_socket_on_one_instance_receives_post_made_through_the_other(pg_url: str) -> None:
    async with two_instances(pg_url, REDIS_URL) as (api_a, api_b):
        c = await make_circle(api_a, members=2)
        m1, m2 = c.members
        listener = await api_a.ws(m1.token)
        await listener.subscribe(c.room_id)
        poster = await api_b.ws(m2.token)
        await poster.subscribe(c.room_id)

        # Presence spans instances: each sees both aliases.
        seen = await listener.recv_until(lambda f: f.get("type") == "presence" and len(f["present"]) == 2)
        assert sorted(m["alias"] for m in seen["present"]) == ["Member1", "Member2"]

        r = await api_b.http.post(
            f"/api/v1/rooms/{c.room_id}/posts",
            json={"body": "from instance B"},
            headers={"Authorization": f"Bearer {m2.token}"},
        )
        assert r.status_code == 201
        frame = await listener.recv_until(is_event(c.room_id))
        assert frame["data"]["id"] == r.json()["id"] and frame["seq"] == 1
        # It came through Redis, not through the periodic catch-up from the log (the backstop for a lost publish).
        health = (await api_a.http.get("/healthz", headers={"Authorization": f"Bearer {OPS_TOKEN}"})).json()
        assert health["bus"] == "up" and health["stats"]["caught_up"] == 0, health

        # Removal on one instance ends the member's subscription on the other.
        me = (await api_a.http.get("/api/v1/me", headers={"Authorization": f"Bearer {m1.token}"})).json()
        r = await api_b.http.delete(
            f"/api/v1/circles/{c.id}/members/{me['memberships'][0]['membership_id']}",
            headers={"Authorization": f"Bearer {c.coach.token}"},
        )
        assert r.status_code == 204
        notice = await listener.recv_until(lambda f: f.get("type") == "error")
        assert notice["code"] == "forbidden"


async def test_redis_restart_loses_nothing(pg_url: str, private_redis: RedisProcess) -> None:
    async with two_instances(pg_url, private_redis.url) as (api_a, api_b):
        c = await make_circle(api_a, members=2)
        m1, m2 = c.members
        on_a = await api_a.ws(m1.token)
        await on_a.subscribe(c.room_id)
        on_b = await api_b.ws(m2.token)
        await on_b.subscribe(c.room_id)

        async def post(api: ApiClient, token: str, body: str) -> None:
            r = await api.http.post(
                f"/api/v1/rooms/{c.room_id}/posts", json={"body": body}, headers={"Authorization": f"Bearer {token}"}
            )
            assert r.status_code == 201, r.text

        await post(api_a, m1.token, "before the outage")
        private_redis.stop()
        # Writes keep working while Redis is gone: the database is the record.
        for i in range(5):
            await post(api_a, m1.token, f"outage via A {i}")
            await post(api_b, m2.token, f"outage via B {i}")
        await private_redis.start()
        await post(api_b, m2.token, "after the outage")

        for sock in (on_a, on_b):
            frames = await sock.events(c.room_id, 12)
            assert [f["seq"] for f in frames] == list(range(1, 13))
        # No duplicate follows: the next event each socket gets is the next post (events arrive in seq order).
        await post(api_a, m1.token, "marker")
        for sock in (on_a, on_b):
            assert [f["seq"] for f in await sock.events(c.room_id, 1)] == [13]


async def test_unreachable_database_answers_503_and_publishes_nothing(pg_url: str) -> None:
    (proc,) = await _instances(pg_url, REDIS_URL, n=1)
    api = ApiClient(proc.url, proc.ws_url)
    name = pg_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(pg_url.rsplit("/", 1)[0] + "/postgres")
    try:
        c = await make_circle(api, members=2)
        m1, m2 = c.members
        sock = await api.ws(m2.token)
        await sock.subscribe(c.room_id)

        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
        # pg_terminate_backend only signals: wait until the backends are really gone.
        with anyio.fail_after(30):
            while await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name):  # noqa: ASYNC110 (polling Postgres, nothing to wait on)
                await anyio.sleep(0.05)
        # An answer at all is the point (a hang would meet the client's deadline); how fast it comes is measured by
        # the soak (docs/reliability.md), not asserted here.
        r = await api.http.post(
            f"/api/v1/rooms/{c.room_id}/posts", json={"body": "lost?"}, headers={"Authorization": f"Bearer {m1.token}"}
        )
        assert r.status_code == 503, r.text
        assert "database" in r.json()["detail"] and r.headers.get("retry-after")

        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        r = await api.http.post(
            f"/api/v1/rooms/{c.room_id}/posts", json={"body": "saved"}, headers={"Authorization": f"Bearer {m1.token}"}
        )
        assert r.status_code == 201, r.text
        frame = await sock.recv_until(is_event(c.room_id))
        assert (frame["seq"], frame["data"]["body"]) == (1, "saved"), "the failed write published nothing"
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
        await api.aclose()
        proc.stop()


async def test_a_drop_in_split_across_instances_survives_one_restarting(pg_url: str) -> None:
    """Coach and Member1 on instance A, Member2 on B: the same hands, spotlight and state everywhere, and all of it
    still there after A restarts in the middle of the session."""
    a_proc, b_proc = await _instances(pg_url, REDIS_URL)
    api_a, api_b = ApiClient(a_proc.url, a_proc.ws_url), ApiClient(b_proc.url, b_proc.ws_url)
    a2_proc: KindredProcess | None = None
    api_a2: ApiClient | None = None

    async def call(api: ApiClient, token: str, method: str, path: str, body: object = None) -> Any:
        r = await api.http.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code in (200, 201), f"{method} {path}: {r.status_code} {r.text}"
        return r.json()

    def hands_are(room: str, aliases: list[str]) -> Match:
        return lambda f: f.get("type") == "presence" and [m["alias"] for m in f["hands"]] == aliases

    try:
        c = await make_circle(api_a, members=2)
        m1, m2 = c.members
        coach = c.coach.token
        starts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 600))
        dropin = await call(
            api_a,
            coach,
            "POST",
            f"/api/v1/circles/{c.id}/dropins",
            {"title": "Split drop-in", "starts_at": starts, "duration_minutes": 30},
        )
        did, room = dropin["id"], dropin["room_id"]
        coach_ws = await api_a.ws(coach)
        await coach_ws.subscribe(room)
        m1_ws = await api_a.ws(m1.token)
        await m1_ws.subscribe(room)
        m2_ws = await api_b.ws(m2.token)
        await m2_ws.subscribe(room)

        await call(api_a, coach, "POST", f"/api/v1/dropins/{did}/start")
        frame = await m2_ws.recv_until(lambda f: f.get("event") == "dropin.state")
        assert frame["data"]["state"] == "live"
        note = await m2_ws.recv_until(lambda f: f.get("type") == "notification")
        assert note["data"]["kind"] == "dropin.live"

        # Hands raised on different instances form one queue, seen the same from both.
        await call(api_b, m2.token, "PUT", f"/api/v1/dropins/{did}/hand")
        await m1_ws.recv_until(hands_are(room, ["Member2"]))
        await call(api_a, m1.token, "PUT", f"/api/v1/dropins/{did}/hand")
        for sock in (coach_ws, m1_ws, m2_ws):
            await sock.recv_until(hands_are(room, ["Member2", "Member1"]))
        seen = await m1_ws.recv_until(lambda f: f.get("type") == "presence" and len(f["present"]) == 3)
        assert sorted(m["alias"] for m in seen["present"]) == ["Coach Dana", "Member1", "Member2"]

        post = await call(api_b, m2.token, "POST", f"/api/v1/rooms/{room}/posts", {"body": "From B, in the room"})
        await call(api_a, coach, "PUT", f"/api/v1/dropins/{did}/spotlight", {"post_id": post["id"]})
        lit = await m2_ws.recv_until(lambda f: f.get("event") == "dropin.state" and f["data"]["spotlight"])
        assert lit["data"]["spotlight"] == post["id"]
        last_seq = lit["seq"]

        # Instance A restarts: its sockets drop, reconnect (to its replacement) with since, and nothing is lost.
        a_proc.stop()
        a2_proc = KindredProcess(pg_url, REDIS_URL, a_proc.env["KINDRED_REDIS_PREFIX"])
        await a2_proc.start()
        api_a2 = ApiClient(a2_proc.url, a2_proc.ws_url)
        detail = await call(api_a2, m1.token, "GET", f"/api/v1/dropins/{did}")
        assert detail["state"] == "live" and detail["spotlight"] == post["id"]
        assert [m["alias"] for m in detail["hands"]] == ["Member2", "Member1"]
        coach_ws = await api_a2.ws(coach)
        assert (await coach_ws.subscribe(room, since=last_seq))["last_seq"] == last_seq
        m1_ws = await api_a2.ws(m1.token)
        await m1_ws.subscribe(room, since=last_seq)
        await m2_ws.recv_until(lambda f: f.get("type") == "presence" and len(f["present"]) == 3)

        # The coach calls on Member2 through the restarted instance; Member2 on B sees the spotlight move.
        called = await call(api_a2, coach, "POST", f"/api/v1/dropins/{did}/hands/next")
        assert called["spotlight"] == post["id"] and [m["alias"] for m in called["hands"]] == ["Member1"]
        await m2_ws.recv_until(hands_are(room, ["Member1"]))
        await call(api_a2, coach, "POST", f"/api/v1/dropins/{did}/end")
        for sock in (m1_ws, m2_ws):
            ended = await sock.recv_until(lambda f: f.get("event") == "dropin.state" and f["data"]["state"] == "ended")
            assert ended["seq"] > last_seq
        summary = (await call(api_b, m2.token, "GET", f"/api/v1/dropins/{did}"))["summary"]
        assert sorted(summary["participants"]) == ["Coach Dana", "Member1", "Member2"]
    finally:
        for api in (api_a, api_b, api_a2):
            if api is not None:
                await api.aclose()
        for p in (a_proc, b_proc, a2_proc):
            if p is not None:
                p.stop()


async def test_writers_on_both_instances_give_one_gap_free_order(pg_url: str) -> None:
    async with two_instances(pg_url, REDIS_URL) as (api_a, api_b):
        c = await make_circle(api_a, members=4)
        listeners = [await api_a.ws(c.coach.token), await api_b.ws(c.coach.token)]
        for sock in listeners:
            await sock.subscribe(c.room_id)

        async def write(api: ApiClient, token: str, n: int) -> None:
            for i in range(n):
                r = await api.http.post(
                    f"/api/v1/rooms/{c.room_id}/posts",
                    json={"body": f"post {i}"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert r.status_code == 201, r.text

        apis = [api_a, api_b, api_a, api_b]
        await asyncio.gather(*(write(api, m.token, 25) for api, m in zip(apis, c.members, strict=True)))
        for sock in listeners:
            frames = await sock.events(c.room_id, 100)
            assert [f["seq"] for f in frames] == list(range(1, 101))
        # No duplicate follows: the next event each socket gets is the next post (events arrive in seq order).
        await write(api_a, c.members[0].token, 1)
        for sock in listeners:
            assert [f["seq"] for f in await sock.events(c.room_id, 1)] == [101]


async def test_removed_during_an_outage_reads_nothing_more(pg_url: str, private_redis: RedisProcess) -> None:
    """The revoke is lost with Redis; the instance still checks membership before it delivers from the log."""
    async with two_instances(pg_url, private_redis.url) as (api_a, api_b):
        c = await make_circle(api_a, members=2)
        m1, m2 = c.members
        removed = await api_a.ws(m1.token)
        await removed.subscribe(c.room_id)
        stays = await api_a.ws(m2.token)
        await stays.subscribe(c.room_id)
        me = (await api_a.http.get("/api/v1/me", headers={"Authorization": f"Bearer {m1.token}"})).json()

        private_redis.stop()
        r = await api_b.http.delete(
            f"/api/v1/circles/{c.id}/members/{me['memberships'][0]['membership_id']}",
            headers={"Authorization": f"Bearer {c.coach.token}"},
        )
        assert r.status_code == 204
        for i in range(5):
            r = await api_b.http.post(
                f"/api/v1/rooms/{c.room_id}/posts",
                json={"body": f"said after the removal {i}"},
                headers={"Authorization": f"Bearer {m2.token}"},
            )
            assert r.status_code == 201
        # The instance's tail check reads the log while Redis is still away: m2 gets the posts, m1 does not.
        got = await stays.events(c.room_id, 5)
        assert [f["seq"] for f in got] == [1, 2, 3, 4, 5]
        notice = await removed.recv_until(lambda f: f.get("type") == "error")
        assert notice["code"] == "forbidden"
        await private_redis.start()
        # The control: with Redis back, the next post reaches the member who stays (replays and catch-ups done);
        # the removed member, on the same instances, got none of it.
        r = await api_b.http.post(
            f"/api/v1/rooms/{c.room_id}/posts",
            json={"body": "after Redis came back"},
            headers={"Authorization": f"Bearer {m2.token}"},
        )
        assert r.status_code == 201
        assert [f["seq"] for f in await stays.events(c.room_id, 1)] == [6]
        assert [f for f in await removed.quiet(0.5) if f.get("type") == "event"] == []


async def test_a_hung_redis_costs_writers_a_moment_not_seconds(pg_url: str, private_redis: RedisProcess) -> None:
    """Redis stops answering (SIGSTOP, not a closed port): posts still answer at once, and arrive once it is back."""
    assert private_redis.proc is not None
    pid = private_redis.proc.pid
    async with two_instances(pg_url, private_redis.url) as (api_a, api_b):
        try:
            c = await make_circle(api_a, members=1)
            poster = c.members[0]
            on_b = await api_b.ws(c.coach.token)
            await on_b.subscribe(c.room_id)
            os.kill(pid, signal.SIGSTOP)
            # Redis stays stopped until SIGCONT below: a post that waited for it would never answer (the client's
            # deadline would fail the test). Each answers because publishing and the rate limits give up on a
            # silent Redis after a bounded wait and the instance marks its bus down; the wait's length is
            # measured by the soak, not asserted here.
            for i in range(3):
                r = await api_a.http.post(
                    f"/api/v1/rooms/{c.room_id}/posts",
                    json={"body": f"while Redis hangs {i}"},
                    headers={"Authorization": f"Bearer {poster.token}"},
                )
                assert r.status_code == 201, r.text
            health = (await api_a.http.get("/healthz")).json()
            assert health["bus"] == "down", health
            os.kill(pid, signal.SIGCONT)
            frames = await on_b.events(c.room_id, 3)
            assert [f["seq"] for f in frames] == [1, 2, 3]
        finally:
            os.kill(pid, signal.SIGCONT)
