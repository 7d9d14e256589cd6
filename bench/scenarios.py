"""The scenarios of issue 8 (S1–S6 and the Redis ceiling). Each starts the system it measures and stops it after.

Fan-out (S1, S2, S6) has two kinds of phase. A fixed-rate phase sends posts on schedule whatever the answers
(an open loop): its latencies are what a user sees at that load. A saturating phase keeps a fixed number of posts
in flight and sends the next as soon as one is answered (a closed loop): the deliveries per second it reaches is
the system's capacity, not the offered rate.
"""

from __future__ import annotations

import asyncio
import math
import re
import shutil
import subprocess
import sys
import time
import tracemalloc
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import profiling, stats, systems
from bench.harness import Services
from bench.loadgen import SATURATED_CPU, LoadGen
from bench.procs import Proc, Window, cpu_seconds, rss_bytes, server_pids
from bench.systems import KindredAccounts, Target

SYSTEMS = ("kindred", "django_channels", "websockets_ceiling")
# Seconds between phases, so one phase's last deliveries are not counted against the next one's latencies.
SETTLE_SECONDS = 1.0
# Seconds between the last subscribe and the first post: the presence broadcasts that joining sets off go out first.
CONNECTED_SETTLE_SECONDS = 2.0
# Seconds to wait for deliveries after the last post is answered, and how long no progress means no more will come.
DRAIN_SECONDS = 10.0
DRAIN_IDLE = 2.0
# S6: a step whose p99 passes this is past the knee.
KNEE_P99_MS = 100.0
# Posting sockets each load-generator process opens per Kindred instance before posting over the socket (more are
# opened when all are busy).
POSTERS_PER_INSTANCE = 8
# Allocation sites listed in S3's memory breakdown.
MEMORY_SITES = 20


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Shape:
    rooms: int
    per_room: int
    instances: int  # Kindred instances (`kindred serve` processes); the peers always run 2 processes
    rate: float  # posts per second in the fixed-rate phase
    seconds: float  # length of the fixed-rate phase
    concurrency: int  # posts in flight in the saturating phase
    saturate_seconds: float


@dataclass
class Run:
    """What every scenario needs: the services, the account pool, where to write, and run-wide options."""

    svc: Services
    accounts: KindredAccounts
    out: Path
    kindred_workers: int
    loadgen_processes: int
    readers: int  # accounts that hold sockets (Kindred)
    writers: int  # accounts that post (Kindred)
    # Kindred's posts go over websockets (`{"op": "post"}`, issue 20) instead of HTTP POST.
    ws_posts: bool = False


async def start(run: Run, system: str, shape: Shape, instances: int | None = None) -> tuple[Target, list[Proc]]:
    n = instances or shape.instances
    readers = min(run.readers, shape.rooms * shape.per_room) or 1
    if system == "kindred":
        urls, procs = await run.svc.start_kindred(n, run.kindred_workers)
        target = await systems.kindred(urls, run.accounts, shape.rooms, readers, run.writers, ws_posts=run.ws_posts)
        return target, procs
    if system == "django_channels":
        urls, procs = await run.svc.start_django(2)
        ws = urls[0].replace("http://", "ws://") + "/ws"
        return await systems.peer(system, urls[0], ws, shape.rooms, readers, run.writers, ordered=False), procs
    http, ws, procs = await run.svc.start_ceiling(2 if instances is None else n)
    return await systems.peer(system, http, ws, shape.rooms, readers, run.writers, ordered=False), procs


async def _gc_pauses(run: Run, system: str, procs: list[Proc]) -> dict[str, dict[str, float]] | None:
    """Kindred's garbage-collector pauses since the last call, per generation, over all its instances, and the
    objects the collector tracks (what a full collection walks), summed."""
    if system != "kindred":
        return None
    merged: dict[str, dict[str, float]] = {"tracked": {"objects": 0}}
    for proc in procs:
        seen_by_gen = await run.svc.instrument(proc)
        merged["tracked"]["objects"] += seen_by_gen["objects"]
        for gen, seen in seen_by_gen["gc"].items():
            into = merged.setdefault(gen, {"count": 0, "total_ms": 0.0, "max_ms": 0.0})
            into["count"] += seen["count"]
            into["total_ms"] += seen["total_ms"]
            into["max_ms"] = max(into["max_ms"], seen["max_ms"])
    return merged


def _per(amount: float, count: float) -> float:
    return amount / count if count else math.nan


def _pids(procs: list[Proc]) -> list[int]:
    return [pid for p in procs for pid in p.pids]


async def _drain(gen: LoadGen, expected: dict[str, int]) -> dict[str, Any]:
    """Wait until every expected delivery has arrived, or none has for DRAIN_IDLE seconds; then the full report."""
    deadline = time.perf_counter() + DRAIN_SECONDS
    seen, idle_since = -1, time.perf_counter()
    while time.perf_counter() < deadline:
        counts = await gen.counts()
        got = sum(counts.values())
        if all(counts.get(p, 0) >= n for p, n in expected.items()):
            break
        if got != seen:
            seen, idle_since = got, time.perf_counter()
        elif time.perf_counter() - idle_since > DRAIN_IDLE:
            break
        await asyncio.sleep(0.25)
    return await gen.report()


async def fanout(run: Run, system: str, shape: Shape, *, profile_seconds: float = 0.0) -> dict[str, Any]:
    """S1/S2: `per_room` subscribers in each room; a fixed-rate phase (latency), then a saturating one (capacity)."""
    target, procs = await start(run, system, shape)
    pids = _pids(procs)
    try:
        async with LoadGen(
            target.sockets(shape.per_room), target.posts(), ordered=target.ordered, processes=run.loadgen_processes
        ) as gen:
            connected = await gen.connect()
            log(f"  {system}: {connected['sockets']:,} sockets subscribed ({connected['failures']} failed)")
            if target.post_ws_urls:
                log(
                    f"  {system}: {await gen.warm_posters(POSTERS_PER_INSTANCE):,} posting sockets (posts over the socket)"
                )
            await asyncio.sleep(CONNECTED_SETTLE_SECONDS)
            rss = rss_bytes(pids)
            await _gc_pauses(run, system, procs)  # from here on
            await gen.reset()
            window = Window(lambda: pids, lambda: run.svc.infra_pids(system))
            window.start()
            fixed = await gen.post_fixed(shape.rate, shape.seconds, "fixed")
            fixed["box_busy"] = window.box_busy()
            await asyncio.sleep(SETTLE_SECONDS)
            fixed_cost = window.stop()
            gc_fixed = await _gc_pauses(run, system, procs)
            fixed_started = window.started
            window.start()
            redis_before = await run.svc.redis_commands()
            saturated = await gen.saturate(shape.concurrency, shape.saturate_seconds, "saturate")
            saturated["box_busy"] = window.box_busy()
            expected = {
                "fixed": fixed["accepted"] * shape.per_room,
                "saturate": saturated["accepted"] * shape.per_room,
            }
            report = await _drain(gen, expected)
            saturate_cost = window.stop()
            redis_after = await run.svc.redis_commands()
            gc_saturate = await _gc_pauses(run, system, procs)
            log(
                f"  {system}: {fixed['accepted'] + saturated['accepted']:,} posts accepted, "
                f"{fixed['rejected'] + saturated['rejected']} rejected"
            )
            profile = None
            if profile_seconds:
                profile = await _profile(run, gen, shape, procs, profile_seconds, f"{system}-{shape.per_room}")
        phases = report["phases"]
        delivered = {p: len(phases.get(p, {}).get("latencies_ms", ())) for p in expected}
        # Capacity counts every delivery made from the start of the saturating phase to the last one, whichever phase
        # its post belongs to: a system still working off the fixed phase's backlog is delivering at capacity too.
        in_saturate, last = LoadGen.delivered_since(report, window.started)
        in_fixed = LoadGen.delivered_since(report, fixed_started)[0] - in_saturate
        per_1000 = {"fixed": in_fixed / 1000, "saturate": in_saturate / 1000}
        return {
            "system": system,
            "posts_via": "websocket" if target.post_ws_urls else "http",
            "shape": asdict(shape),
            "sockets": connected["sockets"],
            "socket_failures": connected["failures"],
            "connects_per_s": connected["connects_per_s"],
            "subscribe_ms": connected["ack_ms"],
            "server_rss_mb": rss / 2**20,
            **stats.summary(phases.get("fixed", {}).get("latencies_ms", [])),
            "latencies_ms": phases.get("fixed", {}).get("latencies_ms", []),
            "saturate_latency": stats.summary(phases.get("saturate", {}).get("latencies_ms", [])),
            "expected": expected["fixed"] + expected["saturate"],
            "delivered": delivered["fixed"] + delivered["saturate"],
            "expected_by_phase": expected,
            "delivered_by_phase": delivered,
            "gaps": report["gaps"],
            "repeats": report["repeats"],
            "posts_rejected": fixed["rejected"] + saturated["rejected"],
            "rejections": {"fixed": fixed["rejections"], "saturate": saturated["rejections"]},
            "fixed_posts_per_s": fixed["posts_per_s"],
            "saturate_posts_per_s": saturated["posts_per_s"],
            "post_ms_saturated": saturated["post_ms"],
            "deliveries_per_s": in_saturate / (last - window.started) if in_saturate else math.nan,
            "server_cpu_s_per_1000_deliveries": {
                "fixed": _per(fixed_cost["server_cpu_s"], per_1000["fixed"]),
                "saturate": _per(saturate_cost["server_cpu_s"], per_1000["saturate"]),
            },
            # Redis, and Postgres's processes for the system's database: on this box they share the same two cores.
            "infra_cpu_s_per_1000_deliveries": {
                "fixed": _per(fixed_cost["infra_cpu_s"], per_1000["fixed"]),
                "saturate": _per(saturate_cost["infra_cpu_s"], per_1000["saturate"]),
            },
            # What one post costs Redis at capacity, by command (the delivery side's commands included).
            "redis_commands_per_post": {
                name: round((n - redis_before.get(name, 0)) / max(saturated["accepted"], 1), 2)
                for name, n in redis_after.items()
                if n > redis_before.get(name, 0)
            },
            "box_busy": {"fixed": fixed["box_busy"], "saturate": saturated["box_busy"]},
            "loadgen_cpu": {
                "connect": connected["loadgen_cpu"],
                "fixed": fixed["loadgen_cpu"],
                "saturate": saturated["loadgen_cpu"],
            },
            "loadgen_saturated": max(fixed["loadgen_cpu"], saturated["loadgen_cpu"]) > SATURATED_CPU,
            "gc_pauses": {"fixed": gc_fixed, "saturate": gc_saturate},
            "profile": profile,
        }
    finally:
        run.svc.stop(procs)


async def _profile(
    run: Run, gen: LoadGen, shape: Shape, procs: list[Proc], seconds: float, label: str
) -> dict[str, Any]:
    """A second saturating phase, with py-spy on every server process (kept apart from the measured one)."""
    await asyncio.sleep(SETTLE_SECONDS)
    out = run.out / "profiles" / label
    out.mkdir(parents=True, exist_ok=True)
    recording = asyncio.create_task(profiling.record(server_pids(procs), seconds, out))
    await asyncio.sleep(0.5)  # py-spy attaches
    await gen.saturate(shape.concurrency, seconds, "profile")
    files = await recording
    return {"files": [str(f.relative_to(run.out)) for f in files], **profiling.summarise(files)}


async def ramp(run: Run, shape: Shape, rates: list[float]) -> dict[str, Any]:
    """S6: S1's shape on Kindred at rising fixed rates, until p99 passes KNEE_P99_MS (the knee)."""
    target, procs = await start(run, "kindred", shape)
    steps = []
    try:
        async with LoadGen(
            target.sockets(shape.per_room), target.posts(), ordered=True, processes=run.loadgen_processes
        ) as gen:
            await gen.connect()
            await asyncio.sleep(CONNECTED_SETTLE_SECONDS)
            for rate in rates:
                phase = f"ramp-{rate:g}"
                posted = await gen.post_fixed(rate, shape.seconds, phase)
                report = await _drain(gen, {phase: posted["accepted"] * shape.per_room})
                latencies = report["phases"].get(phase, {}).get("latencies_ms", [])
                step = {
                    "rate": rate,
                    "posts_per_s": posted["posts_per_s"],
                    **stats.summary(latencies),
                    "expected": posted["accepted"] * shape.per_room,
                    "delivered": len(latencies),
                    "loadgen_cpu": posted["loadgen_cpu"],
                }
                steps.append(step)
                log(f"  S6 {rate:g} posts/s: p99 {step['p99_ms']:.1f} ms, {step['delivered']:,}/{step['expected']:,}")
                await gen.reset()
                if step["p99_ms"] > KNEE_P99_MS:
                    break
    finally:
        run.svc.stop(procs)
    knee = next((s["rate"] for s in steps if s["p99_ms"] > KNEE_P99_MS), None)
    return {"shape": asdict(shape), "steps": steps, "knee": knee, "threshold_ms": KNEE_P99_MS}


async def idle_sockets(run: Run, system: str, count: int) -> dict[str, Any]:
    """S3: `count` idle sockets on one instance (100 to a room), and what each costs in server memory."""
    rooms = max(1, count // 100)
    shape = Shape(
        rooms=rooms, per_room=count // rooms, instances=1, rate=0, seconds=0, concurrency=0, saturate_seconds=0
    )
    target, procs = await start(run, system, shape, instances=1)
    pids = _pids(procs)
    try:
        await asyncio.sleep(SETTLE_SECONDS)
        baseline = rss_bytes(pids)
        async with LoadGen(target.sockets(shape.per_room), None, ordered=False, processes=run.loadgen_processes) as gen:
            connected = await gen.connect()
            await asyncio.sleep(3.0)  # presence broadcasts go out and the allocator settles
            held = rss_bytes(pids)
            server_count = await _server_sockets(target) if system == "kindred" else None
        return {
            "system": system,
            "sockets": connected["sockets"],
            "failures": connected["failures"],
            "server_says": server_count,
            "connects_per_s": connected["connects_per_s"],
            "subscribe_ms": connected["ack_ms"],
            "rss_baseline_mb": baseline / 2**20,
            "rss_held_mb": held / 2**20,
            "bytes_per_socket": (held - baseline) / max(connected["sockets"], 1),
            "server_alive": all(p.running for p in procs),
        }
    finally:
        run.svc.stop(procs)


async def memory_breakdown(run: Run, count: int) -> dict[str, Any]:
    """S3's second pass, Kindred only: `count` idle sockets on an instance that traces its allocations, and what
    the memory they added is made of, by allocation site, per socket (Python objects only: not the C buffers of the
    event loop and the kernel, which the RSS of the first pass includes)."""
    rooms = max(1, count // 100)
    shape = Shape(
        rooms=rooms, per_room=count // rooms, instances=1, rate=0, seconds=0, concurrency=0, saturate_seconds=0
    )
    urls, procs = await run.svc.start_kindred(1, 1, trace_memory=True)
    try:
        target = await systems.kindred(urls, run.accounts, rooms, min(run.readers, count), run.writers)
        await asyncio.sleep(SETTLE_SECONDS)
        first = await run.svc.instrument(procs[0])
        async with LoadGen(target.sockets(shape.per_room), None, ordered=False, processes=run.loadgen_processes) as gen:
            connected = await gen.connect()
            await asyncio.sleep(3.0)
            second = await run.svc.instrument(procs[0])
        before, after = first["snapshot"], second["snapshot"]
        sockets = max(connected["sockets"], 1)
        diff = await asyncio.to_thread(_snapshot_diff, before, after)
    finally:
        run.svc.stop(procs)
    by_file: dict[str, int] = {}
    for where, size, _ in diff:
        path = where.rsplit(":", 1)[0]
        by_file[path] = by_file.get(path, 0) + size
    return {
        "sockets": connected["sockets"],
        "traced_bytes_per_socket": sum(size for _, size, _ in diff) / sockets,
        # Objects the garbage collector tracks (what a full collection walks), per socket held.
        "gc_objects_per_socket": (second["objects"] - first["objects"]) / sockets,
        "by_file": [
            {"where": path, "bytes_per_socket": size / sockets}
            for path, size in sorted(by_file.items(), key=lambda item: -item[1])[:MEMORY_SITES]
        ],
        "by_site": [
            {"where": where, "bytes_per_socket": size / sockets, "objects_per_socket": n / sockets}
            for where, size, n in diff[:MEMORY_SITES]
        ],
    }


def _snapshot_diff(before: str, after: str) -> list[tuple[str, int, int]]:
    """(allocation site, bytes, objects) that `after` holds beyond `before`, largest first."""
    old = tracemalloc.Snapshot.load(before)
    new = tracemalloc.Snapshot.load(after)
    rows = []
    for stat in new.compare_to(old, "lineno"):
        if stat.size_diff > 0:
            frame = stat.traceback[0]
            rows.append((f"{profiling.short_path(frame.filename)}:{frame.lineno}", stat.size_diff, stat.count_diff))
    return sorted(rows, key=lambda row: -row[1])


async def _server_sockets(target: Target) -> int | None:
    """Kindred's own count of open sockets (GET /healthz), to confirm the instance holds what the clients think."""
    base = target.post_urls[0].split("/api/", 1)[0]
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(base + "/healthz", headers={"Authorization": "Bearer bench-ops-token"})
    return int(answer.json().get("sockets", 0)) if answer.status_code == 200 else None


async def contention(run: Run, posters: int, seconds: float) -> dict[str, Any]:
    """S4: `posters` concurrent writers into one room (each write takes that room's row lock to allocate its seq)
    against the same writers spread over as many rooms (no shared lock): the gap is what seq allocation costs."""
    out: dict[str, Any] = {"posters": posters}
    for label, rooms in (("one_room", 1), ("spread", posters)):
        shape = Shape(
            rooms=rooms, per_room=0, instances=2, rate=0, seconds=0, concurrency=posters, saturate_seconds=seconds
        )
        target, procs = await start(run, "kindred", shape)
        pids = _pids(procs)
        try:
            async with LoadGen([], target.posts(), ordered=True, processes=run.loadgen_processes) as gen:
                cpu0 = cpu_seconds(pids)
                posted = await gen.saturate(posters, seconds, "contention")
                cpu = cpu_seconds(pids) - cpu0
            out[label] = {
                "posts_per_s": posted["posts_per_s"],
                "rejected": posted["rejected"],
                "post_ms": posted["post_ms"],
                "server_cpu_ms_per_post": cpu * 1000 / max(posted["accepted"], 1),
                "loadgen_cpu": posted["loadgen_cpu"],
            }
            log(f"  S4 {label}: {posted['posts_per_s']:.0f} posts/s, p99 {posted['post_ms']['p99_ms']:.1f} ms")
        finally:
            run.svc.stop(procs)
    out["one_room_vs_spread"] = stats.ratio(out["one_room"]["posts_per_s"], out["spread"]["posts_per_s"])
    return out


async def reconnect_storm(run: Run, clients: int, behind: list[int]) -> dict[str, Any]:
    """S5: `clients` sockets in one room drop at once, miss `behind` events, and all reconnect at once with `since`
    (their last seq): the replay each receives before its `subscribed`, and what the storm costs the servers."""
    shape = Shape(rooms=1, per_room=clients, instances=2, rate=0, seconds=0, concurrency=0, saturate_seconds=0)
    target, procs = await start(run, "kindred", shape)
    pids = _pids(procs)
    storms = []
    try:
        async with LoadGen(
            target.sockets(clients), target.posts(), ordered=True, processes=run.loadgen_processes
        ) as gen:
            await gen.connect()
            for missed in behind:
                await gen.drop()
                seconds = max(0.5, missed / 200)
                posted = await gen.post_fixed(missed / seconds, seconds, f"missed-{missed}")
                cpu0 = cpu_seconds(pids)
                storm = await gen.connect(concurrency=clients, since_last=True)
                cpu = cpu_seconds(pids) - cpu0
                storms.append(
                    {
                        "behind": missed,
                        "posts_missed": posted["accepted"],
                        "clients": storm["sockets"],
                        "failures": storm["failures"],
                        "replayed": storm["replayed"],
                        "expected": storm["sockets"] * posted["accepted"],
                        "seconds": storm["seconds"],
                        "subscribed_ms": storm["ack_ms"],
                        "server_cpu_s": cpu,
                        "server_cpu_ms_per_client": cpu * 1000 / max(storm["sockets"], 1),
                        "loadgen_cpu": storm["loadgen_cpu"],
                    }
                )
                log(f"  S5 {missed} behind: {storm['replayed']:,} replayed in {storm['seconds']:.2f} s")
            report = await gen.report()
    finally:
        run.svc.stop(procs)
    return {"storms": storms, "gaps": report["gaps"], "repeats": report["repeats"]}


def redis_ceiling(run: Run, payload_bytes: int) -> dict[str, Any]:
    """The Redis ceiling: PUBLISH throughput of the run's own Redis (redis-benchmark, no subscribers), with a
    payload the size of Kindred's post envelope. One post is one PUBLISH in Kindred, so this bounds posts/s."""
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return {"skipped": "redis-benchmark is not installed (Debian package redis-tools)"}
    port = run.svc.redis_url.rsplit(":", 1)[1].split("/")[0]
    results = {}
    for clients, pipeline in ((2, 1), (50, 1), (50, 16)):
        done = subprocess.run(
            [
                binary,
                "-p",
                port,
                "-n",
                "200000",
                "-c",
                str(clients),
                "-P",
                str(pipeline),
                "-q",
                "PUBLISH",
                "bench",
                "x" * payload_bytes,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        match = re.search(r"([\d.]+) requests per second", done.stdout)
        results[f"c{clients}_P{pipeline}"] = float(match.group(1)) if match else None
    return {"payload_bytes": payload_bytes, "publish_per_s": results}
