"""S7 (scale: up to 100,000 sockets on 2 instances) and S8 (many rooms: 5,000 rooms of 20), issue 20. Kindred only.

Both need more accounts than the sign-up API can make in a run (two argon2 hashes each, on purpose), so `seed` writes
them straight into the run's database: accounts, sign-in tokens in the app's own format (`secrets.token_urlsafe(32)`,
stored as its SHA-256, as `app.auth.tokens.issue` does) and memberships of the scenario's circle, with COPY. The
circle, its first room and the posting members are made through the API as in S1–S6; the extra rooms are rows.

Sockets are spread over source addresses 127.0.0.1 … 127.0.0.N (`SOCKETS_PER_SOURCE` each), so the client side has
ports enough, and over as many load-generator processes as the descriptor limit needs (`SOCKETS_PER_PROCESS`).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import resource
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import msgspec
import psutil
from redis.asyncio import Redis

from app.services import aliases
from bench import stats, systems
from bench.loadgen import LoadGen, default_processes
from bench.procs import Proc, Window, cpu_seconds, rss_bytes
from bench.scenarios import CONNECTED_SETTLE_SECONDS, DRAIN_IDLE, Run, _drain, _pids, log
from bench.worker import Marker, PostPlan, SocketPlan
from realtime.hub import IDLE_FEED_SECONDS, SWEEP_INTERVAL

# Client sockets per loopback source address: well under the 28,000 ephemeral ports of one address.
SOCKETS_PER_SOURCE = 10_000
# Client sockets per load-generator process: under the descriptor limit with room for the process's own.
SOCKETS_PER_PROCESS = 15_000
# Seconds a post's deliveries may take before the missing ones count as lost.
DELIVERY_TIMEOUT = 30.0
# S7: the big room holds this many sockets (at most a fifth of them), the others are dealt over TEN_ROOMS rooms.
BIG_ROOM = 20_000
TEN_ROOMS = 10
TOKEN_TTL = timedelta(days=30)
# Seconds a load-generator command may take here: 100,000 subscribes take many minutes on a loaded 2-core box.
ANSWER_TIMEOUT = 1800.0
# S7 stops its servers if the box's available memory falls below this (the box is shared): the result says so.
MEMORY_FLOOR = 3 * 2**30


class Watch:
    """Samples, every second, the servers' RSS (per instance), the load generator's, and the box's available memory;
    below MEMORY_FLOOR it stops the servers (by PID), so the run ends with what it saw instead of taking the box."""

    def __init__(self, run: Run, procs: list[Proc]) -> None:
        self.run, self.procs = run, procs
        self.peak_server_mb = [0.0] * len(procs)
        self.peak_loadgen_mb = 0.0
        self.min_available_mb = math.inf
        self.stopped: str | None = None
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        me = psutil.Process()
        while True:
            for i, proc in enumerate(self.procs):
                self.peak_server_mb[i] = max(self.peak_server_mb[i], rss_bytes(proc.pids) / 2**20)
            kids = [c.pid for c in me.children(recursive=True) if c.name().startswith("python")]
            ours = {pid for p in self.procs for pid in p.pids}
            self.peak_loadgen_mb = max(self.peak_loadgen_mb, rss_bytes([k for k in kids if k not in ours]) / 2**20)
            available = psutil.virtual_memory().available
            self.min_available_mb = min(self.min_available_mb, available / 2**20)
            if available < MEMORY_FLOOR and self.stopped is None:
                self.stopped = f"box memory available fell to {available / 2**30:.1f} GiB: servers stopped"
                log(f"  {self.stopped}")
                await asyncio.to_thread(self.run.svc.stop, self.procs)
                return
            await asyncio.sleep(1.0)

    def __enter__(self) -> Watch:
        self._task = asyncio.get_running_loop().create_task(self._loop())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()

    def summary(self) -> dict[str, Any]:
        return {
            "peak_server_rss_mb": self.peak_server_mb,
            "peak_loadgen_rss_mb": self.peak_loadgen_mb,
            "min_box_available_mb": self.min_available_mb,
            "stopped": self.stopped,
        }


def fd_limits() -> dict[str, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return {"soft": soft, "hard": hard}


def loadgen_processes(sockets: int) -> int:
    return max(default_processes(), math.ceil(sockets / SOCKETS_PER_PROCESS))


def source(n: int) -> str:
    return f"127.0.0.{1 + n // SOCKETS_PER_SOURCE}"


async def seed(database_url: str, room_id: str, accounts: int, extra_rooms: int) -> tuple[list[str], list[str]]:
    """`accounts` members of the circle that `room_id` is in, each with one sign-in token, and `extra_rooms` more rooms
    in it; returns (tokens, the extra rooms' ids). COPY in three tables: about a second per 10,000 accounts here."""
    conn = await asyncpg.connect(database_url)
    try:
        circle = await conn.fetchval("SELECT circle FROM room WHERE id = $1", uuid.UUID(room_id))
        tag = secrets.token_hex(3)
        now = datetime.now(UTC)
        tokens, account_rows, token_rows, member_rows = [], [], [], []
        for n in range(accounts):
            account = uuid.uuid4()
            token = secrets.token_urlsafe(32)
            alias = f"m{tag}{n}"
            tokens.append(token)
            # Never signs in with a password (it has a token): the hash is a placeholder no password matches.
            account_rows.append((account, f"s{tag}{n}@bench.kindred.test", f"Member {n}", "seeded", now, now))
            token_rows.append((uuid.uuid4(), account, hashlib.sha256(token.encode()).hexdigest(), now, now + TOKEN_TTL))
            member_rows.append(
                (
                    uuid.uuid4(),
                    circle,
                    account,
                    alias,
                    aliases.alias_key(alias),
                    aliases.alias_skeleton(alias),
                    "member",
                    now,
                )
            )
        async with conn.transaction():
            await conn.copy_records_to_table(
                "account",
                records=account_rows,
                columns=["id", "email", "name", "password_hash", "created_at", "password_changed_at"],
            )
            await conn.copy_records_to_table(
                "auth_token", records=token_rows, columns=["id", "account", "token_hash", "created_at", "expires_at"]
            )
            await conn.copy_records_to_table(
                "membership",
                records=member_rows,
                columns=["id", "circle", "account", "alias", "alias_key", "alias_skeleton", "role", "joined_at"],
            )
            room_rows = [(uuid.uuid4(), circle, f"room {n}", "", 0, now, "room") for n in range(extra_rooms)]
            await conn.copy_records_to_table(
                "room", records=room_rows, columns=["id", "circle", "name", "topic", "last_seq", "created_at", "kind"]
            )
    finally:
        await conn.close()
    return tokens, [str(row[0]) for row in room_rows]


async def _setup(run: Run, instances: int, workers: int, accounts: int, extra_rooms: int) -> Any:
    urls, procs = await run.svc.start_kindred(instances, workers)
    # Eight posting members are enough here (S8 keeps 32 posts in flight); they are made through the API.
    target = await systems.kindred(urls, run.accounts, 1, 1, min(run.writers, 8))
    started = time.perf_counter()
    assert run.svc._kindred_db is not None
    tokens, rooms = await seed(run.svc._kindred_db, target.rooms[0], accounts, extra_rooms)
    seeded = time.perf_counter() - started
    log(f"  seeded {accounts:,} accounts with tokens and {extra_rooms:,} rooms in {seeded:.1f} s")
    return urls, procs, target, tokens, [target.rooms[0], *rooms], seeded


def _warnings(procs: list[Proc]) -> dict[str, int]:
    """The servers' logged warnings by kind (e.g. "presence join failed"), over every instance."""
    kinds: dict[str, int] = {}
    for proc in procs:
        for line in proc.log.read_text(errors="replace").splitlines():
            if line.startswith("WARNING") and " - " in line:
                text = line.rsplit(" - ", 1)[1]
                kind = text.split(" for room ")[0]
                kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def _rss_by_instance(procs: list[Proc]) -> list[float]:
    return [rss_bytes(p.pids) / 2**20 for p in procs]


async def _healthz_sockets(urls: list[str]) -> list[int | None]:
    counts: list[int | None] = []
    async with httpx.AsyncClient(timeout=30) as client:
        for url in urls:
            answer = await client.get(url + "/healthz", headers={"Authorization": "Bearer bench-ops-token"})
            counts.append(int(answer.json().get("sockets", 0)) if answer.status_code == 200 else None)
    return counts


async def _post_and_wait(
    client: httpx.AsyncClient, gen: LoadGen, posts: list[tuple[str, str]], token: str, phase: str, expected: int
) -> dict[str, Any]:
    """POST one marked post to each (url, room) at once, then wait until `expected` deliveries of the phase arrived
    (or DELIVERY_TIMEOUT / DRAIN_IDLE passed): time from before the first POST to the last delivery, and loss."""
    started = time.time()

    async def one(n: int, url: str, room: str) -> int:
        body = msgspec.json.encode(Marker(k=n, t=time.time(), p=phase)).decode()
        answer = await client.post(
            url.format(room=room), json={"body": body}, headers={"Authorization": f"Bearer {token}"}
        )
        return answer.status_code

    statuses = await asyncio.gather(*(one(n, url, room) for n, (url, room) in enumerate(posts)))
    deadline, seen, idle_since = time.time() + DELIVERY_TIMEOUT, -1, time.time()
    while time.time() < deadline:
        got = (await gen.counts()).get(phase, 0)
        if got >= expected:
            break
        if got != seen:
            seen, idle_since = got, time.time()
        elif time.time() - idle_since > DRAIN_IDLE * 2:
            break
        await asyncio.sleep(0.05)
    report = await gen.report([phase])
    got_phase = report["phases"].get(phase)
    delivered = len(got_phase["latencies_ms"]) if got_phase else 0
    return {
        "statuses": statuses,
        "expected": expected,
        "delivered": delivered,
        "missing": expected - delivered,
        "to_last_ms": (got_phase["last"] - started) * 1000.0 if got_phase else math.nan,
        "delivery_ms": stats.summary(got_phase["latencies_ms"] if got_phase else []),
    }


async def s7(run: Run, sockets: int, instances: int, workers: int, rounds: int, accounts: int = 0) -> dict[str, Any]:
    """S7: `sockets` sockets (over `accounts` accounts, one each by default) over `instances` instances, each in one of TEN_ROOMS rooms, and a fifth of them (at most
    BIG_ROOM) also in a big room. Each round: one post to the big room, then one post to each of the ten rooms at
    once; time from before the POST(s) to the last socket's frame, and what did not arrive."""
    big = min(BIG_ROOM, sockets // 5)
    accounts = accounts or sockets
    urls, procs, target, tokens, rooms, seeded = await _setup(run, instances, workers, accounts, TEN_ROOMS)
    big_room, ten = rooms[0], rooms[1:]
    ws_urls = target.ws_urls
    plans = [
        SocketPlan(
            ws_urls[n % len(ws_urls)],
            tokens[n % accounts],
            ten[n % TEN_ROOMS],
            also=(big_room,) if n < big else (),
            source=source(n),
        )
        for n in range(sockets)
    ]
    processes = loadgen_processes(sockets)
    result: dict[str, Any] = {
        "sockets_wanted": sockets,
        "accounts": accounts,
        "instances": instances,
        "workers_per_instance": workers,
        "big_room": big,
        "ten_rooms_of": sockets // TEN_ROOMS,
        "sources": len({p.source for p in plans}),
        "loadgen_processes": processes,
        "fd_limit": fd_limits(),
        "seed_seconds": seeded,
        "rss_mb_idle": _rss_by_instance(procs),
    }
    watch = Watch(run, procs)
    try:
        with watch:
            await _s7_measure(run, result, plans, urls, procs, target, big_room, ten, rounds)
        return result
    finally:
        result["watch"] = watch.summary()
        result["server_warnings"] = _warnings(procs)
        run.svc.stop(procs)


async def _s7_measure(
    run: Run,
    result: dict[str, Any],
    plans: list[SocketPlan],
    urls: list[str],
    procs: list[Proc],
    target: Any,
    big_room: str,
    ten: list[str],
    rounds: int,
) -> None:
    pids, sockets, big = _pids(procs), len(plans), result["big_room"]
    async with LoadGen(
        plans, None, ordered=True, processes=result["loadgen_processes"], answer_timeout=ANSWER_TIMEOUT
    ) as gen:
        cpu0 = cpu_seconds(pids)
        connected = await gen.connect(concurrency=50)
        cpu = cpu_seconds(pids) - cpu0
        log(
            f"  S7: {connected['sockets']:,} sockets subscribed ({connected['failures']} failed) "
            f"in {connected['seconds']:.0f} s"
        )
        await asyncio.sleep(CONNECTED_SETTLE_SECONDS)
        result.update(
            sockets=connected["sockets"],
            failures=connected["failures"],
            connect_seconds=connected["seconds"],
            connects_per_s=connected["connects_per_s"],
            subscribe_ms=connected["ack_ms"],
            server_cpu_ms_per_connect=cpu * 1000 / max(connected["sockets"], 1),
            server_says=await _healthz_sockets(urls),
            rss_mb_held=_rss_by_instance(procs),
            servers_alive=[p.running for p in procs],
        )
        held = sum(result["rss_mb_held"]) - sum(result["rss_mb_idle"])
        result["server_kb_per_socket"] = held * 1024 / max(connected["sockets"], 1)
        post_urls, token = target.post_urls, target.poster_tokens[0]
        big_rounds, ten_rounds = [], []
        # No keep-alive: between rounds the server closes idle connections, and a reused one fails the next POST.
        no_keepalive = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=DELIVERY_TIMEOUT, limits=no_keepalive) as client:
            for r in range(rounds):
                big_rounds.append(
                    await _post_and_wait(
                        client, gen, [(post_urls[r % len(post_urls)], big_room)], token, f"big-{r}", big
                    )
                )
                posts = [(post_urls[i % len(post_urls)], room) for i, room in enumerate(ten)]
                ten_rounds.append(await _post_and_wait(client, gen, posts, token, f"ten-{r}", sockets))
                log(
                    f"  S7 round {r}: big room {big_rounds[-1]['to_last_ms']:.0f} ms "
                    f"({big_rounds[-1]['missing']} missing), ten rooms {ten_rounds[-1]['to_last_ms']:.0f} ms "
                    f"({ten_rounds[-1]['missing']} missing)"
                )
        report = await gen.report([])
        result["rss_mb_after_posts"] = _rss_by_instance(procs)
    result["big"] = _rounds(big_rounds)
    result["ten"] = _rounds(ten_rounds)
    result["gaps"], result["repeats"] = report["gaps"], report["repeats"]
    result["servers_alive"] = [p.running for p in procs]


def _rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    to_last = [r["to_last_ms"] for r in rounds]
    return {
        "to_last_ms": stats.summary(to_last),
        "expected": sum(r["expected"] for r in rounds),
        "missing": sum(r["missing"] for r in rounds),
        "rejected_posts": sum(1 for r in rounds for s in r["statuses"] if s != 201),
        "rounds": [{k: v for k, v in r.items() if k != "statuses"} for r in rounds],
    }


async def _redis_subscriptions(redis_url: str) -> list[int]:
    """Channels each pub/sub connection of the run's Redis holds (one per instance process), largest first."""
    client = Redis.from_url(redis_url)
    try:
        rows = await client.client_list(_type="pubsub")
    finally:
        await client.aclose()
    return sorted((int(row.get("sub", 0)) + int(row.get("ssub", 0) or 0) for row in rows), reverse=True)


async def s8(
    run: Run, rooms: int, per_room: int, sockets: int, instances: int, rate: float, seconds: float, churn_rooms: int
) -> dict[str, Any]:
    """S8: `rooms` rooms with `per_room` subscribers each, over `sockets` sockets (each reads rooms·per_room/sockets
    consecutive rooms) on `instances` instances. Measures the Redis channels each instance holds, posts spread over
    every room at `rate` a second (latency) and then as fast as answered (deliveries/s), and churn: every subscriber
    of `churn_rooms` rooms unsubscribes and subscribes again."""
    per_socket = rooms * per_room // sockets
    _urls, procs, target, tokens, room_ids, seeded = await _setup(run, instances, 1, sockets, rooms - 1)
    ws_urls = target.ws_urls
    plans = []
    for n in range(sockets):
        mine = [room_ids[(n * per_socket + j) % rooms] for j in range(per_socket)]
        plans.append(SocketPlan(ws_urls[n % len(ws_urls)], tokens[n], mine[0], also=tuple(mine[1:]), source=source(n)))
    pids = _pids(procs)
    posts = PostPlan(target.post_urls, room_ids, target.poster_tokens)
    result: dict[str, Any] = {
        "rooms": rooms,
        "per_room": per_room,
        "sockets": sockets,
        "rooms_per_socket": per_socket,
        "instances": instances,
        "seed_seconds": seeded,
    }
    try:
        async with LoadGen(
            plans, posts, ordered=True, processes=loadgen_processes(sockets), answer_timeout=ANSWER_TIMEOUT
        ) as gen:
            cpu0 = cpu_seconds(pids)
            connected = await gen.connect(concurrency=50)
            cpu = cpu_seconds(pids) - cpu0
            subscribes = connected["sockets"] * per_socket
            log(f"  S8: {connected['sockets']:,} sockets, {subscribes:,} subscriptions in {connected['seconds']:.0f} s")
            await asyncio.sleep(CONNECTED_SETTLE_SECONDS)
            result.update(
                connected=connected["sockets"],
                failures=connected["failures"],
                subscriptions=subscribes,
                subscribe_seconds=connected["seconds"],
                subscribes_per_s=subscribes / max(connected["seconds"], 1e-9),
                server_cpu_ms_per_subscribe=cpu * 1000 / max(subscribes, 1),
                redis_channels_per_instance=await _redis_subscriptions(run.svc.redis_url),
                rss_mb=_rss_by_instance(procs),
            )
            await gen.reset()
            fixed = await gen.post_fixed(rate, seconds, "fixed")
            fixed_report = await _drain(gen, {"fixed": fixed["accepted"] * per_room})
            window = Window(lambda: pids, lambda: run.svc.infra_pids("kindred"))
            window.start()
            saturated = await gen.saturate(32, seconds, "saturate")
            report = await _drain(gen, {"saturate": saturated["accepted"] * per_room})
            cost = window.stop()
            in_saturate, last = LoadGen.delivered_since(report, window.started)
            fixed_lat = fixed_report["phases"].get("fixed", {}).get("latencies_ms", [])
            sat_lat = report["phases"].get("saturate", {}).get("latencies_ms", [])
            result.update(
                fixed={
                    "rate": rate,
                    "posts_per_s": fixed["posts_per_s"],
                    **stats.summary(fixed_lat),
                    "expected": fixed["accepted"] * per_room,
                    "delivered": len(fixed_lat),
                },
                saturate={
                    "posts_per_s": saturated["posts_per_s"],
                    "deliveries_per_s": in_saturate / (last - window.started) if in_saturate else math.nan,
                    **stats.summary(sat_lat),
                    "expected": saturated["accepted"] * per_room,
                    "delivered": len(sat_lat),
                    "server_cpu_s": cost["server_cpu_s"],
                    "infra_cpu_s": cost["infra_cpu_s"],
                    "loadgen_cpu": saturated["loadgen_cpu"],
                },
                gaps=report["gaps"],
                repeats=report["repeats"],
            )
            log(
                f"  S8 posts: {fixed['posts_per_s']:.0f}/s p99 {result['fixed']['p99_ms']:.0f} ms; "
                f"saturated {result['saturate']['deliveries_per_s']:.0f} deliveries/s"
            )
            churned = room_ids[:churn_rooms]
            # Warm: each socket leaves a room and comes straight back; the instance keeps the room's channel for
            # IDLE_FEED_SECONDS after its last socket leaves, so Redis sees presence only.
            result["churn"] = await _churn(run, gen, pids, churned, "warm")
            # Cold: every subscriber of the rooms leaves, the channels are dropped after IDLE_FEED_SECONDS, and they
            # all come back: the UNSUBSCRIBE and SUBSCRIBE a room costs when it empties and fills on an instance.
            result["churn_cold_leave"] = await _churn(run, gen, pids, churned, "leave", join=False)
            await asyncio.sleep(IDLE_FEED_SECONDS + 2 * SWEEP_INTERVAL)
            result["redis_channels_emptied"] = await _redis_subscriptions(run.svc.redis_url)
            result["churn_cold_join"] = await _churn(run, gen, pids, churned, "join", leave=False)
        result["servers_alive"] = [p.running for p in procs]
        return result
    finally:
        result["server_warnings"] = _warnings(procs)
        run.svc.stop(procs)


async def _churn(
    run: Run, gen: LoadGen, pids: list[int], rooms: list[str], label: str, *, leave: bool = True, join: bool = True
) -> dict[str, Any]:
    redis_before = await run.svc.redis_commands()
    cpu0, infra = cpu_seconds(pids), Window(list, lambda: run.svc.infra_pids("kindred"))
    infra.start()
    churn = await gen.churn(rooms, leave=leave, join=join)
    cpu = cpu_seconds(pids) - cpu0
    infra_cpu = infra.stop()["infra_cpu_s"]
    redis_after = await run.svc.redis_commands()
    ops = max(churn["pairs"], 1)
    out = {
        "rooms": len(rooms),
        "ops": churn["pairs"],  # (socket, room) unsubscribe+subscribe pairs, or single unsubscribes / subscribes
        "failed": churn["failed"],
        "seconds": churn["seconds"],
        "ops_per_s": churn["pairs"] / max(churn["seconds"], 1e-9),
        "server_cpu_ms_per_op": cpu * 1000 / ops,
        "infra_cpu_ms_per_op": infra_cpu * 1000 / ops,
        "redis_commands": {
            name: n - redis_before.get(name, 0)
            for name, n in redis_after.items()
            if n > redis_before.get(name, 0) and name not in ("info", "client|list")
        },
        "redis_channels_after": await _redis_subscriptions(run.svc.redis_url),
    }
    log(
        f"  S8 churn {label}: {churn['pairs']:,} ({churn['failed']} failed), {out['ops_per_s']:.0f}/s, "
        f"{out['server_cpu_ms_per_op']:.2f} ms server CPU each; Redis {out['redis_commands']}"
    )
    return out
