"""The load generator: subscriber sockets in worker processes, posts from the coordinator.

Each worker process (uvloop) holds a share of the sockets, subscribes them, and records, for every event it
receives, the post it carries and the time from the post's send to its arrival. Posts carry their own send time
and phase in their body, so every (post, subscriber) pair is measured, across processes, on one clock. Workers
report their own CPU use, so a saturated load generator is noticed instead of being mistaken for a slow server.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing as mp
import os
import resource
import sys
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
import msgspec
import uvloop
import websockets

from bench.systems import Target

# Sockets a worker opens at once; more only queues in the kernel's accept backlog.
CONNECT_CONCURRENCY = 200
# Seconds to wait, after the last post, for deliveries still in flight.
DRAIN_SECONDS = 5.0


class Marker(msgspec.Struct):
    k: int  # post key
    t: float  # send time (time.time())
    p: str  # phase


class Data(msgspec.Struct):
    body: str = ""


class Frame(msgspec.Struct):
    type: str
    room_id: str | None = None
    data: Data | None = None
    seq: int | None = None


_frame = msgspec.json.Decoder(Frame)
_marker = msgspec.json.Decoder(Marker)
_encode = msgspec.json.Encoder().encode


@dataclass
class SocketPlan:
    url: str
    token: str
    room: str
    since: int | None = None


@dataclass
class PhaseStats:
    latencies_ms: list[float] = field(default_factory=list)
    first: float = 0.0
    last: float = 0.0


def _raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _worker(conn: Connection, plans: list[SocketPlan]) -> None:
    loop = asyncio.get_running_loop()
    phases: dict[str, PhaseStats] = {}
    counts: dict[int, int] = {}
    replayed = 0
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    sockets: list[Any] = []
    readers: set[asyncio.Task[None]] = set()
    failures = 0

    async def reader(ws: Any, plan: SocketPlan) -> None:
        nonlocal replayed
        async for raw in ws:
            now = time.time()
            frame = _frame.decode(raw)
            if frame.type != "event" or frame.data is None:
                continue
            try:
                mark = _marker.decode(frame.data.body)
            except msgspec.DecodeError:
                continue
            if mark.p == "seed":
                replayed += 1
                continue
            counts[mark.k] = counts.get(mark.k, 0) + 1
            stats = phases.get(mark.p)
            if stats is None:
                stats = phases[mark.p] = PhaseStats(first=now)
            stats.latencies_ms.append((now - mark.t) * 1000)
            stats.last = now

    async def open_socket(plan: SocketPlan) -> None:
        nonlocal failures
        async with gate:
            try:
                ws = await websockets.connect(
                    plan.url,
                    additional_headers={"Authorization": f"Bearer {plan.token}"},
                    max_size=2**22,
                    open_timeout=60,
                    compression=None,
                )
                subscribe: dict[str, Any] = {"op": "subscribe", "room_id": plan.room}
                if plan.since is not None:
                    subscribe["since"] = plan.since
                await ws.send(_encode(subscribe).decode())
                sockets.append(ws)
                readers.add(loop.create_task(reader(ws, plan)))
            except Exception:
                failures += 1

    started = time.perf_counter()
    await asyncio.gather(*(open_socket(p) for p in plans))
    conn.send({"ready": len(sockets), "failures": failures, "connect_seconds": time.perf_counter() - started})
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "report":
            conn.send(
                {
                    "phases": {
                        name: {"latencies_ms": s.latencies_ms, "first": s.first, "last": s.last}
                        for name, s in phases.items()
                    },
                    "counts": counts,
                    "replayed": replayed,
                    "cpu_seconds": time.process_time() - cpu_start,
                    "wall_seconds": time.perf_counter() - wall_start,
                }
            )
        elif command == "reset":
            phases.clear()
            counts.clear()
            replayed = 0
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            conn.send("reset")  # every command is answered, so the coordinator never waits on a silent worker
        elif command == "stop":
            for ws in sockets:
                with _suppress():
                    await asyncio.wait_for(ws.close(), 2)
            conn.send("stopped")
            return


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


def _worker_main(conn: Connection, plans: list[SocketPlan]) -> None:
    _raise_fd_limit()
    try:
        uvloop.run(_worker(conn, plans))
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        raise


class Subscribers:
    """Worker processes holding the subscriber sockets."""

    def __init__(self, plans: list[SocketPlan], processes: int) -> None:
        self.plans = plans
        ctx = mp.get_context("spawn")
        self._pipes: list[Connection] = []
        self._procs: list[Any] = []
        for i in range(processes):
            mine = plans[i::processes]
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(child, mine), daemon=True)
            proc.start()
            self._pipes.append(parent)
            self._procs.append(proc)

    async def _recv(self, i: int) -> Any:
        try:
            return await asyncio.to_thread(self._pipes[i].recv)
        except EOFError:
            raise RuntimeError(f"load generator worker {i} died (exit code {self._procs[i].exitcode})") from None

    async def ready(self) -> dict[str, Any]:
        answers = [await self._recv(i) for i in range(len(self._pipes))]
        return {
            "sockets": sum(a["ready"] for a in answers),
            "failures": sum(a["failures"] for a in answers),
            "connect_seconds": max(a["connect_seconds"] for a in answers),
        }

    async def command(self, command: str) -> list[Any]:
        for pipe in self._pipes:
            pipe.send(command)
        return [await self._recv(i) for i in range(len(self._pipes))]

    async def close(self) -> None:
        with _suppress():
            await asyncio.wait_for(self.command("stop"), 30)
        for proc in self._procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()


def merge(reports: list[dict[str, Any]]) -> dict[str, Any]:
    phases: dict[str, dict[str, Any]] = {}
    counts: dict[int, int] = {}
    for report in reports:
        for name, stats in report["phases"].items():
            merged = phases.setdefault(name, {"latencies_ms": [], "first": stats["first"], "last": stats["last"]})
            merged["latencies_ms"].extend(stats["latencies_ms"])
            merged["first"] = min(merged["first"], stats["first"])
            merged["last"] = max(merged["last"], stats["last"])
        for key, n in report["counts"].items():
            counts[int(key)] = counts.get(int(key), 0) + n
    cpu = sum(r["cpu_seconds"] for r in reports)
    wall = max(r["wall_seconds"] for r in reports)
    return {
        "phases": phases,
        "counts": counts,
        "replayed": sum(r["replayed"] for r in reports),
        # CPU seconds per second of wall time, per worker process: near 1.0 means a worker was saturated.
        "loadgen_cpu_per_worker": cpu / max(wall, 1e-9) / len(reports),
    }


class Poster:
    """Sends posts through the real HTTP API and remembers which were accepted (expected deliveries)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.keys = itertools.count(1)
        self.accepted: dict[int, str] = {}  # post key -> room
        self.rejected = 0
        self.post_ms: list[float] = []
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Poster:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=512), timeout=aiohttp.ClientTimeout(total=60)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        assert self._session is not None
        await self._session.close()

    async def post(self, i: int, room: str, phase: str) -> None:
        assert self._session is not None
        key = next(self.keys)
        token = self.target.poster_tokens[i % len(self.target.poster_tokens)]
        sent = time.time()
        body = _encode(Marker(k=key, t=sent, p=phase)).decode()
        try:
            async with self._session.post(
                self.target.post_url(i, room), json={"body": body}, headers={"Authorization": f"Bearer {token}"}
            ) as response:
                await response.read()
                if response.status == 201:
                    self.accepted[key] = room
                    self.post_ms.append((time.time() - sent) * 1000)
                else:
                    self.rejected += 1
        except (TimeoutError, aiohttp.ClientError):
            self.rejected += 1

    async def fixed_rate(self, rate: float, seconds: float, phase: str) -> None:
        """`rate` posts a second, spread over the rooms, sent on schedule whether or not answers have come."""
        interval = 1.0 / rate
        start = time.perf_counter()
        for n in itertools.count():
            due = start + n * interval
            if due - start >= seconds:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(self.post(n, self.target.rooms[n % len(self.target.rooms)], phase))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def saturate(self, concurrency: int, seconds: float, phase: str) -> float:
        """Post as fast as the system accepts, `concurrency` at a time; returns the phase's duration."""
        start = time.perf_counter()
        deadline = start + seconds

        async def loop(worker: int) -> None:
            n = worker
            while time.perf_counter() < deadline:
                await self.post(n, self.target.rooms[n % len(self.target.rooms)], phase)
                n += concurrency

        await asyncio.gather(*(loop(w) for w in range(concurrency)))
        return time.perf_counter() - start


def plans_for(target: Target, per_room: int, since: int | None = None) -> list[SocketPlan]:
    plans = []
    n = 0
    for room in target.rooms:
        for _ in range(per_room):
            plans.append(
                SocketPlan(target.ws_url(n), target.subscriber_tokens[n % len(target.subscriber_tokens)], room, since)
            )
            n += 1
    return plans


def default_processes() -> int:
    # Several processes so one core's worth of parsing never caps the measurement, but not more than the box has.
    return max(2, min(4, os.cpu_count() or 2))
