"""The systems under test behind one shape (`Target`), and how each is set up the way its users would set it up.

Kindred is set up through its public API only: a coach opens a circle and its rooms, members sign up, sign in and
join with an invite. Accounts cost two argon2 hashes each (sign-up and sign-in, ~0.1 s of CPU apiece, on purpose),
so the run makes one pool of accounts the first time Kindred starts and every later scenario reuses it: each
scenario gets a fresh circle, which the pool's members join (cheap). Sockets are dealt over the pool's readers, so
with 200 readers S1's 1,000 sockets are 5 per account and S3's 10,000 are 50; every socket is still signed in with
its account's bearer token and authorised per room. The peers hand out tokens from a sign-in endpoint.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.worker import PostPlan, SocketPlan

PASSWORD = "a bench password, long enough to pass"
# Requests in flight while setting up. Sign-ups hash passwords on the server's threads; more would only queue.
SETUP_CONCURRENCY = 8


@dataclass
class Target:
    name: str
    ws_urls: list[str]  # used round robin by socket number
    post_urls: list[str]  # templates with {room}, used round robin by post number
    rooms: list[str]
    subscriber_tokens: list[str]
    poster_tokens: list[str]
    # Whether the system promises seqs 1, 2, 3 … per room (Kindred, the ceiling), so gaps and repeats are checkable.
    ordered: bool
    # Kindred with --ws-posts: posts go over these websockets (`{"op": "post"}`) instead of HTTP.
    post_ws_urls: list[str] | None = None

    def sockets(self, per_room: int) -> list[SocketPlan]:
        plans = []
        for r, room in enumerate(self.rooms):
            for i in range(per_room):
                n = r * per_room + i
                token = self.subscriber_tokens[n % len(self.subscriber_tokens)]
                plans.append(SocketPlan(self.ws_urls[n % len(self.ws_urls)], token, room))
        return plans

    def posts(self) -> PostPlan:
        return PostPlan(self.post_urls, self.rooms, self.poster_tokens, ws_urls=self.post_ws_urls)


class _Api:
    """A few JSON calls with a bearer token; any answer but 200/201 is a setup failure."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def __call__(self, method: str, path: str, token: str | None = None, body: object = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.session.request(method, path, json=body, headers=headers) as r:
            if r.status not in (200, 201):
                raise RuntimeError(f"setup: {method} {path} answered {r.status}: {(await r.text())[:300]}")
            return await r.json()


def _session(base_url: str) -> aiohttp.ClientSession:
    # A cookie jar would make later calls cookie-authenticated, and those need a CSRF token; API clients send bearers.
    return aiohttp.ClientSession(
        base_url=base_url, cookie_jar=aiohttp.DummyCookieJar(), timeout=aiohttp.ClientTimeout(total=120)
    )


@dataclass
class KindredAccounts:
    """The run's accounts: a coach, members who post (writers) and members who read (readers); tokens by role."""

    coach: str = ""
    writers: list[str] = field(default_factory=list)
    readers: list[str] = field(default_factory=list)

    async def ensure(self, base_url: str, readers: int, writers: int) -> None:
        """Make whatever part of the pool does not exist yet."""
        async with _session(base_url) as session:
            api = _Api(session)
            gate = asyncio.Semaphore(SETUP_CONCURRENCY)

            async def account(name: str) -> str:
                async with gate:
                    email = f"{name}@bench.kindred.test"
                    await api("POST", "/api/v1/accounts", body={"email": email, "password": PASSWORD, "name": name})
                    answer = await api("POST", "/api/v1/auth/login", body={"email": email, "password": PASSWORD})
                    return str(answer["token"])

            if not self.coach:
                self.coach = await account("coach")
            self.writers += await asyncio.gather(*(account(f"writer{n}") for n in range(len(self.writers), writers)))
            self.readers += await asyncio.gather(*(account(f"reader{n}") for n in range(len(self.readers), readers)))


async def kindred(
    urls: list[str], pool: KindredAccounts, rooms: int, readers: int, writers: int, *, ws_posts: bool = False
) -> Target:
    """A fresh circle with `rooms` rooms that the first `readers` readers and `writers` writers of the pool join.
    With `ws_posts`, the writers post over websockets instead of HTTP."""
    await pool.ensure(urls[0], readers, writers)
    async with _session(urls[0]) as session:
        api = _Api(session)
        coach = pool.coach
        circle = await api("POST", "/api/v1/circles", coach, {"name": "Bench circle", "commonality": "load"})
        cid = circle["id"]
        room_ids = [str((await api("GET", f"/api/v1/circles/{cid}/rooms", coach))[0]["id"])]
        for i in range(rooms - 1):
            room_ids.append(
                str((await api("POST", f"/api/v1/circles/{cid}/rooms", coach, {"name": f"room {i}"}))["id"])
            )
        code = (await api("POST", f"/api/v1/circles/{cid}/invites", coach, {}))["code"]
        gate = asyncio.Semaphore(SETUP_CONCURRENCY)

        async def join(token: str, alias: str) -> str:
            async with gate:
                await api("POST", f"/api/v1/invites/{code}/join", token, {"alias": alias})
                return token

        subs = await asyncio.gather(*(join(t, f"reader {n}") for n, t in enumerate(pool.readers[:readers])))
        posters = await asyncio.gather(*(join(t, f"writer {n}") for n, t in enumerate(pool.writers[:writers])))
    ws_urls = [u.replace("http://", "ws://") + "/api/v1/ws" for u in urls]
    return Target(
        name="kindred",
        ws_urls=ws_urls,
        post_urls=[u + "/api/v1/rooms/{room}/posts" for u in urls],
        rooms=room_ids,
        subscriber_tokens=list(subs),
        poster_tokens=list(posters),
        ordered=True,
        post_ws_urls=ws_urls if ws_posts else None,
    )


async def peer(
    name: str, http_url: str, ws_url: str, rooms: int, readers: int, writers: int, *, ordered: bool
) -> Target:
    """A peer's tokens come from POST /api/signin (no password: its cost is not what is compared)."""
    async with _session(http_url) as session:
        api = _Api(session)
        tokens = [str((await api("POST", "/api/signin"))["token"]) for _ in range(readers + writers)]
    return Target(
        name=name,
        ws_urls=[ws_url],
        post_urls=[http_url + "/api/rooms/{room}/posts"],
        rooms=[f"room{i}" for i in range(rooms)],
        subscriber_tokens=tokens[:readers],
        poster_tokens=tokens[readers:],
        ordered=ordered,
    )
