"""`kindred serve --server granian`: what `kindred serve` promises under uvicorn holds under Granian too.

Every test here starts real `kindred serve --server granian` processes (the rest of the suite runs under Granian with
KINDRED_TEST_SERVER=granian; this file does whatever that variable says).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from websockets.exceptions import ConnectionClosed

from tests.client import DEADLINE, PASSWORD, ApiClient, Match, make_circle
from tests.conftest import REDIS_URL, Templates
from tests.procs import ROOT, KindredProcess

pytestmark = [pytest.mark.anyio, pytest.mark.multi]

FRAME_LIMIT = 64 * 1024


def is_event(room_id: str) -> Match:
    return lambda f: f.get("type") == "event" and f.get("room_id") == room_id


def granian(database_url: str, redis_url: str | None, prefix: str | None = None, **env: str) -> KindredProcess:
    return KindredProcess(database_url, redis_url, prefix or f"kg{uuid.uuid4().hex[:8]}", server="granian", **env)


async def test_sign_in_post_live_replay_frame_limit_and_shutdown(backend: str, database_url: str) -> None:
    proc = granian(database_url, REDIS_URL if backend == "postgres" else None)
    await proc.start()
    api = ApiClient(proc.url, proc.ws_url)
    try:
        assert (await api.http.get("/healthz")).headers["server"] == "granian"
        c = await make_circle(api, members=2)
        m1, m2 = c.members
        listener = await api.ws(m1.token)
        await listener.subscribe(c.room_id)
        first = await m2.post(c.room_id, "live under granian")
        [live] = await listener.events(c.room_id, 1)
        assert live["data"]["id"] == first["id"]
        seen = live["seq"]
        await listener.close()

        missed = [(await m2.post(c.room_id, f"while away {n}"))["id"] for n in range(3)]
        again = await api.ws(m1.token)
        await again.subscribe(c.room_id, since=seen)
        replayed = await again.events(c.room_id, 3)
        assert [e["seq"] for e in replayed] == [seen + 1, seen + 2, seen + 3]
        assert [e["data"]["id"] for e in replayed] == missed
        after = await m2.post(c.room_id, "and live again")
        [next_live] = await again.events(c.room_id, 1)
        assert (next_live["seq"], next_live["data"]["id"]) == (seen + 4, after["id"])

        # Under the limit: a bad frame answered with an error, the socket open. Over it, counted in bytes: 1009.
        await again.send(json.dumps({"op": "ping", "pad": "x" * (FRAME_LIMIT - 100)}))
        assert (await again.recv_until(lambda f: f.get("type") in ("error", "pong")))["type"] in ("error", "pong")
        await again.send(json.dumps({"op": "ping", "pad": "€" * (FRAME_LIMIT // 3 + 10)}))  # 3 bytes a character
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await again.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009

        # Stopping: the process exits cleanly and open sockets are closed. Not with 1001 as under uvicorn: Granian's
        # runtime drops upgraded connections before the lifespan's hub.stop() can send its close frame, so a client
        # sees 1006 and reconnects with `since` as after any drop (docs/performance.md, "The ASGI server").
        last = await api.ws(m1.token)
        await last.subscribe(c.room_id)
        assert proc.proc is not None
        proc.proc.terminate()
        with pytest.raises(ConnectionClosed) as going:
            while True:
                await last.recv()
        assert going.value.rcvd is None, "Granian now sends a close frame at shutdown: update docs/performance.md"
        assert proc.proc.wait(DEADLINE) == 0
    finally:
        await api.aclose()
        proc.stop()


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_forwarded_for_is_believed_only_from_the_named_proxy(database_url: str) -> None:
    """Three failed sign-ins from one address throttle that address for the account: behind the trusted proxy the
    forwarded address is the one throttled; from a peer that is not the named proxy, the header is ignored."""

    async def owner_after_attack(trusted: str) -> int:
        proc = granian(database_url, None, KINDRED_TRUST_PROXY=trusted, KINDRED_LOGINS_PER_ACCOUNT="3")
        await proc.start()
        api = ApiClient(proc.url, proc.ws_url)
        try:
            owner = await api.signup()

            async def login(password: str, headers: dict[str, str]) -> int:
                r = await api.http.post(
                    "/api/v1/auth/login", json={"email": owner.email, "password": password}, headers=headers
                )
                api.http.cookies.clear()
                return r.status_code

            attacker = {"X-Forwarded-For": "203.0.113.7"}
            assert [await login("wrong guess here", attacker) for _ in range(3)] == [401] * 3
            assert await login("wrong guess again", attacker) == 429
            return await login(PASSWORD, {})
        finally:
            await api.aclose()
            proc.stop()

    assert await owner_after_attack("127.0.0.1") == 200, "the trusted proxy's X-Forwarded-For names the attacker"
    assert await owner_after_attack("127.0.0.2") == 429, "127.0.0.1 is not the named proxy: its header is ignored"


async def test_two_instances_over_postgres_and_redis(templates: Templates) -> None:
    pg_url = await templates.postgres()
    prefix = f"kg{uuid.uuid4().hex[:8]}"
    a, b = granian(pg_url, REDIS_URL, prefix), granian(pg_url, REDIS_URL, prefix)
    await a.start()
    await b.start()
    api_a, api_b = ApiClient(a.url, a.ws_url), ApiClient(b.url, b.ws_url)
    try:
        c = await make_circle(api_a, members=2)
        m1, m2 = c.members
        listener = await api_a.ws(m1.token)
        await listener.subscribe(c.room_id)
        posted = await m2.post(c.room_id, "through the other instance")
        r = await api_b.http.post(f"/api/v1/rooms/{c.room_id}/posts", json={"body": "posted on b"}, headers=m2.headers)
        assert r.status_code == 201, r.text
        events = await listener.events(c.room_id, 2)
        assert [e["data"]["id"] for e in events] == [posted["id"], r.json()["id"]]
        assert events[1]["seq"] == events[0]["seq"] + 1
    finally:
        await api_a.aclose()
        await api_b.aclose()
        a.stop()
        b.stop()


def test_an_unknown_server_is_refused_with_exit_2() -> None:
    def serve(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app.cli", "serve", *args],
            env={**os.environ, **env},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    flag = serve("--server", "hypercorn")
    assert flag.returncode == 2 and "invalid choice: 'hypercorn'" in flag.stderr
    variable = serve(KINDRED_SERVER="hypercorn")
    assert variable.returncode == 2 and "KINDRED_SERVER must be one of uvicorn, granian" in variable.stderr
