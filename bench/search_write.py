"""Search's share of a real post write: `POST /api/v1/rooms/{id}/posts` through the app, with the search index kept in
step (its triggers in place) and without it (its insert trigger off), on SQLite and on Postgres.

    uv run python -m bench.search_write                          # 20,000 posts preloaded, 300 POSTs a round
    uv run python -m bench.search_write --preload 100000 --no-fsync --backends postgres

The app runs in this process (Litestar's AsyncTestClient: the ASGI app with its lifespan, no socket), so each POST pays
what a user's does on the server: the bearer token, the rate limit, the room access check, the insert with its seq and
room event, Markdown and sanitising, the outbox and the publish on the bus (in memory: no Redis here), and the commit.
Rounds alternate with and without the index (3 each, `--writes` POSTs each, one at a time) so that a change in the
machine's load falls on both sides. The posts preloaded (bulk, through the index) sit in a second room of the same
circle, so the index is not empty. `--no-fsync`: Postgres commits without waiting for the disk (`synchronous_commit =
off` for the database); SQLite is measured as the app ships it (WAL). The last line is JSON.
Needs Postgres on 127.0.0.1:5432 with trust auth (or BENCH_PG=postgresql://.../postgres); its database is dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from app.main import create_app
from app.settings import Limits, Settings
from bench.search import POST_COLUMNS, _sqlite_row, body, post_row
from db.piccolo_migrations import kindred_2026_12_07t03_40_00_000000 as index_migration

PG_ADMIN = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PASSWORD = "correct horse battery staple"


async def _index(kind: str, url: str, on: bool) -> None:
    """Turn the search index's insert trigger on or off (the other triggers never fire on a new post)."""
    if kind == "postgres":
        pg = await asyncpg.connect(url)
        try:
            await pg.execute(f"ALTER TABLE post {'ENABLE' if on else 'DISABLE'} TRIGGER post_search_insert")
        finally:
            await pg.close()
        return
    conn = sqlite3.connect(url.split("///", 1)[1])
    try:
        conn.execute(index_migration.SQLITE_FORWARDS[2] if on else index_migration.SQLITE_BACKWARDS[2])
        conn.commit()
    finally:
        conn.close()


async def _preload(kind: str, url: str, room: str, author: str, n: int, rng: random.Random) -> None:
    w = SimpleNamespace(room=uuid.UUID(room), coach=uuid.UUID(author), now=datetime.now(UTC))
    rows = [post_row(w, i, rng) for i in range(n)]  # type: ignore[arg-type]
    if kind == "postgres":
        pg = await asyncpg.connect(url)
        try:
            for i in range(0, n, 20_000):
                await pg.copy_records_to_table("post", records=rows[i : i + 20_000], columns=list(POST_COLUMNS))
            await pg.execute("VACUUM ANALYZE post")
            await pg.execute("VACUUM ANALYZE post_search")
        finally:
            await pg.close()
        return
    conn = sqlite3.connect(url.split("///", 1)[1])
    try:
        insert = f"INSERT INTO post ({', '.join(POST_COLUMNS)}) VALUES ({', '.join('?' for _ in POST_COLUMNS)})"
        conn.executemany(insert, [_sqlite_row(r) for r in rows])
        conn.commit()
        conn.execute("ANALYZE")
        conn.commit()
    finally:
        conn.close()


async def run_backend(kind: str, preload: int, writes: int, no_fsync: bool) -> dict[str, Any]:
    rng = random.Random(18)
    tmp = Path(tempfile.mkdtemp(prefix="kindred-bench-search-write-"))
    name = f"kindred_bench_sw_{uuid.uuid4().hex[:6]}"
    if kind == "sqlite":
        url = f"sqlite:///{tmp / 'bench.sqlite3'}"
    else:
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'CREATE DATABASE "{name}"')
        if no_fsync:
            await admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        await admin.close()
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    # Only the posting rate limit is raised: the bench measures a write, not the limiter's refusal.
    settings = Settings(
        database_url=url, redis_url=None, secret="bench-" + "x" * 40, data_dir=tmp,
        limits=Limits(posts_per_minute=1_000_000),
    )  # fmt: skip
    from db.engine import bind, make_engine, start, stop
    from db.migrate import migrate

    engine = make_engine(url)
    bind(engine)
    await start(engine, pool_size=2)
    await migrate(engine, quiet=True)
    await stop(engine)
    out: dict[str, Any] = {
        "backend": kind,
        "preloaded": preload,
        "writes_without_fsync": no_fsync and kind == "postgres",
    }
    try:
        async with AsyncTestClient(app=create_app(settings), base_url="http://127.0.0.1") as client:
            email = f"bench-{uuid.uuid4().hex[:6]}@example.org"
            r = await client.post("/api/v1/accounts", json={"email": email, "password": PASSWORD, "name": "Bench"})
            assert r.status_code == 201, r.text
            r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
            client.cookies.clear()
            auth = {"Authorization": f"Bearer {r.json()['token']}"}
            circle = (await client.post("/api/v1/circles", json={"name": "Bench", "commonality": "bench",
                                                                    "norms": "Be kind."}, headers=auth)).json()  # fmt: skip
            room = (await client.get(f"/api/v1/circles/{circle['id']}/rooms", headers=auth)).json()[0]["id"]
            archive = (await client.post(f"/api/v1/circles/{circle['id']}/rooms", json={"name": "Archive"},
                                         headers=auth)).json()["id"]  # fmt: skip
            me = (await client.get("/api/v1/me", headers=auth)).json()
            author = next(m["membership_id"] for m in me["memberships"] if m["circle_id"] == circle["id"])
            t0 = time.perf_counter()
            await _preload(kind, url, archive, author, preload, rng)
            out["preload_seconds"] = round(time.perf_counter() - t0, 1)

            async def one_round() -> float:
                t = time.perf_counter()
                for _ in range(writes):
                    r = await client.post(f"/api/v1/rooms/{room}/posts", json={"body": body(rng)}, headers=auth)
                    assert r.status_code == 201, r.text
                return (time.perf_counter() - t) / writes * 1e6

            await one_round()  # warm
            with_index: list[float] = []
            without: list[float] = []
            for _ in range(3):
                with_index.append(await one_round())
                await _index(kind, url, on=False)
                without.append(await one_round())
                await _index(kind, url, on=True)
            a, b = statistics.median(with_index), statistics.median(without)
            out["post"] = {
                "us_per_post_with_index": round(a),
                "us_per_post_without": round(b),
                "extra_us": round(a - b),
                "extra_percent": round((a / b - 1) * 100, 1),
                "rounds_with": [round(x) for x in with_index],
                "rounds_without": [round(x) for x in without],
            }
    finally:
        if kind == "postgres":
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--preload", type=int, default=20_000, help="posts in the index before the rounds")
    parser.add_argument("--writes", type=int, default=300, help="POSTs per round (3 rounds with, 3 without)")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--no-fsync", action="store_true", help="Postgres: synchronous_commit = off")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average": os.getloadavg(),
        "backends": [],
    }
    for kind in args.backends.split(","):
        result = await run_backend(kind, args.preload, args.writes, args.no_fsync)
        print(f"{kind}: {json.dumps(result)}", flush=True)
        results["backends"].append(result)
    results["load_average_after"] = os.getloadavg()
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
