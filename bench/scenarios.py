"""The scenarios (S1-S6 in issue 8), each starting the system it measures and stopping it afterwards."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench import systems
from bench.harness import Proc, Services, cpu_seconds, rss_bytes
from bench.loadgen import DRAIN_SECONDS, Poster, Subscribers, default_processes, merge, plans_for
from bench.systems import Target

SYSTEMS = ("kindred", "django_channels", "websockets_ceiling")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": pct(values, 0.50),
        "p90_ms": pct(values, 0.90),
        "p99_ms": pct(values, 0.99),
        "max_ms": max(values) if values else float("nan"),
        "samples": len(values),
    }


@dataclass
class Shape:
    rooms: int
    per_room: int
    instances: int
    rate: float
    seconds: float
    concurrency: int
    saturate_seconds: float


async def start(svc: Services, system: str, shape: Shape, posters: int = 16) -> tuple[Target, list[Proc]]:
    accounts = min(shape.rooms * shape.per_room, 40)
    if system == "kindred":
        urls, procs = await svc.start_kindred(shape.instances)
        return await systems.kindred(urls, shape.rooms, accounts, posters), procs
    if system == "django_channels":
        urls, procs = await svc.start_django(2)
        ws = [u.replace("http://", "ws://") + "/ws" for u in urls]
        return await systems.peer(system, urls, ws, shape.rooms, accounts, posters), procs
    http, ws, procs = await svc.start_ceiling(2)
    return await systems.peer(system, http, ws, shape.rooms, accounts, posters), procs


def _phase_of(poster: Poster, phases: dict[int, str]) -> dict[str, int]:
    """Expected deliveries per phase: every accepted post, once per subscriber of its room."""
    expected: dict[str, int] = {}
    for key in poster.accepted:
        expected[phases[key]] = expected.get(phases[key], 0) + 1
    return expected


async def fanout(svc: Services, system: str, shape: Shape, ramp: list[float] | None = None) -> dict[str, Any]:
    """Subscribers in every room; a fixed-rate phase for latency, then a saturating phase for capacity."""
    target, procs = await start(svc, system, shape)
    log(f"  {system}: set up; opening {shape.rooms * shape.per_room:,} sockets")
    subs = Subscribers(plans_for(target, shape.per_room), default_processes())
    try:
        ready = await subs.ready()
        log(f"  {system}: {ready['sockets']:,} sockets open ({ready['failures']} failed); posting")
        await asyncio.sleep(1.0)  # let subscribe acks and presence settle before measuring
        await subs.command("reset")
        pids = [pid for p in procs for pid in p.pids]
        cpu0 = cpu_seconds(pids)
        phase_of_key: dict[int, str] = {}
        result: dict[str, Any] = {
            "system": system,
            "shape": shape.__dict__,
            "sockets": ready["sockets"],
            "socket_failures": ready["failures"],
            "connects_per_s": ready["sockets"] / max(ready["connect_seconds"], 1e-9),
        }
        async with Poster(target) as poster:
            phases = [("fixed", shape.rate)] + [(f"ramp-{int(r)}", r) for r in (ramp or [])]
            for name, rate in phases:
                before = set(poster.accepted)
                await poster.fixed_rate(rate, shape.seconds, name)
                phase_of_key.update({k: name for k in set(poster.accepted) - before})
            saturate_start = time.time()
            before = set(poster.accepted)
            if shape.saturate_seconds:
                await poster.saturate(shape.concurrency, shape.saturate_seconds, "saturate")
            phase_of_key.update({k: "saturate" for k in set(poster.accepted) - before})
        log(f"  {system}: {len(poster.accepted):,} posts accepted, {poster.rejected} rejected; draining")
        await asyncio.sleep(DRAIN_SECONDS)
        merged = merge(await subs.command("report"))
        server_cpu = cpu_seconds(pids) - cpu0
        posts_per_phase = _phase_of(poster, phase_of_key)
        delivered_per_phase: dict[str, int] = {}
        for key, n in merged["counts"].items():
            name = phase_of_key.get(key, "?")
            delivered_per_phase[name] = delivered_per_phase.get(name, 0) + n
        expected = {name: n * shape.per_room for name, n in posts_per_phase.items()}
        fixed = merged["phases"].get("fixed", {"latencies_ms": []})
        saturate = merged["phases"].get("saturate")
        delivered_total = sum(delivered_per_phase.values())
        result.update(
            {
                **summary(fixed["latencies_ms"]),
                "latencies_ms": fixed["latencies_ms"],
                "expected": sum(expected.values()),
                "delivered": delivered_total,
                "expected_by_phase": expected,
                "delivered_by_phase": delivered_per_phase,
                "posts_rejected": poster.rejected,
                "saturate_posts_per_s": posts_per_phase.get("saturate", 0) / max(shape.saturate_seconds, 1e-9),
                "deliveries_per_s": (
                    delivered_per_phase.get("saturate", 0) / max(saturate["last"] - saturate_start, 1e-9)
                    if saturate
                    else float("nan")
                ),
                "server_cpu_s_per_1000_deliveries": server_cpu / max(delivered_total / 1000, 1e-9),
                "loadgen_cpu_per_worker": merged["loadgen_cpu_per_worker"],
                "loadgen_saturated": merged["loadgen_cpu_per_worker"] > 0.9,
            }
        )
        if ramp:
            result["ramp"] = [
                {"rate": r, **summary(merged["phases"].get(f"ramp-{int(r)}", {"latencies_ms": []})["latencies_ms"])}
                for r in ramp
            ]
        return result
    finally:
        await subs.close()
        svc.stop(procs)


async def idle_sockets(svc: Services, system: str, count: int) -> dict[str, Any]:
    """S3: as many idle sockets as one instance holds, and what each costs in server memory."""
    shape = Shape(rooms=1, per_room=count, instances=1, rate=0, seconds=0, concurrency=0, saturate_seconds=0)
    if system == "kindred":
        urls, procs = await svc.start_kindred(1)
        target = await systems.kindred(urls, 1, 40, 1)
    else:
        http, ws, procs = await svc.start_ceiling(1)
        target = await systems.peer(system, http, ws, 1, 40, 1)
    pids = [pid for p in procs for pid in p.pids]
    await asyncio.sleep(1.0)
    baseline = rss_bytes(pids)
    subs = Subscribers(plans_for(target, shape.per_room), default_processes())
    try:
        ready = await subs.ready()
        await asyncio.sleep(3.0)  # presence broadcasts and allocator settling
        held = rss_bytes(pids)
        alive = all(p.popen.poll() is None for p in procs)
        return {
            "system": system,
            "sockets": ready["sockets"],
            "failures": ready["failures"],
            "connects_per_s": ready["sockets"] / max(ready["connect_seconds"], 1e-9),
            "rss_baseline_mb": baseline / 2**20,
            "rss_held_mb": held / 2**20,
            "bytes_per_socket": (held - baseline) / max(ready["sockets"], 1),
            "server_alive": alive,
        }
    finally:
        await subs.close()
        svc.stop(procs)


async def contention(svc: Services, posters: int, seconds: float) -> dict[str, Any]:
    """S4: `posters` writers at once into one room (every write takes the room's seq lock) versus spread over as many
    rooms (no shared lock): the difference is what seq allocation costs."""
    out: dict[str, Any] = {}
    for label, rooms in (("one_room", 1), ("spread", posters)):
        shape = Shape(
            rooms=rooms, per_room=0, instances=2, rate=0, seconds=0, concurrency=posters, saturate_seconds=seconds
        )
        target, procs = await start(svc, "kindred", shape, posters=posters)
        try:
            async with Poster(target) as poster:
                took = await poster.saturate(posters, seconds, "contention")
            out[label] = {
                "posts_per_s": len(poster.accepted) / took,
                "rejected": poster.rejected,
                "post_p50_ms": pct(poster.post_ms, 0.5),
                "post_p99_ms": pct(poster.post_ms, 0.99),
            }
        finally:
            svc.stop(procs)
    out["one_room_vs_spread"] = out["one_room"]["posts_per_s"] / max(out["spread"]["posts_per_s"], 1e-9)
    return out


async def reconnect_storm(svc: Services, clients: int, behind: int) -> dict[str, Any]:
    """S5: `clients` sockets reconnect at once, each `behind` events behind, and replay them."""
    shape = Shape(rooms=1, per_room=clients, instances=2, rate=0, seconds=0, concurrency=0, saturate_seconds=0)
    target, procs = await start(svc, "kindred", shape)
    pids = [pid for p in procs for pid in p.pids]
    try:
        async with Poster(target) as poster:
            for n in range(behind):
                await poster.post(n, target.rooms[0], "seed")
        cpu0 = cpu_seconds(pids)
        started = time.perf_counter()
        subs = Subscribers(plans_for(target, clients, since=0), default_processes())
        try:
            ready = await subs.ready()
            expected = ready["sockets"] * behind
            replayed = 0
            deadline = time.perf_counter() + 120
            while time.perf_counter() < deadline:
                replayed = merge(await subs.command("report"))["replayed"]
                if replayed >= expected:
                    break
                await asyncio.sleep(0.2)
            took = time.perf_counter() - started
        finally:
            await subs.close()
        return {
            "clients": ready["sockets"],
            "behind": behind,
            "replayed": replayed,
            "expected": expected,
            "seconds_including_worker_start": took,
            "server_cpu_s": cpu_seconds(pids) - cpu0,
            "server_cpu_ms_per_client": (cpu_seconds(pids) - cpu0) * 1000 / max(ready["sockets"], 1),
        }
    finally:
        svc.stop(procs)


def redis_ceiling(svc: Services) -> dict[str, Any]:
    """The Redis ceiling: PUBLISH throughput of the run's own Redis, from redis-benchmark."""
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return {"skipped": "redis-benchmark not installed (Debian package redis-tools)"}
    port = svc.redis_url.rsplit(":", 1)[1].split("/")[0]
    run = subprocess.run(
        [binary, "-p", port, "-n", "200000", "-c", "50", "-P", "1", "-q", "PUBLISH", "bench", "x" * 400],
        capture_output=True,
        text=True,
        timeout=120,
    )
    match = re.search(r"([\d.]+) requests per second", run.stdout)
    return {"publish_per_s": float(match.group(1)) if match else None, "raw": run.stdout.strip()[-200:]}


def knee(ramp: list[dict[str, Any]], threshold_ms: float = 100.0) -> float | None:
    """The first posting rate at which p99 passes the threshold (None if none did)."""
    for step in ramp:
        if step["p99_ms"] > threshold_ms:
            return float(step["rate"])
    return None


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")
