"""`python -m bench.post_path`: one post's server work in-process, with the sign-in and access caches on and off.

No sockets and no load generator: the application is driven through its ASGI interface (Litestar's test client, so
its lifespan runs), one post after another, in blocks that alternate cache on / cache off (ABAB…) on the same
database, so whatever else loads the box falls on both. It prints, per setting, the median and p90 wall time of
`POST /api/v1/rooms/{id}/posts`, then (SQLite) the two lookups alone (token → sign-in, (account, room) → access: the
query vs the cache hit) and Markdown rendering per body (docs/performance.md "Caching sign-ins and room access (issue 20)").

    uv run python -m bench.post_path                      # SQLite + memory bus
    uv run python -m bench.post_path --postgres           # Postgres + Redis (127.0.0.1, as the tests use)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

PG_ADMIN = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/0")
BODIES = {
    "short (80 chars, plain)": "Said no to my manager today, kindly, and nothing bad happened. Small win, I think.",
    "typical (400 chars, some Markdown)": (
        "I tried the **pause before yes** idea from last week.\n\n"
        "- Monday: asked for a day to think about the extra project\n"
        "- Wednesday: said *no* to the Friday drinks, and offered lunch instead\n\n"
        "> It felt awful for about ten minutes, then fine.\n\n"
        "Does anyone else find the first ten minutes the hardest? Notes here: https://example.org/notes"
    ),
    "long (4,000 chars, Markdown)": (
        "A paragraph with *emphasis*, `code` and a [link](https://example.org). " * 10 + "\n\n"
    )
    * 6,
    "the most allowed (20,000 chars, Markdown)": (
        ("A paragraph with *emphasis*, `code` and a [link](https://example.org). " * 10 + "\n\n") * 28
    )[:20_000],
}


async def loop_stall(call: Callable[[], Awaitable[Any]]) -> float:
    """The longest the event loop went without running a 1 ms ticker while `call` ran, in ms."""
    worst = 0.0
    done = False

    async def ticker() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst = max(worst, now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    await call()
    done = True
    await task
    return worst * 1e3


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


CPU: list[float] = []  # this process's CPU time per call of the last `timed` (µs): what the box's load leaves alone


async def timed(n: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    """Wall µs per call; the CPU µs per call go to CPU."""
    out = []
    CPU.clear()
    for _ in range(n):
        start, cpu = time.perf_counter(), time.process_time()
        await call()
        out.append((time.perf_counter() - start) * 1e6)
        CPU.append((time.process_time() - cpu) * 1e6)
    return out


async def create_db(postgres: bool, tmp: Path) -> tuple[str, Callable[[], Awaitable[None]]]:
    from db.engine import bind, make_engine, start, stop
    from db.migrate import migrate

    if postgres:
        import asyncpg

        name = f"kindred_postpath_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"

        async def drop() -> None:
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    else:
        url = f"sqlite:///{tmp / 'post_path.db'}"

        async def drop() -> None:
            return None

    engine = make_engine(url)
    bind(engine)
    await start(engine, pool_size=2)
    try:
        await migrate(engine, quiet=True)
    finally:
        await stop(engine)
    return url, drop


async def run(args: argparse.Namespace) -> None:
    from litestar.testing import AsyncTestClient

    from app.auth import tokens
    from app.main import create_app
    from app.settings import load_settings
    from bench.env import KINDRED_BENCH_ENV
    from db import queries

    tmp = Path(tempfile.mkdtemp(prefix="kindred-postpath-"))
    url, drop = await create_db(args.postgres, tmp)
    env = {
        "DATABASE_URL": url,
        "KINDRED_SECRET": "post-path-bench-secret-0123456789abcdef",
        "KINDRED_DATA_DIR": str(tmp),
        "KINDRED_REDIS_PREFIX": f"pp{uuid.uuid4().hex[:8]}",
        "KINDRED_PRESENCE_JITTER": "0",
        **KINDRED_BENCH_ENV,
    }
    if args.postgres:
        env["REDIS_URL"] = REDIS
    app = create_app(load_settings(env))
    caches = app.state["live"].caches
    try:
        async with AsyncTestClient(app, base_url="http://127.0.0.1") as client:

            async def signup(name: str) -> tuple[str, str]:
                email = f"{uuid.uuid4().hex[:10]}@example.org"
                password = "a long enough passphrase 42"
                r = await client.post("/api/v1/accounts", json={"email": email, "password": password, "name": name})
                assert r.status_code == 201, r.text
                r = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
                client.cookies.clear()
                return r.json()["token"], r.json()["token"]

            coach, _ = await signup("Coach")
            auth = {"Authorization": f"Bearer {coach}"}
            circle = (
                await client.post(
                    "/api/v1/circles",
                    json={"name": "Bench", "commonality": "benchmarking", "norms": "be kind"},
                    headers=auth,
                )
            ).json()
            room = (await client.get(f"/api/v1/circles/{circle['id']}/rooms", headers=auth)).json()[0]["id"]
            body = BODIES["short (80 chars, plain)"]

            async def post() -> None:
                r = await client.post(f"/api/v1/rooms/{room}/posts", json={"body": body}, headers=auth)
                assert r.status_code == 201, r.text

            results: dict[str, list[float]] = {"on": [], "off": []}
            cpu: dict[str, list[float]] = {"on": [], "off": []}
            for _ in range(10):
                await post()  # warm-up: imports, pools, templates
            for _ in range(args.rounds):
                for setting in ("on", "off"):
                    caches.enabled = setting == "on"
                    results[setting] += await timed(args.block, post)
                    cpu[setting] += CPU
            print(f"POST /api/v1/rooms/{{id}}/posts, {args.rounds} x {args.block} per setting, alternated:")
            for setting, values in results.items():
                print(
                    f"  cache {setting:3}: wall median {statistics.median(values):7.0f} µs, p90 {pct(values, 0.9):7.0f} µs;"
                    f" CPU (server and client, one process) median {statistics.median(cpu[setting]):6.0f} µs,"
                    f" mean {statistics.mean(cpu[setting]):6.0f} µs"
                )
            caches.enabled = True
            print(f"  caches' counters: {caches.stats}")

            # The lookups alone (SQLite only: the test client serves the app from its own event loop, and a Postgres
            # pool belongs to the loop that opened it).
            if args.postgres:
                return
            account = (await client.get("/api/v1/me", headers=auth)).json()["id"]
            aid, rid = uuid.UUID(account), uuid.UUID(room)
            n = args.block * args.rounds
            lookups = {
                "token -> sign-in, query": lambda: tokens.resolve(coach, "bearer"),
                "token -> sign-in, cache hit": lambda: tokens.resolve(coach, "bearer", caches),
                "access, query": lambda: queries.room_access(aid, rid),
                "access, cache hit": lambda: caches.access(aid, rid, lambda: queries.room_access(aid, rid)),
            }
            print(f"lookups alone, {n} each:")
            for name, call in lookups.items():
                values = await timed(n, call)
                print(
                    f"  {name:28}: wall median {statistics.median(values):7.1f} µs, p90 {pct(values, 0.9):7.1f} µs;"
                    f" CPU median {statistics.median(CPU):7.1f} µs"
                )
    finally:
        await drop()
    await markdown()


async def markdown() -> None:
    from web.markdown import render

    print("Markdown rendering (web.markdown.render), per body:")
    for name, text in BODIES.items():
        values = []
        for _ in range(200 if len(text) < 10_000 else 20):
            start = time.perf_counter()
            render(text, {})
            values.append((time.perf_counter() - start) * 1e6)
        print(f"  {name:42}: median {statistics.median(values):9.1f} µs, p90 {pct(values, 0.9):9.1f} µs")
    longest = BODIES["the most allowed (20,000 chars, Markdown)"]

    async def inline() -> None:
        render(longest, {})

    async def threaded() -> None:
        await asyncio.to_thread(render, longest, {})

    print("event loop stall while rendering the longest body (worst gap of a 1 ms ticker, ms), alternated:")
    stalls: dict[str, list[float]] = {"inline": [], "in a thread": []}
    for _ in range(5):
        stalls["inline"].append(await loop_stall(inline))
        stalls["in a thread"].append(await loop_stall(threaded))
    for name, values in stalls.items():
        print(f"  {name:12}: median {statistics.median(values):6.1f} ms, worst {max(values):6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", action="store_true", help="Postgres + Redis instead of SQLite + memory")
    parser.add_argument("--rounds", type=int, default=6, help="alternations of on/off")
    parser.add_argument("--markdown-only", action="store_true", help="only the Markdown measurements")
    parser.add_argument("--block", type=int, default=50, help="posts per block")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = parser.parse_args()
    if args.markdown_only:
        asyncio.run(markdown())
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
