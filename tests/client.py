"""A small client for the public contract, used by the integration tests: real HTTP, real websockets."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

# A frame as a test reads it, and a test of one.
Frame = dict[str, Any]
Match = Callable[[Frame], bool]

PASSWORD = "a long enough passphrase 42"

# How long any wait for a state (a frame, an answer, a socket opening) may take before the test fails saying what
# never came. A deadline, not a timed assertion: on a quiet machine the states arrive in milliseconds, on a loaded
# one they may take seconds, and a test must never fail only because the machine was busy (docs/reliability.md).
DEADLINE = 30.0
_counter = itertools.count(1)


class WsClient:
    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        # Frames read while waiting for something else, kept in order for later `recv` calls.
        self.backlog: list[dict[str, Any]] = []

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.conn.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, timeout: float = DEADLINE) -> dict[str, Any]:
        if self.backlog:
            return self.backlog.pop(0)
        raw = await asyncio.wait_for(self.conn.recv(), timeout)
        return json.loads(raw)  # type: ignore[no-any-return]

    async def recv_until(self, match: Callable[[dict[str, Any]], bool], timeout: float = DEADLINE) -> dict[str, Any]:
        """The first frame matching; frames before it that don't match are kept for later."""
        for i, frame in enumerate(self.backlog):
            if match(frame):
                return self.backlog.pop(i)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"no matching frame in {timeout}s; backlog: {self.backlog[-5:]}")
            raw = await asyncio.wait_for(self.conn.recv(), left)
            frame = json.loads(raw)
            if match(frame):
                return frame  # type: ignore[no-any-return]
            self.backlog.append(frame)

    async def events(self, room_id: str, n: int, timeout: float = DEADLINE) -> list[dict[str, Any]]:
        out = []
        for _ in range(n):
            out.append(
                await self.recv_until(lambda f: f.get("type") == "event" and f.get("room_id") == room_id, timeout)
            )
        return out

    async def subscribe(self, room_id: str, since: int | None = None) -> dict[str, Any]:
        frame: dict[str, Any] = {"op": "subscribe", "room_id": room_id}
        if since is not None:
            frame["since"] = since
        await self.send(frame)
        return await self.recv_until(
            lambda f: f.get("type") in ("subscribed", "resync", "error") and f.get("room_id") == room_id
        )

    async def quiet(self, seconds: float = 0.3) -> list[dict[str, Any]]:
        """Everything that arrives within `seconds` (presence included)."""
        got = list(self.backlog)
        self.backlog.clear()
        try:
            while True:
                raw = await asyncio.wait_for(self.conn.recv(), seconds)
                got.append(json.loads(raw))
        except TimeoutError:
            return got

    async def close(self) -> None:
        await self.conn.close()


@dataclass
class User:
    api: ApiClient
    email: str
    name: str
    token: str
    id: str
    aliases: dict[str, str] = field(default_factory=dict)  # circle id -> alias

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def call(self, method: str, path: str, json_body: Any = None, **kw: Any) -> httpx.Response:
        return await self.api.http.request(method, path, json=json_body, headers=self.headers, **kw)

    async def ok(self, method: str, path: str, json_body: Any = None, status: int | None = None) -> Any:
        response = await self.call(method, path, json_body)
        expected = status or (201 if method == "POST" else 204 if method == "DELETE" else 200)
        assert response.status_code == expected, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    async def post(self, room_id: str, body: str, **extra: Any) -> dict[str, Any]:
        return await self.ok("POST", f"/api/v1/rooms/{room_id}/posts", {"body": body, **extra})  # type: ignore[no-any-return]

    async def ws(self, **headers: str) -> WsClient:
        return await self.api.ws(self.token, **headers)


class ApiClient:
    def __init__(self, base_url: str, ws_url: str) -> None:
        self.base_url = base_url
        self.ws_url = ws_url
        self.http = httpx.AsyncClient(base_url=base_url, timeout=DEADLINE)
        self._sockets: list[WsClient] = []

    async def aclose(self) -> None:
        for sock in self._sockets:
            try:
                await asyncio.wait_for(sock.close(), 2)
            except Exception:
                pass
        await self.http.aclose()

    async def signup(self, name: str | None = None) -> User:
        n = next(_counter)
        name = name or f"Person {n}"
        email = f"p{n}-{uuid.uuid4().hex[:8]}@example.org"
        r = await self.http.post("/api/v1/accounts", json={"email": email, "password": PASSWORD, "name": name})
        assert r.status_code == 201, r.text
        account_id = r.json()["id"]
        r = await self.http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        # API users authenticate by bearer token; a browser-style cookie jar would make every call cookie-authenticated.
        self.http.cookies.clear()
        return User(self, email, name, r.json()["token"], account_id)

    async def ws(self, token: str | None = None, **headers: str) -> WsClient:
        extra = dict(headers)
        if token:
            extra["Authorization"] = f"Bearer {token}"
        conn = await websockets.connect(self.ws_url, additional_headers=extra, max_size=2**24, open_timeout=DEADLINE)
        client = WsClient(conn)
        self._sockets.append(client)
        return client


@dataclass
class Circle:
    id: str
    room_id: str
    coach: User
    members: list[User]
    invite: str


async def make_circle(api: ApiClient, members: int = 2, coach_name: str = "Coach Dana") -> Circle:
    coach = await api.signup(coach_name)
    circle = await coach.ok(
        "POST",
        "/api/v1/circles",
        {
            "name": "Saying No",
            "commonality": "Learning to say no without fearing for the relationship",
            "norms": "Be kind. What is said here stays here.",
        },
    )
    rooms = await coach.ok("GET", f"/api/v1/circles/{circle['id']}/rooms")
    invite = await coach.ok("POST", f"/api/v1/circles/{circle['id']}/invites", {})
    people = []
    for i in range(members):
        user = await api.signup()
        alias = f"Member{i + 1}"
        await user.ok("POST", f"/api/v1/invites/{invite['code']}/join", {"alias": alias})
        user.aliases[circle["id"]] = alias
        people.append(user)
    return Circle(circle["id"], rooms[0]["id"], coach, people, invite["code"])


@contextlib.asynccontextmanager
async def page_client(api: ApiClient, user: User) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client for the HTML pages: the user's session cookie, and the CSRF token every unsafe page
    request needs (read from the cookie a page sets, sent back in the header htmx uses)."""
    async with httpx.AsyncClient(base_url=api.base_url, cookies={"kindred_session": user.token}, timeout=20) as client:
        first = await client.get("/")
        csrf = first.cookies.get("kindred_csrf") or client.cookies.get("kindred_csrf")
        assert csrf, "the pages set a CSRF cookie"
        client.headers["x-csrftoken"] = csrf
        yield client
