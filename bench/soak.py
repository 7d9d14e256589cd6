"""The soak: 2–3 `kindred serve` instances over Postgres and the soak's own Redis, a few hundred sockets and a handful
of writers, and a seeded random schedule of faults; then a checker that compares what every socket received with the
room log in Postgres (the model). docs/reliability.md says what it proves and what it measured.

    uv run python -m bench.soak [--seconds 540] [--seed S] [--sockets 300] [--accounts 30] [--instances 2]

Everything runs on 127.0.0.1, is bounded in time, and stops by itself: every process it starts (the servers, their
Redis) is stopped by PID at the end, and its database is dropped. It prints one JSON summary and exits 1 on any
violation, with the seed that replays the schedule.

What happens while it runs:
- **Clients** (sockets) subscribe to two of the circle's rooms and to their member's journal, count every event,
  and check each one as it arrives: it must be the next seq of that room (no gap, no duplicate, no reordering),
  of a room the client may read, and not later than one second after its member was removed. On any disconnect they
  reconnect to a live instance and resubscribe with `since` = the last seq they hold. Now and then a client also
  asks for another member's journal, which must be refused and never deliver anything.
- **Writers** post (over HTTP with a `client_id`, retried with the same one when the outcome is unknown), reply,
  like, edit, delete and write in journals, on any live instance; every answer is recorded. A share of the creates
  (`--socket-posts`, default 0.3) goes over a websocket of the writer's account instead (`{"op": "post"}`, issue 20):
  a `posted` answer counts as a 201, an `error` frame as its `status`, no answer (the socket closed, the instance
  was killed) as unknown, retried with the same `client_id` on a fresh socket.
- **Faults**, from the seed: sockets dropped mid-stream (many), sockets stalled until the server cuts them off as
  slow consumers, an instance killed with SIGKILL and restarted, Redis restarted, Redis paused (SIGSTOP), Postgres
  made unreachable, a member removed while their sockets are live.

The checker, at the end (after every fault is healed and every client has caught up or the wait ran out): each room's
log is gap-free; every event a client received matches the log at that seq (type and post); every client still a
member holds every seq of its rooms; every write that answered 2xx is in the log exactly once (`post.created`), one
post per `client_id`; every write that answered 503 left nothing; no 5xx but 503 while Postgres was down (and a few
seconds after, while pools reconnect); Postgres unreachable answers 503 within 2 s; after a Redis restart or pause,
every client is caught up within 5 s (p99 of the samples).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import websockets
from redis.asyncio import Redis

from bench.env import KINDRED_BENCH_ENV, free_port, raise_fd_limit
from bench.stats import percentile

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

PASSWORD = "a soak password, long enough to pass"
# A small send queue, so that a stalled socket is cut off as a slow consumer within seconds, not minutes.
SOAK_ENV = {**KINDRED_BENCH_ENV, "KINDRED_WS_SEND_QUEUE": "48", "KINDRED_WS_SEND_QUEUE_BYTES": str(512 * 1024)}
# Seconds after a member's removal answered during which an event already in flight may still arrive.
REMOVAL_GRACE = 1.0
# Seconds after Postgres is reachable again during which a 503 is still expected (pools reconnecting).
PG_GRACE = 5.0
# Targets (issue 21): seconds from "Redis is back" to every client caught up; from "Postgres is gone" to a 503.
CATCH_UP_TARGET = 5.0
PG_503_TARGET = 2.0
# The bounded waits of the run itself (not targets): a fault's recovery, the final catch-up.
RECOVERY_WAIT = 30.0
FINAL_WAIT = 90.0
HEAVY_FAULTS = ("kill_instance", "redis_restart", "redis_pause", "postgres_down", "remove_member", "stall")
# A client's receive buffer (bytes): small, so a client that stops reading pushes back on the server within a few
# frames instead of after megabytes of kernel buffers.
CLIENT_RCVBUF = 16384
# A stall: the client stops reading for this long while its member's journal gets a burst of large posts, enough to
# overflow the server's send queue for that socket (48 frames in the soak), which must cut it off as a slow consumer.
STALL_SECONDS = 10.0
STALL_BURST = 160
STALL_BODY = "a long entry, written slowly " * 620
# Seconds a post over the socket waits for its answer before its outcome counts as unknown (HTTP's total timeout).
SOCKET_POST_TIMEOUT = 10.0


def log(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Account:
    name: str
    token: str
    membership_id: str = ""
    journal: str = ""
    removable: bool = False
    removed_at: float | None = None  # monotonic time the removal answered


@dataclass
class Seen:
    room: str
    seq: int
    type: str
    post_id: str | None


@dataclass
class Client:
    n: int
    account: Account
    rooms: list[str]  # the rooms it subscribes to: two circle rooms and its member's journal
    last: dict[str, int] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    connects: int = 0
    slow_cutoffs: int = 0
    resyncs: int = 0
    forbidden: int = 0
    ws: Any = None
    stall_for: float = 0.0
    stalled: bool = False
    unavailable: int = 0
    retry: list[str] = field(default_factory=list)  # rooms to subscribe to again (answered `unavailable`)
    port: int = 0  # the instance it is connected to, 0 while it is not
    last_frame_at: float = 0.0

    def __post_init__(self) -> None:
        self.last = {room: 0 for room in self.rooms}


@dataclass
class Proc:
    """A process the soak started (a server, its Redis): one process, stopped by its PID."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, sig)


@dataclass
class Services:
    """What the soak starts and must stop: its processes (by PID) and its database (dropped at the end)."""

    logs: Path
    procs: list[Proc] = field(default_factory=list)
    database: str = ""
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    launches: int = 0

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Proc:
        self.launches += 1
        log_path = self.logs / f"{name}-{self.launches}.log"
        with open(log_path, "wb") as out:
            popen = subprocess.Popen(
                args, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT
            )
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        return proc

    async def stop(self, proc: Proc, sig: signal.Signals = signal.SIGKILL) -> None:
        proc.signal(signal.SIGCONT)
        proc.signal(sig)
        try:
            await asyncio.wait_for(asyncio.to_thread(proc.popen.wait), 15)
        except TimeoutError:
            proc.signal(signal.SIGKILL)
            await asyncio.to_thread(proc.popen.wait)
        if proc in self.procs:
            self.procs.remove(proc)

    async def create_database(self) -> str:
        self.database = f"kindred_soak_{os.getpid()}_{secrets.token_hex(3)}"
        admin = await asyncpg.connect(PG_ADMIN, timeout=5)
        try:
            await admin.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            await admin.close()
        return PG_ADMIN.rsplit("/", 1)[0] + "/" + self.database

    async def run(self, args: list[str], env: dict[str, str]) -> None:
        done = await asyncio.to_thread(
            subprocess.run, args, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")

    async def wait_http(self, url: str, proc: Proc) -> None:
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while time.monotonic() < deadline:
                if not proc.running:
                    raise RuntimeError(f"{proc.name} exited: {proc.log.read_text()[-2000:]}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(url) as r:
                        if r.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{proc.name} did not answer at {url}")

    async def close(self) -> None:
        for proc in reversed(list(self.procs)):
            await self.stop(proc, signal.SIGTERM)
        if self.database:
            admin = await asyncpg.connect(PG_ADMIN, timeout=5)
            try:
                await admin.execute(f'ALTER DATABASE "{self.database}" ALLOW_CONNECTIONS true')
                await admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            finally:
                await admin.close()


@dataclass
class Instance:
    port: int
    proc: Proc | None = None
    up: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class PostSocket:
    """A writer account's socket for posting (issue 20): answers are matched to their posts by client_id."""

    ws: Any
    waiting: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    open: bool = True


@dataclass
class World:
    args: argparse.Namespace
    rng: random.Random
    svc: Services
    db_url: str = ""
    redis_port: int = 0
    redis: Proc | None = None
    instances: list[Instance] = field(default_factory=list)
    coach: Account | None = None
    circle: str = ""
    rooms: list[str] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    clients: list[Client] = field(default_factory=list)
    stopping: bool = False
    writing: bool = True
    violations: list[dict[str, Any]] = field(default_factory=list)
    violation_count: int = 0
    delivered: int = 0
    disconnects: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    writes: dict[str, int] = field(default_factory=dict)
    created: dict[str, str] = field(default_factory=dict)  # client_id -> post id, for every 2xx create
    created_over_socket: int = 0  # of those, answered `posted` on a socket
    post_sockets: dict[str, PostSocket] = field(default_factory=dict)  # writer account token -> its posting socket
    refused: set[str] = field(default_factory=set)  # client_ids answered 503: nothing may exist for them
    posts: list[tuple[str, str, str]] = field(default_factory=list)  # (post id, room, author token)
    pg_down: list[list[float]] = field(default_factory=list)  # [down_at, up_at]
    pg_503_seconds: list[float] = field(default_factory=list)
    catch_up_seconds: list[float] = field(default_factory=list)
    session: aiohttp.ClientSession | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def violation(self, kind: str, **detail: Any) -> None:
        self.violation_count += 1
        if len(self.violations) < 30:
            self.violations.append({"kind": kind, **detail})
        log(f"VIOLATION {kind} {detail}")

    def count(self, table: dict[str, int], key: str, n: int = 1) -> None:
        table[key] = table.get(key, 0) + n

    def live(self) -> list[Instance]:
        return [i for i in self.instances if i.up] or self.instances

    def pg_is_down(self, at: float) -> bool:
        return any(down <= at <= (up or float("inf")) + PG_GRACE for down, up in self.pg_down)

    def env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.db_url,
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "KINDRED_SECRET": self.svc.secret,
            "KINDRED_DATA_DIR": str(self.svc.logs / "kindred-data"),
            **SOAK_ENV,
        }


# --- processes ----------------------------------------------------------------------------------------------------


async def start_redis(w: World) -> None:
    binary = shutil.which("redis-server") or "redis-server"
    args = [binary, "--port", str(w.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    w.redis = w.svc.spawn("redis", [*args, "--maxclients", "10000"])
    client = Redis.from_url(f"redis://127.0.0.1:{w.redis_port}/0", socket_connect_timeout=1)
    try:
        for _ in range(200):
            with contextlib.suppress(Exception):
                await client.ping()
                return
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()
    raise RuntimeError("the soak's redis-server did not start")


async def start_instance(w: World, inst: Instance) -> None:
    args = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(inst.port)]
    inst.proc = w.svc.spawn(f"kindred-{inst.port}", args, w.env())
    await w.svc.wait_http(f"{inst.url}/healthz", inst.proc)
    inst.up = True


# --- HTTP -----------------------------------------------------------------------------------------------------------


async def call(
    w: World, method: str, path: str, token: str | None, body: Any = None, inst: Instance | None = None
) -> tuple[int | None, Any]:
    """One request to an instance (a random live one by default): (status, JSON answer), or (None, error) when no
    answer came (connection refused or reset, timeout): the outcome of a write is then unknown."""
    assert w.session is not None
    target = inst or w.rng.choice(w.live())
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with w.session.request(method, target.url + path, json=body, headers=headers) as r:
            text = await r.text()
            return r.status, (json.loads(text) if text else None)
    except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
        return None, repr(exc)


async def must(w: World, method: str, path: str, token: str | None, body: Any = None) -> Any:
    status, answer = await call(w, method, path, token, body, w.instances[0])
    if status not in (200, 201):
        raise RuntimeError(f"setup: {method} {path} answered {status}: {str(answer)[:300]}")
    return answer


def judge(w: World, what: str, status: int | None, sent_at: float) -> None:
    """Every answer: counted; a 5xx is a violation unless it is a 503 while Postgres was down."""
    w.count(w.writes, f"{what} {status or 'no answer'}")
    if status is not None and status >= 500 and not (status == 503 and w.pg_is_down(sent_at)):
        w.violation("server_error", what=what, status=status)


# --- setup ----------------------------------------------------------------------------------------------------------


async def setup(w: World) -> None:
    gate = asyncio.Semaphore(6)

    async def account(name: str) -> Account:
        async with gate:
            email = f"{name}@soak.kindred.test"
            await must(w, "POST", "/api/v1/accounts", None, {"email": email, "password": PASSWORD, "name": name})
            answer = await must(w, "POST", "/api/v1/auth/login", None, {"email": email, "password": PASSWORD})
            return Account(name, str(answer["token"]))

    w.coach = await account("coach")
    circle = await must(w, "POST", "/api/v1/circles", w.coach.token, {"name": "Soak", "commonality": "faults"})
    w.circle = circle["id"]
    w.rooms = [str((await must(w, "GET", f"/api/v1/circles/{w.circle}/rooms", w.coach.token))[0]["id"])]
    for i in range(w.args.rooms - 1):
        room = await must(w, "POST", f"/api/v1/circles/{w.circle}/rooms", w.coach.token, {"name": f"room {i}"})
        w.rooms.append(str(room["id"]))
    code = (await must(w, "POST", f"/api/v1/circles/{w.circle}/invites", w.coach.token, {}))["code"]
    removable = max(1, w.args.removals)
    w.accounts = await asyncio.gather(*(account(f"member{n}") for n in range(w.args.accounts + removable)))
    for n, acc in enumerate(w.accounts):
        acc.removable = n >= w.args.accounts
        joined = await must(w, "POST", f"/api/v1/invites/{code}/join", acc.token, {"alias": f"Member {n}"})
        acc.membership_id = str(joined["membership_id"])
        journal = await must(w, "GET", f"/api/v1/memberships/{acc.membership_id}/journal", acc.token)
        acc.journal = str(journal["id"])
    for n in range(w.args.sockets):
        acc = w.accounts[n % len(w.accounts)]
        w.clients.append(Client(n, acc, [*w.rng.sample(w.rooms, min(2, len(w.rooms))), acc.journal]))


# --- clients --------------------------------------------------------------------------------------------------------


def on_frame(w: World, c: Client, raw: str | bytes) -> None:
    msg = json.loads(raw)
    kind = msg.get("type")
    if kind == "event":
        room, seq, now = msg["room_id"], msg["seq"], time.monotonic()
        removed = c.account.removed_at
        if room not in c.last:
            w.violation("foreign_room", client=c.n, room=room, seq=seq)
            return
        if removed is not None and now > removed + REMOVAL_GRACE:
            w.violation("after_access_ended", client=c.n, room=room, seq=seq, late=round(now - removed, 2))
            return
        expected = c.last[room] + 1
        if seq != expected:
            w.violation("duplicate" if seq < expected else "gap", client=c.n, room=room, seq=seq, expected=expected)
        c.last[room] = max(c.last[room], seq)
        data = msg.get("data") or {}
        post_id = data.get("post_id") or data.get("id") if isinstance(data, dict) else None
        c.seen.append(Seen(room, seq, msg["event"], post_id))
        w.delivered += 1
    elif kind == "resync":
        # More than 1,000 events missed: the client would reload over HTTP; live events follow the floor.
        c.resyncs += 1
        c.last[msg["room_id"]] = max(c.last[msg["room_id"]], int(msg["last_seq"]))
    elif kind == "error" and msg.get("code") == "forbidden":
        c.forbidden += 1
    elif kind == "error" and msg.get("code") == "unavailable" and msg.get("room_id") in c.last:
        # The server could not check access or read the log (Postgres away): subscribe again shortly, as pages do.
        c.unavailable += 1
        c.retry.append(msg["room_id"])


def resubscribe(w: World, c: Client, ws: Any, room: str) -> None:
    async def again() -> None:
        await asyncio.sleep(0.5 + w.rng.random())
        if c.ws is ws:
            with contextlib.suppress(websockets.ConnectionClosed):
                await ws.send(json.dumps({"op": "subscribe", "room_id": room, "since": c.last[room]}))

    task = asyncio.get_running_loop().create_task(again())
    w.tasks.add(task)
    task.add_done_callback(w.tasks.discard)


async def run_client(w: World, c: Client) -> None:
    url_of = lambda inst: inst.url.replace("http://", "ws://") + "/api/v1/ws"  # noqa: E731
    while not w.stopping:
        inst = w.rng.choice(w.live())
        try:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_RCVBUF)
            sock.setblocking(False)
            try:
                await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", inst.port)), 5)
            except BaseException:
                sock.close()
                raise
            ws = await websockets.connect(
                url_of(inst),
                sock=sock,
                additional_headers={"Authorization": f"Bearer {c.account.token}"},
                open_timeout=5,
                ping_interval=None,
                compression=None,
                max_queue=8,
                max_size=2**22,
            )
        except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.ConnectionClosed):
            await asyncio.sleep(0.1 + w.rng.random() * 0.4)
            continue
        c.ws, c.connects, c.port = ws, c.connects + 1, inst.port
        code: int | None = None
        stalled_at: float | None = None
        try:
            for room in c.rooms:
                await ws.send(json.dumps({"op": "subscribe", "room_id": room, "since": c.last[room]}))
            if w.rng.random() < 0.05:
                # Someone else's journal: refused, and nothing of it may ever arrive (the foreign_room check).
                other = w.rng.choice([a for a in w.accounts if a is not c.account])
                await ws.send(json.dumps({"op": "subscribe", "room_id": other.journal}))
            async for raw in ws:
                c.last_frame_at = time.monotonic()
                on_frame(w, c, raw)
                while c.retry:
                    resubscribe(w, c, ws, c.retry.pop())
                if c.stall_for:
                    # Stop reading: the client's queue fills, TCP pushes back, the server's queue overflows.
                    c.stalled, until = True, c.stall_for
                    c.stall_for = 0.0
                    await asyncio.sleep(until)
                    c.stalled, stalled_at = False, time.monotonic()
        except websockets.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
        except OSError:
            code = None
        finally:
            c.ws, c.port, c.retry = None, 0, []
            c.stalled = False
            with contextlib.suppress(Exception):
                await ws.close()
        if code is None and ws.close_code is not None:
            code = ws.close_code
        # Cut off as a slow consumer: 1013, or (when the server had to give up on a socket that stopped reading
        # altogether) the connection ended under the frames still buffered when the client read again.
        if code == 1013 or (stalled_at is not None and time.monotonic() - stalled_at < 3):
            c.slow_cutoffs += 1
        if not w.stopping:
            w.count(w.disconnects, str(code or "dropped"))
        await asyncio.sleep(w.rng.random() * 0.3)


# --- writers --------------------------------------------------------------------------------------------------------


async def _read_answers(sock: PostSocket) -> None:
    with contextlib.suppress(websockets.ConnectionClosed, OSError):
        async for raw in sock.ws:
            msg = json.loads(raw)
            waiting = sock.waiting.get(msg.get("client_id") or "")
            if msg.get("type") in ("posted", "error") and waiting is not None and not waiting.done():
                waiting.set_result(msg)
    sock.open = False
    for waiting in sock.waiting.values():
        if not waiting.done():
            waiting.set_exception(ConnectionError("the socket closed before the answer"))


async def post_socket(w: World, acc: Account) -> PostSocket | None:
    """The account's posting socket, opened on a live instance when it has none (None when that fails)."""
    sock = w.post_sockets.get(acc.token)
    if sock is not None and sock.open:
        return sock
    inst = w.rng.choice(w.live())
    try:
        ws = await websockets.connect(
            inst.url.replace("http://", "ws://") + "/api/v1/ws",
            additional_headers={"Authorization": f"Bearer {acc.token}"},
            open_timeout=5,
            ping_interval=None,
            compression=None,
            max_size=2**22,
        )
    except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.ConnectionClosed):
        return None
    sock = w.post_sockets[acc.token] = PostSocket(ws)
    task = asyncio.get_running_loop().create_task(_read_answers(sock))
    w.tasks.add(task)
    task.add_done_callback(w.tasks.discard)
    return sock


async def socket_create(w: World, acc: Account, room: str, body: dict[str, Any]) -> tuple[int | None, Any]:
    """A create over the account's socket: (201, the post) for `posted`, (status, frame) for an error frame, (None,
    why) when no answer came, as `call` answers."""
    sock = await post_socket(w, acc)
    if sock is None:
        return None, "no socket"
    client_id = body["client_id"]
    answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    sock.waiting[client_id] = answer
    try:
        await sock.ws.send(json.dumps({"op": "post", "room_id": room, **body}))
        msg = await asyncio.wait_for(answer, SOCKET_POST_TIMEOUT)
    except (websockets.ConnectionClosed, ConnectionError, OSError, TimeoutError) as exc:
        return None, repr(exc)
    finally:
        sock.waiting.pop(client_id, None)
    if msg["type"] == "posted":
        return 201, msg["post"]
    return int(msg["status"]), msg


async def create(
    w: World, acc: Account, room: str, body: dict[str, Any], what: str, rng: random.Random | None = None
) -> None:
    """A create with a client_id: retried with the same id while no answer came, as a real client would. With `rng`,
    a share of creates (`--socket-posts`) goes over the account's socket, every attempt of it."""
    client_id = f"soak-{uuid.uuid4()}"
    over_socket = rng is not None and rng.random() < w.args.socket_posts
    for _ in range(6):
        sent = time.monotonic()
        payload = {**body, "client_id": client_id}
        if over_socket:
            status, answer = await socket_create(w, acc, room, payload)
        else:
            status, answer = await call(w, "POST", f"/api/v1/rooms/{room}/posts", acc.token, payload)
        judge(w, f"{what} ws" if over_socket else what, status, sent)
        if status is None:
            await asyncio.sleep(0.3)
            continue
        if status == 201:
            w.created[client_id] = str(answer["id"])
            w.created_over_socket += over_socket
            w.posts.append((str(answer["id"]), room, acc.token))
        elif status == 503:
            w.refused.add(client_id)
        return


async def writer(w: World, n: int) -> None:
    rng = random.Random(w.args.seed * 1000 + n)
    while w.writing:
        await asyncio.sleep(rng.expovariate(w.args.rate / w.args.writers))
        members = [a for a in w.accounts if a.removed_at is None]
        acc = rng.choice(members)
        roll = rng.random()
        mine = [p for p in w.posts[-200:] if p[2] == acc.token]
        if roll < 0.45 or not w.posts:
            await create(w, acc, rng.choice(w.rooms), {"body": f"post {rng.random():.6f}"}, "post", rng)
        elif roll < 0.60:
            parent, room, _ = rng.choice(w.posts[-100:])
            if room in w.rooms:
                await create(w, acc, room, {"body": "a reply", "parent_id": parent}, "reply", rng)
        elif roll < 0.75:
            post_id, room, _ = rng.choice(w.posts[-100:])
            if room in w.rooms:
                method = "PUT" if rng.random() < 0.7 else "DELETE"
                sent = time.monotonic()
                status, _ = await call(w, method, f"/api/v1/posts/{post_id}/like", acc.token)
                judge(w, "like", status, sent)
        elif roll < 0.85 and mine:
            post_id, _, _ = rng.choice(mine)
            sent = time.monotonic()
            status, _ = await call(w, "PATCH", f"/api/v1/posts/{post_id}", acc.token, {"body": "edited"})
            judge(w, "edit", status, sent)
        elif roll < 0.90 and mine:
            post_id, _, _ = rng.choice(mine)
            sent = time.monotonic()
            status, _ = await call(w, "DELETE", f"/api/v1/posts/{post_id}", acc.token)
            judge(w, "delete", status, sent)
        else:
            await create(w, acc, acc.journal, {"body": "for my coach"}, "journal", rng)


# --- faults ---------------------------------------------------------------------------------------------------------


async def wait_caught_up(w: World, what: str) -> float | None:
    """Seconds until every client still a member, not stalled, holds each of its rooms' log up to where the log
    stood when this was called; None (and a violation) if that does not happen within RECOVERY_WAIT."""
    started = time.monotonic()
    tops = await log_tops(w)
    while time.monotonic() - started < RECOVERY_WAIT:
        behind = [
            c
            for c in w.clients
            if c.account.removed_at is None
            and not (c.stalled or c.stall_for)
            and any(c.last[r] < tops.get(r, 0) for r in c.rooms)
        ]
        if not behind:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    w.violation("not_caught_up", after=what, clients=len(behind))
    return None


async def log_tops(w: World) -> dict[str, int]:
    for _ in range(100):
        with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
            conn = await asyncpg.connect(w.db_url, timeout=2)
            try:
                rows = await conn.fetch("SELECT room::text AS room, max(seq) AS top FROM room_event GROUP BY room")
                return {r["room"]: int(r["top"]) for r in rows}
            finally:
                await conn.close()
        await asyncio.sleep(0.1)
    raise RuntimeError("Postgres did not answer for the log's tops")


async def fault(w: World, kind: str) -> None:
    w.count(w.faults, kind)
    log(f"fault: {kind}")
    if kind == "kill_instance":
        inst = w.rng.choice(w.instances)
        inst.up = False
        assert inst.proc is not None
        await w.svc.stop(inst.proc)
        await asyncio.sleep(0.5 + w.rng.random())
        await start_instance(w, inst)
        await wait_caught_up(w, kind)
    elif kind in ("redis_restart", "redis_pause"):
        if kind == "redis_restart":
            assert w.redis is not None
            await w.svc.stop(w.redis)
            await asyncio.sleep(0.5 + w.rng.random())
            await start_redis(w)
        else:
            assert w.redis is not None
            w.redis.signal(signal.SIGSTOP)
            await asyncio.sleep(2 + w.rng.random() * 2)
            w.redis.signal(signal.SIGCONT)
        took = await wait_caught_up(w, kind)
        if took is not None:
            w.catch_up_seconds.append(took)
    elif kind == "postgres_down":
        await postgres_down(w)
    elif kind == "remove_member":
        await remove_member(w)
    elif kind == "stall":
        await stall(w)


async def stall(w: World) -> None:
    """One socket stops reading while its member's journal gets a burst of large posts: the server must cut that
    socket off (and only it), and it must catch up by replay when it reconnects."""
    candidates = [c for c in w.clients if c.ws is not None and c.account.removed_at is None and not c.stalled]
    if not candidates:
        return
    c = w.rng.choice(candidates)
    cut_before, connects_before = c.slow_cutoffs, c.connects
    c.stall_for = STALL_SECONDS
    gate = asyncio.Semaphore(4)

    async def one() -> None:
        async with gate:
            await create(w, c.account, c.account.journal, {"body": STALL_BODY}, "journal")

    await asyncio.gather(*(one() for _ in range(STALL_BURST)))
    started = time.monotonic()
    while c.connects == connects_before and time.monotonic() - started < RECOVERY_WAIT:  # noqa: ASYNC110 (polling the client task's counters)
        await asyncio.sleep(0.05)
    if c.slow_cutoffs > cut_before:
        w.count(w.faults, "stall_cut_off")
    else:
        log(f"stall of client {c.n} not cut off: connects {connects_before}->{c.connects}, held {c.last}")
    await wait_caught_up(w, "stall")


async def postgres_down(w: World) -> None:
    name = w.db_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(PG_ADMIN)
    window = [time.monotonic(), 0.0]
    w.pg_down.append(window)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
        # The probe: a write while Postgres is gone answers 503 at once, and leaves nothing behind.
        acc = w.rng.choice([a for a in w.accounts if a.removed_at is None])
        probe = f"soak-probe-{uuid.uuid4()}"
        sent = time.monotonic()
        status, _ = await call(
            w, "POST", f"/api/v1/rooms/{w.rooms[0]}/posts", acc.token, {"body": "ghost?", "client_id": probe}
        )
        w.pg_503_seconds.append(time.monotonic() - sent)
        w.refused.add(probe)
        if status != 503:
            w.violation("postgres_down_not_503", status=status)
        await asyncio.sleep(1.5 + w.rng.random() * 2)
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
        window[1] = time.monotonic()
    await wait_caught_up(w, "postgres_down")


async def remove_member(w: World) -> None:
    candidates = [a for a in w.accounts if a.removable and a.removed_at is None]
    if not candidates or w.coach is None:
        return
    acc = w.rng.choice(candidates)
    path = f"/api/v1/circles/{w.circle}/members/{acc.membership_id}"
    for _ in range(5):
        sent = time.monotonic()
        status, _ = await call(w, "DELETE", path, w.coach.token)
        judge(w, "remove", status, sent)
        if status in (200, 204):
            acc.removed_at = time.monotonic()
            return
        await asyncio.sleep(0.5)


async def faults(w: World, seconds: float) -> None:
    """Heavy faults spread over the run in a seeded order, one at a time; sockets dropped and stalled all along."""
    rng = w.rng
    per_kind = max(1, round(seconds / 90))
    plan = [kind for kind in w.args.faults for _ in range(per_kind)]
    rng.shuffle(plan)
    start = time.monotonic()
    span = seconds * 0.8
    due = [start + seconds * 0.08 + span * (i + 0.5) / len(plan) for i in range(len(plan))]
    drops_per_second = w.args.drops_per_second
    while time.monotonic() - start < seconds:
        now = time.monotonic()
        if plan and now >= due[0]:
            due.pop(0)
            await fault(w, plan.pop(0))
            continue
        if rng.random() < drops_per_second * 0.1:
            victim = rng.choice(w.clients)
            if victim.ws is not None and victim.ws.transport is not None:
                w.count(w.faults, "drop")
                victim.ws.transport.abort()
        await asyncio.sleep(0.1)
    for kind in plan:  # never skipped: a slow machine runs the rest before the checks
        await fault(w, kind)


# --- the checker ----------------------------------------------------------------------------------------------------


async def check(w: World) -> dict[str, Any]:
    conn = await asyncpg.connect(w.db_url)
    try:
        rows = await conn.fetch("SELECT room::text AS room, seq, type, post_id::text AS post_id FROM room_event")
        posts = await conn.fetch(
            "SELECT client_id, count(*) AS n FROM post WHERE client_id = ANY($1::text[]) GROUP BY client_id",
            list(w.created) + list(w.refused),
        )
        created_events = await conn.fetch(
            "SELECT post_id::text AS post_id, count(*) AS n FROM room_event WHERE type = 'post.created' "
            "AND post_id = ANY($1::uuid[]) GROUP BY post_id",
            [uuid.UUID(p) for p in w.created.values()],
        )
    finally:
        await conn.close()
    log_of: dict[tuple[str, int], tuple[str, str | None]] = {}
    by_room: dict[str, list[int]] = {}
    for r in rows:
        log_of[(r["room"], r["seq"])] = (r["type"], r["post_id"])
        by_room.setdefault(r["room"], []).append(r["seq"])
    for room, seqs in by_room.items():
        if sorted(seqs) != list(range(1, len(seqs) + 1)):
            w.violation("log_not_gap_free", room=room)
    tops = {room: len(seqs) for room, seqs in by_room.items()}
    for c in w.clients:
        for s in c.seen:
            logged = log_of.get((s.room, s.seq))
            if logged is None or logged[0] != s.type or (s.post_id is not None and logged[1] != s.post_id):
                w.violation("not_as_logged", client=c.n, room=s.room, seq=s.seq, got=s.type, log=logged)
        if c.account.removed_at is None:
            for room in c.rooms:
                if c.last[room] != tops.get(room, 0):
                    w.violation(
                        "missing_at_end",
                        client=c.n,
                        room=room,
                        held=c.last[room],
                        log=tops.get(room, 0),
                        connects=c.connects,
                        unavailable=c.unavailable,
                        quiet_seconds=round(time.monotonic() - c.last_frame_at, 1),
                    )
    counts = {r["client_id"]: int(r["n"]) for r in posts}
    for client_id in w.created:
        if counts.get(client_id, 0) != 1:
            w.violation("created_not_once", client_id=client_id, posts=counts.get(client_id, 0))
    for client_id in w.refused:
        if counts.get(client_id, 0) and client_id not in w.created:
            w.violation("ghost_write", client_id=client_id)
    events = {r["post_id"]: int(r["n"]) for r in created_events}
    for post_id in w.created.values():
        if events.get(post_id, 0) != 1:
            w.violation("created_event_not_once", post_id=post_id, events=events.get(post_id, 0))
    return {"log_events": len(rows), "rooms": len(by_room)}


def _seconds(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50": round(percentile(ordered, 0.5), 3),
        "p99": round(percentile(ordered, 0.99), 3),
        "max": round(ordered[-1], 3),
    }


async def final_catch_up(w: World) -> None:
    started = time.monotonic()
    while time.monotonic() - started < FINAL_WAIT:
        tops = await log_tops(w)
        behind = [
            c for c in w.clients if c.account.removed_at is None and any(c.last[r] < tops.get(r, 0) for r in c.rooms)
        ]
        if not behind:
            return
        await asyncio.sleep(0.2)


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    raise_fd_limit()
    logs = Path(tempfile.mkdtemp(prefix="kindred-soak-"))
    w = World(args, random.Random(args.seed), Services(logs))
    began = time.monotonic()
    try:
        w.redis_port = free_port()
        await start_redis(w)
        w.db_url = await w.svc.create_database()
        await w.svc.run([sys.executable, "-m", "app.cli", "migrate"], w.env())
        w.instances = [Instance(free_port()) for _ in range(args.instances)]
        await asyncio.gather(*(start_instance(w, inst) for inst in w.instances))
        w.session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), timeout=aiohttp.ClientTimeout(total=10))
        log(f"setting up: {args.accounts} accounts, {args.sockets} sockets, {args.rooms} rooms (logs in {logs})")
        await setup(w)
        clients = [asyncio.create_task(run_client(w, c)) for c in w.clients]
        writers = [asyncio.create_task(writer(w, n)) for n in range(args.writers)]
        log(f"running for {args.seconds:.0f} s, seed {args.seed}")
        started = time.monotonic()
        await faults(w, args.seconds)
        ran = time.monotonic() - started
        w.writing = False
        await asyncio.gather(*writers, return_exceptions=True)
        for inst in w.instances:
            if not inst.up:
                await start_instance(w, inst)
        log("healing: waiting for every client to catch up")
        await final_catch_up(w)
        w.stopping = True
        for sock in w.post_sockets.values():
            with contextlib.suppress(Exception):
                await sock.ws.close()
        for c in w.clients:
            if c.ws is not None:
                with contextlib.suppress(Exception):
                    await c.ws.close()
        await asyncio.wait(clients, timeout=30)
        for task in clients:
            task.cancel()
        model = await check(w)
    finally:
        if w.session is not None:
            await w.session.close()
        await w.svc.close()
    summary = {
        "seed": args.seed,
        "seconds": round(ran, 1),
        "wall_seconds": round(time.monotonic() - began, 1),
        "instances": args.instances,
        "sockets": args.sockets,
        "accounts": args.accounts,
        "delivered_events": w.delivered,
        "disconnects": sum(w.disconnects.values()),
        "disconnects_by_code": w.disconnects,
        "slow_consumer_cutoffs": sum(c.slow_cutoffs for c in w.clients),
        "resyncs": sum(c.resyncs for c in w.clients),
        "forbidden_frames": sum(c.forbidden for c in w.clients),
        "unavailable_frames": sum(c.unavailable for c in w.clients),
        "connects": sum(c.connects for c in w.clients),
        "faults": w.faults,
        "writes": dict(sorted(w.writes.items())),
        "created": len(w.created),
        "created_over_socket": w.created_over_socket,
        "refused_503": len(w.refused),
        "catch_up_after_redis_seconds": _seconds(w.catch_up_seconds),
        "postgres_down_503_seconds": _seconds(w.pg_503_seconds),
        "model": model,
        "targets": {
            "delivered_events>=100000": w.delivered >= 100_000,
            "disconnects>=1000": sum(w.disconnects.values()) >= 1000,
            "each_fault>=5": all(w.faults.get(k, 0) >= 5 for k in HEAVY_FAULTS),
            "stalls_cut_off": w.faults.get("stall_cut_off", 0) == w.faults.get("stall", 0),
            "catch_up_p99<=5s": bool(w.catch_up_seconds)
            and percentile(sorted(w.catch_up_seconds), 0.99) <= CATCH_UP_TARGET,
            "postgres_503<=2s": bool(w.pg_503_seconds) and max(w.pg_503_seconds) <= PG_503_TARGET,
        },
        "violations": w.violation_count,
        "first_violations": w.violations,
        "replay": f"uv run python -m bench.soak --seconds {args.seconds:g} --seed {args.seed} --sockets {args.sockets} "
        f"--accounts {args.accounts} --instances {args.instances} --socket-posts {args.socket_posts:g}",
    }
    return summary


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=540.0, help="how long the faults run (default 540)")
    p.add_argument("--seed", type=int, default=None, help="the schedule's seed (default: random, printed)")
    p.add_argument("--instances", type=int, default=2, choices=(2, 3))
    p.add_argument("--sockets", type=int, default=300)
    p.add_argument("--accounts", type=int, default=30, help="members whose sockets they are (plus the removable)")
    p.add_argument("--removals", type=int, default=None, help="members that may be removed (default: one per fault)")
    p.add_argument("--rooms", type=int, default=4)
    p.add_argument("--writers", type=int, default=6)
    p.add_argument("--rate", type=float, default=12.0, help="writes per second, over all writers")
    p.add_argument(
        "--socket-posts", type=float, default=0.3, help="share of creates sent over the writer's websocket (0-1)"
    )
    p.add_argument("--drops-per-second", type=float, default=2.5)
    p.add_argument(
        "--faults",
        type=lambda text: [k for k in text.split(",") if k],
        default=list(HEAVY_FAULTS),
        help="the heavy faults to schedule, comma-separated (default: all of " + ",".join(HEAVY_FAULTS) + ")",
    )
    p.add_argument("--out", type=Path, default=None, help="also write the summary here as JSON")
    args = p.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2**31)
    if args.removals is None:
        args.removals = max(1, round(args.seconds / 90))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    summary = asyncio.run(soak(args))
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 1 if summary["violations"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
