"""One load-generator process: it holds a share of the subscriber sockets and sends a share of the posts.

The coordinator (`bench.loadgen`) starts several of these and drives them with commands over a pipe. Each process
runs its own uvloop, so parsing frames never competes with the coordinator or with another share of the sockets.

Every post carries its key, its send time and its phase in its body (`Marker`). A subscriber that receives it records
the post→delivery latency on the one clock all processes share (`time.time()`), so every (post, subscriber) pair is
measured. Each socket also checks the room's seq where the system promises seqs 1, 2, 3 … per room (Kindred): a seq
that is not the last one plus one is a gap (a lost event) or a repeat (a duplicate or a reordering).

With `PostPlan.ws_urls` (Kindred with `--ws-posts`), posts go over websockets (`{"op": "post"}`, issue 20) instead
of HTTP: each worker keeps a pool of posting sockets per instance, one post in flight on each (as aiohttp keeps one
request per connection), opening another when all are busy; a `posted` answer counts as a 201, an `error` frame as
its `status`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
import msgspec
import uvloop
import websockets

from bench.procs import raise_fd_limit

# Seconds a socket may take from TCP connect to its `subscribed` ack (replay included) before it counts as failed.
SUBSCRIBE_TIMEOUT = 60.0
# Largest frame a subscriber accepts: presence lists of big rooms are tens of KiB; this is only a sanity bound.
MAX_FRAME = 2**22
# Seconds before a post's HTTP request counts as rejected.
POST_TIMEOUT = 30.0


class Marker(msgspec.Struct, array_like=True):
    k: int  # post key, unique in the run
    t: float  # send time, time.time()
    p: str  # phase


class _Data(msgspec.Struct):
    body: str = ""


class _Frame(msgspec.Struct):
    type: str
    room_id: str | None = None
    seq: int | None = None
    last_seq: int | None = None
    data: _Data | None = None


_decode_frame = msgspec.json.Decoder(_Frame).decode
_decode_marker = msgspec.json.Decoder(Marker).decode
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class SocketPlan:
    url: str
    token: str
    room: str
    # More rooms the same socket subscribes to after `room` (S7, S8), one at a time.
    also: tuple[str, ...] = ()
    # Local address to connect from (127.0.0.x), so that 100,000 sockets do not run out of one address's ports.
    source: str = ""


@dataclass(frozen=True)
class PostPlan:
    """Where this worker's posts go: round robin over rooms, URLs and poster tokens, by post number."""

    urls: list[str]  # post URL templates with a {room} field, one per server instance
    rooms: list[str]
    tokens: list[str]
    # Post over these websockets instead (Kindred's `{"op": "post"}`), one URL per server instance.
    ws_urls: list[str] | None = None


class _Answer(msgspec.Struct):
    """The answer to a post op, as far as the load generator reads it (the post itself is skipped)."""

    type: str
    status: int | None = None


_decode_answer = msgspec.json.Decoder(_Answer).decode


@dataclass(eq=False)
class Poster:
    """A posting socket: one post in flight at a time, its answer awaited in `answer`."""

    ws: Any
    open: bool = True
    answer: asyncio.Future[_Answer] | None = None


@dataclass
class Phase:
    latencies_ms: list[float] = field(default_factory=list)
    first: float = 0.0
    last: float = 0.0


@dataclass
class Sub:
    """One subscriber socket and what it has seen."""

    plan: SocketPlan
    ws: Any = None
    last_seq: int | None = None
    # Last seq per room of `plan.also`.
    seqs: dict[str, int] = field(default_factory=dict)
    replayed: int = 0
    acked: asyncio.Future[str] | None = None


# Width of the buckets deliveries are counted in by arrival time, in seconds.
ARRIVAL_BUCKET = 0.1


@dataclass
class Counters:
    phases: dict[str, Phase] = field(default_factory=dict)
    # Deliveries by arrival time (bucket index = time.time() // ARRIVAL_BUCKET), every phase together: how many a
    # system made in any window, even while it still works through an earlier phase's backlog.
    arrivals: dict[int, int] = field(default_factory=dict)
    gaps: int = 0  # events missing between two received seqs
    repeats: int = 0  # a seq at or below one already received: a duplicate or a reordering


class Worker:
    def __init__(self, index: int, workers: int, sockets: list[SocketPlan], posts: PostPlan | None, ordered: bool):
        self.index = index
        self.workers = workers
        self.subs = [Sub(plan) for plan in sockets]
        self.posts = posts
        # Kindred promises seqs 1, 2, 3 … per room; the peers do not (Django's seq is a table-wide id, and the
        # ceiling's processes may publish a room's seqs out of order).
        self.ordered = ordered
        self.counters = Counters()
        self._readers: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None
        # Posting sockets by instance URL (idle ones), and how many were opened (to deal tokens round robin).
        self._posters: dict[str, list[Poster]] = {}
        self._posters_opened = 0

    # --- subscribers -----------------------------------------------------------------------------------------------

    def _on_frame(self, sub: Sub, raw: str | bytes, now: float) -> None:
        frame = _decode_frame(raw)
        kind = frame.type
        if kind == "event" and frame.data is not None:
            self._on_event(sub, frame, now)
        elif kind in ("subscribed", "resync"):
            if frame.last_seq is not None:
                if frame.room_id is None or frame.room_id == sub.plan.room:
                    sub.last_seq = frame.last_seq
                else:
                    sub.seqs[frame.room_id] = frame.last_seq
            if sub.acked is not None and not sub.acked.done():
                sub.acked.set_result(kind)
        elif kind == "unsubscribed" and sub.acked is not None and not sub.acked.done():
            sub.acked.set_result(kind)
        elif kind == "error" and sub.acked is not None and not sub.acked.done():
            sub.acked.set_result("error")

    def _on_event(self, sub: Sub, frame: _Frame, now: float) -> None:
        counters = self.counters
        seq = frame.seq
        if self.ordered and seq is not None:
            main = frame.room_id is None or frame.room_id == sub.plan.room
            last = sub.last_seq if main else sub.seqs.get(frame.room_id)  # type: ignore[arg-type]
            if last is not None:
                if seq <= last:
                    counters.repeats += 1
                    return
                counters.gaps += seq - last - 1
            if main:
                sub.last_seq = seq
            else:
                sub.seqs[frame.room_id] = seq  # type: ignore[index]
        try:
            mark = _decode_marker(frame.data.body)  # type: ignore[union-attr]
        except msgspec.DecodeError:
            return  # not a benchmark post
        if sub.acked is not None and not sub.acked.done():
            sub.replayed += 1  # events before the `subscribed` ack are the replay
            return
        phase = counters.phases.get(mark.p)
        if phase is None:
            phase = counters.phases[mark.p] = Phase(first=now)
        phase.latencies_ms.append((now - mark.t) * 1000.0)
        phase.last = now
        bucket = int(now // ARRIVAL_BUCKET)
        counters.arrivals[bucket] = counters.arrivals.get(bucket, 0) + 1

    async def _read(self, sub: Sub) -> None:
        on_frame, clock = self._on_frame, time.time
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in sub.ws:
                on_frame(sub, raw, clock())
        if sub.acked is not None and not sub.acked.done():
            sub.acked.set_result("closed")

    async def _open(self, sub: Sub, since_last: bool, gate: asyncio.Semaphore) -> float | None:
        """Connect and subscribe one socket; seconds until its ack (after any replay), or None if it failed."""
        loop = asyncio.get_running_loop()
        async with gate:
            started = time.perf_counter()
            try:
                sub.ws = await websockets.connect(
                    sub.plan.url,
                    additional_headers={"Authorization": f"Bearer {sub.plan.token}"},
                    max_size=MAX_FRAME,
                    open_timeout=SUBSCRIBE_TIMEOUT,
                    compression=None,
                    # Kindred's and the peers' servers ping; the clients of a benchmark need not.
                    ping_interval=None,
                    **({"local_addr": (sub.plan.source, 0)} if sub.plan.source else {}),
                )
            except (OSError, TimeoutError, websockets.InvalidHandshake):
                return None
            sub.acked = loop.create_future()
            sub.replayed = 0
            frame: dict[str, Any] = {"op": "subscribe", "room_id": sub.plan.room}
            if since_last and sub.last_seq is not None:
                frame["since"] = sub.last_seq
            task = loop.create_task(self._read(sub))
            self._readers.add(task)
            task.add_done_callback(self._readers.discard)
            try:
                await sub.ws.send(_encode(frame).decode())
            except websockets.ConnectionClosed:  # the server closed it first (on a loaded box: a missed ping)
                return None
        if not await self._acked(sub):
            return None
        for room in sub.plan.also:
            sub.acked = loop.create_future()
            try:
                await sub.ws.send(_encode({"op": "subscribe", "room_id": room}).decode())
            except websockets.ConnectionClosed:
                return None
            if not await self._acked(sub):
                return None
        return time.perf_counter() - started

    @staticmethod
    async def _acked(sub: Sub, want: tuple[str, ...] = ("subscribed", "resync")) -> bool:
        assert sub.acked is not None
        try:
            outcome = await asyncio.wait_for(asyncio.shield(sub.acked), SUBSCRIBE_TIMEOUT)
        except TimeoutError:
            return False
        finally:
            sub.acked = None
        return outcome in want

    async def churn(self, rooms: list[str], concurrency: int, leave: bool = True, join: bool = True) -> dict[str, Any]:
        """Every socket reading one of `rooms` unsubscribes from it and subscribes again (with `since`, so nothing is
        missed), one room at a time per socket: the cost of subscription churn. Returns pairs done and failed. With
        `join` false it only leaves, with `leave` false it only joins again (a churn with a pause between)."""
        wanted = set(rooms)
        gate = asyncio.Semaphore(max(1, concurrency))
        loop = asyncio.get_running_loop()
        started, cpu = time.perf_counter(), time.process_time()

        async def cycle(sub: Sub) -> tuple[int, int]:
            done = failed = 0
            for room in (sub.plan.room, *sub.plan.also):
                if room not in wanted:
                    continue
                async with gate:
                    left = True
                    if leave:
                        sub.acked = loop.create_future()
                        with contextlib.suppress(websockets.ConnectionClosed):
                            await sub.ws.send(_encode({"op": "unsubscribe", "room_id": room}).decode())
                        left = await self._acked(sub, ("unsubscribed",))
                    if not join:
                        done, failed = (done + 1, failed) if left else (done, failed + 1)
                        continue
                    since = sub.last_seq if room == sub.plan.room else sub.seqs.get(room)
                    frame: dict[str, Any] = {"op": "subscribe", "room_id": room}
                    if since is not None:
                        frame["since"] = since
                    sub.acked = loop.create_future()
                    with contextlib.suppress(websockets.ConnectionClosed):
                        await sub.ws.send(_encode(frame).decode())
                    if left and await self._acked(sub):
                        done += 1
                    else:
                        failed += 1
            return done, failed

        results = await asyncio.gather(*(cycle(sub) for sub in self.subs if sub.ws is not None))
        took = time.perf_counter() - started
        return {
            "pairs": sum(d for d, _ in results),
            "failed": sum(f for _, f in results),
            "seconds": took,
            "cpu": _cpu(cpu, took),
        }

    async def connect(self, concurrency: int, since_last: bool = False) -> dict[str, Any]:
        gate = asyncio.Semaphore(max(1, concurrency))
        started = time.perf_counter()
        cpu = time.process_time()
        times = await asyncio.gather(*(self._open(sub, since_last, gate) for sub in self.subs))
        took = time.perf_counter() - started
        ok = [t for t in times if t is not None]
        return {
            "sockets": len(ok),
            "failures": len(times) - len(ok),
            "seconds": took,
            "ack_seconds": ok,
            "replayed": sum(sub.replayed for sub in self.subs),
            "cpu": _cpu(cpu, took),
        }

    async def drop(self) -> dict[str, Any]:
        """Close every socket at once (a network blip); each remembers its last seq to reconnect with."""
        await asyncio.gather(*(_close(sub.ws) for sub in self.subs if sub.ws is not None))
        return {"dropped": len(self.subs)}

    # --- posters ---------------------------------------------------------------------------------------------------

    async def _read_answers(self, poster: Poster) -> None:
        with contextlib.suppress(websockets.ConnectionClosed, OSError):
            async for raw in poster.ws:
                answer = _decode_answer(raw)
                if answer.type in ("posted", "error") and poster.answer is not None and not poster.answer.done():
                    poster.answer.set_result(answer)
        poster.open = False
        if poster.answer is not None and not poster.answer.done():
            poster.answer.set_exception(ConnectionError("the posting socket closed"))

    async def _poster(self, url: str) -> Poster:
        idle = self._posters.setdefault(url, [])
        while idle:
            poster = idle.pop()
            if poster.open:
                return poster
        plan = self.posts
        assert plan is not None
        token = plan.tokens[self._posters_opened % len(plan.tokens)]
        self._posters_opened += 1
        ws = await websockets.connect(
            url,
            additional_headers={"Authorization": f"Bearer {token}"},
            max_size=MAX_FRAME,
            open_timeout=POST_TIMEOUT,
            compression=None,
            ping_interval=None,
        )
        poster = Poster(ws)
        task = asyncio.get_running_loop().create_task(self._read_answers(poster))
        self._readers.add(task)
        task.add_done_callback(self._readers.discard)
        return poster

    async def warm_posters(self, per_url: int) -> dict[str, Any]:
        """Open `per_url` posting sockets per instance before the posts start, so no post waits for a handshake."""
        plan = self.posts
        if plan is None or not plan.ws_urls:
            return {"posters": 0}
        urls = [url for url in plan.ws_urls for _ in range(per_url)]
        opened = await asyncio.gather(*(self._poster(url) for url in urls))
        for url, poster in zip(urls, opened, strict=True):
            self._posters[url].append(poster)
        return {"posters": len(opened)}

    async def _ws_post(self, n: int, key: int, phase: str, answers: dict[str, Any]) -> None:
        plan = self.posts
        assert plan is not None and plan.ws_urls
        url = plan.ws_urls[n % len(plan.ws_urls)]
        room = plan.rooms[n % len(plan.rooms)]
        sent = time.time()
        body = _encode(Marker(k=key, t=sent, p=phase)).decode()
        poster: Poster | None = None
        try:
            poster = await self._poster(url)
            poster.answer = asyncio.get_running_loop().create_future()
            await poster.ws.send(_encode({"op": "post", "room_id": room, "body": body, "client_id": str(key)}).decode())
            answer = await asyncio.wait_for(poster.answer, POST_TIMEOUT)
            outcome = "201" if answer.type == "posted" else str(answer.status)
        except (TimeoutError, OSError, websockets.ConnectionClosed, websockets.InvalidHandshake) as exc:
            outcome = type(exc).__name__
            if poster is not None:
                poster.open = False  # an answer may still come for this post: the socket is not reused
                await _close(poster.ws)
        if poster is not None:
            poster.answer = None
            if poster.open:
                self._posters[url].append(poster)
        if outcome == "201":
            answers["accepted"] += 1
            answers["post_ms"].append((time.time() - sent) * 1000.0)
        else:
            answers["rejected"] += 1
            answers["rejections"][outcome] = answers["rejections"].get(outcome, 0) + 1

    async def _post(self, n: int, key: int, phase: str, answers: dict[str, Any]) -> None:
        plan = self.posts
        if plan is not None and plan.ws_urls:
            await self._ws_post(n, key, phase, answers)
            return
        assert plan is not None and self._http is not None
        room = plan.rooms[n % len(plan.rooms)]
        url = plan.urls[n % len(plan.urls)].format(room=room)
        token = plan.tokens[n % len(plan.tokens)]
        sent = time.time()
        body = _encode(Marker(k=key, t=sent, p=phase)).decode()
        try:
            async with self._http.post(url, json={"body": body}, headers={"Authorization": f"Bearer {token}"}) as r:
                await r.read()
                outcome = str(r.status)
        except (TimeoutError, aiohttp.ClientError) as exc:
            outcome = type(exc).__name__
        if outcome == "201":
            answers["accepted"] += 1
            answers["post_ms"].append((time.time() - sent) * 1000.0)
        else:
            answers["rejected"] += 1
            answers["rejections"][outcome] = answers["rejections"].get(outcome, 0) + 1

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT),
                # API clients use bearer tokens; a cookie jar would turn them into cookie requests (CSRF-checked).
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._http

    async def post_fixed(
        self, rate: float, seconds: float, start_at: float, key_base: int, phase: str
    ) -> dict[str, Any]:
        """This worker's share of `rate` posts a second: post number m = index + workers·j is due at start + m/rate,
        and is sent then whether or not earlier answers have come (an open loop, so a slow server meets its load)."""
        self._session()
        answers: dict[str, Any] = {"accepted": 0, "rejected": 0, "rejections": {}, "post_ms": []}
        tasks: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()
        cpu, wall = time.process_time(), time.perf_counter()
        m = self.index
        while m / rate < seconds:
            delay = start_at + m / rate - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            task = loop.create_task(self._post(m, key_base + m, phase, answers))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            m += self.workers
        if tasks:
            await asyncio.gather(*tasks)
        answers["cpu"] = _cpu(cpu, time.perf_counter() - wall)
        return answers

    async def saturate(self, concurrency: int, seconds: float, key_base: int, phase: str) -> dict[str, Any]:
        """Post as fast as the system answers, `concurrency` requests in flight from this worker (a closed loop)."""
        self._session()
        answers: dict[str, Any] = {"accepted": 0, "rejected": 0, "rejections": {}, "post_ms": []}
        deadline = time.perf_counter() + seconds
        cpu, wall = time.process_time(), time.perf_counter()
        counter = iter(range(self.index, 1 << 62, self.workers))

        async def lane() -> None:
            while time.perf_counter() < deadline:
                m = next(counter)
                await self._post(m, key_base + m, phase, answers)

        await asyncio.gather(*(lane() for _ in range(concurrency)))
        answers["seconds"] = time.perf_counter() - wall
        answers["cpu"] = _cpu(cpu, answers["seconds"])
        return answers

    # --- reporting -------------------------------------------------------------------------------------------------

    def report(self, phases: list[str] | None) -> dict[str, Any]:
        c = self.counters
        wanted = c.phases if phases is None else {p: c.phases[p] for p in phases if p in c.phases}
        return {
            "phases": {
                name: {"latencies_ms": s.latencies_ms, "first": s.first, "last": s.last} for name, s in wanted.items()
            },
            "arrivals": c.arrivals,
            "gaps": c.gaps,
            "repeats": c.repeats,
        }

    def counts(self) -> dict[str, int]:
        return {name: len(phase.latencies_ms) for name, phase in self.counters.phases.items()}

    def reset(self) -> dict[str, Any]:
        self.counters = Counters()
        return {}

    async def stop(self) -> dict[str, Any]:
        await asyncio.gather(*(_close(sub.ws) for sub in self.subs if sub.ws is not None))
        await asyncio.gather(*(_close(p.ws) for idle in self._posters.values() for p in idle))
        for task in list(self._readers):
            task.cancel()
        if self._http is not None:
            await self._http.close()
        return {}


def _cpu(cpu_start: float, wall: float) -> float:
    """This process's CPU seconds per wall second since `cpu_start`: near 1.0 means it was saturated."""
    return (time.process_time() - cpu_start) / max(wall, 1e-9)


async def _close(ws: Any) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(), 2)


async def _serve(conn: Connection, worker: Worker) -> None:
    loop = asyncio.get_running_loop()
    handlers: dict[str, Callable[..., Any]] = {
        "connect": worker.connect,
        "warm_posters": worker.warm_posters,
        "drop": worker.drop,
        "churn": worker.churn,
        "post_fixed": worker.post_fixed,
        "saturate": worker.saturate,
        "report": worker.report,
        "counts": worker.counts,
        "reset": worker.reset,
        "stop": worker.stop,
    }
    while True:
        name, kwargs = await loop.run_in_executor(None, conn.recv)
        try:
            answer = handlers[name](**kwargs)
            if asyncio.iscoroutine(answer):
                answer = await answer
            conn.send(("ok", answer))
        except Exception:
            conn.send(("error", traceback.format_exc()))
        if name == "stop":
            return


def main(conn: Connection, *args: Any) -> None:
    """The process entry point (multiprocessing, spawn): `args` are the Worker's."""
    raise_fd_limit()
    uvloop.run(_serve(conn, Worker(*args)))
