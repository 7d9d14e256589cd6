"""The systems under test, behind one shape: HTTP and websocket URLs, rooms, and tokens to act with.

Kindred is set up through its public API, as its users would be: a coach opens a circle and rooms, members sign up,
join with an invite and sign in. The peers hand out tokens from a sign-in endpoint.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx

PASSWORD = "a bench password, long enough"


@dataclass
class Target:
    name: str
    http: list[str]  # base URLs for posting, used round robin
    ws: list[str]  # websocket URLs, used round robin
    rooms: list[str]
    subscriber_tokens: list[str]
    poster_tokens: list[str]
    # Kindred posts to /api/v1/rooms/{room}/posts; the peers to /api/rooms/{room}/posts.
    post_path: str

    def post_url(self, i: int, room: str) -> str:
        return self.http[i % len(self.http)] + self.post_path.format(room=room)

    def ws_url(self, i: int) -> str:
        return self.ws[i % len(self.ws)]


async def kindred(urls: list[str], rooms: int, subscribers: int, posters: int) -> Target:
    """Accounts: `subscribers` members (each socket reuses one of them) and `posters` members who post."""
    # API clients use bearer tokens; a cookie jar would make requests cookie-authenticated (and need CSRF).
    async with aiohttp.ClientSession(
        base_url=urls[0], cookie_jar=aiohttp.DummyCookieJar(), timeout=aiohttp.ClientTimeout(total=120)
    ) as client:

        async def call(method: str, path: str, token: str | None = None, body: object = None) -> Any:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with client.request(method, path, json=body, headers=headers) as r:
                assert r.status in (200, 201), f"{method} {path}: {r.status} {await r.text()}"
                return await r.json()

        async def account(n: int, role: str) -> str:
            email = f"{role}{n}@bench.kindred"
            await call("POST", "/api/v1/accounts", body={"email": email, "password": PASSWORD, "name": f"{role} {n}"})
            return str((await call("POST", "/api/v1/auth/login", body={"email": email, "password": PASSWORD}))["token"])

        coach = await account(0, "coach")
        circle = await call("POST", "/api/v1/circles", coach, {"name": "Bench", "commonality": "fan-out"})
        room_ids = [(await call("GET", f"/api/v1/circles/{circle['id']}/rooms", coach))[0]["id"]]
        for i in range(rooms - 1):
            room_ids.append(
                (await call("POST", f"/api/v1/circles/{circle['id']}/rooms", coach, {"name": f"room {i}"}))["id"]
            )
        invite = await call("POST", f"/api/v1/circles/{circle['id']}/invites", coach, {})

        # Sign-ups hash passwords (argon2, deliberately slow): a few at a time.
        gate = asyncio.Semaphore(4)

        async def member(n: int, role: str) -> str:
            async with gate:
                token = await account(n, role)
                await call("POST", f"/api/v1/invites/{invite['code']}/join", token, {"alias": f"{role}-{n}"})
                return token

        subs = await asyncio.gather(*(member(n, "reader") for n in range(subscribers)))
        posts = await asyncio.gather(*(member(n, "writer") for n in range(posters)))
    ws = [u.replace("http://", "ws://") + "/api/v1/ws" for u in urls]
    return Target("kindred", urls, ws, room_ids, list(subs), list(posts), "/api/v1/rooms/{room}/posts")


async def peer(name: str, http: list[str], ws: list[str], rooms: int, subscribers: int, posters: int) -> Target:
    async with httpx.AsyncClient(base_url=http[0], timeout=60) as client:
        tokens = [(await client.post("/api/signin")).json()["token"] for _ in range(subscribers + posters)]
    return Target(
        name,
        http,
        ws,
        [f"r{i}" for i in range(rooms)],
        tokens[:subscribers],
        tokens[subscribers:],
        "/api/rooms/{room}/posts",
    )
