"""Several `kindred serve` processes sharing Postgres and Redis, and what happens when Redis or Postgres fails."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.client import ApiClient, make_circle
from tests.conftest import REDIS_URL, Templates
from tests.procs import KindredProcess, RedisProcess

pytestmark = [pytest.mark.anyio, pytest.mark.multi]


@pytest.fixture
async def pg_url(templates: Templates) -> str:
    # Multi-instance means shared services: this file has only the Postgres + Redis variant.
    return await templates.postgres()


@pytest.fixture
async def private_redis() -> AsyncIterator[RedisProcess]:
    redis = RedisProcess()
    await redis.start()
    try:
        yield redis
    finally:
        redis.stop()


async def _instances(pg_url: str, redis_url: str, n: int = 2) -> list[KindredProcess]:
    prefix = f"kt{uuid.uuid4().hex[:8]}"
    procs = [KindredProcess(pg_url, redis_url, prefix) for _ in range(n)]
    await asyncio.gather(*(p.start() for p in procs))
    return procs


def is_event(room_id: str):
    return lambda f: f.get("type") == "event" and f.get("room_id") == room_id


async def test_socket_on_one_instance_receives_post_made_through_the_other(pg_url: str) -> None:
    a_proc, b_proc = await _instances(pg_url, REDIS_URL)
    api_a, api_b = ApiClient(a_proc.url, a_proc.ws_url), ApiClient(b_proc.url, b_proc.ws_url)
    try:
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
        health = (await api_a.http.get("/healthz")).json()
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
    finally:
        await api_a.aclose()
        await api_b.aclose()
        for p in (a_proc, b_proc):
            p.stop()


async def test_redis_restart_loses_nothing(pg_url: str, private_redis: RedisProcess) -> None:
    a_proc, b_proc = await _instances(pg_url, private_redis.url)
    api_a, api_b = ApiClient(a_proc.url, a_proc.ws_url), ApiClient(b_proc.url, b_proc.ws_url)
    try:
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
            frames = await sock.events(c.room_id, 12, timeout=20)
            assert [f["seq"] for f in frames] == list(range(1, 13))
            assert [f for f in await sock.quiet(0.5) if f.get("type") == "event"] == []
    finally:
        await api_a.aclose()
        await api_b.aclose()
        for p in (a_proc, b_proc):
            p.stop()


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
        started = time.monotonic()
        r = await api.http.post(
            f"/api/v1/rooms/{c.room_id}/posts", json={"body": "lost?"}, headers={"Authorization": f"Bearer {m1.token}"}
        )
        assert r.status_code == 503, r.text
        assert "database" in r.json()["detail"] and r.headers.get("retry-after")
        assert time.monotonic() - started < 10, "never a hang"

        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        r = await api.http.post(
            f"/api/v1/rooms/{c.room_id}/posts", json={"body": "saved"}, headers={"Authorization": f"Bearer {m1.token}"}
        )
        assert r.status_code == 201, r.text
        frame = await sock.recv_until(is_event(c.room_id), timeout=10)
        assert (frame["seq"], frame["data"]["body"]) == (1, "saved"), "the failed write published nothing"
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
        await api.aclose()
        proc.stop()
