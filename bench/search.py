"""Search benchmark: one circle with 500,000 posts (bulk inserts), then search latency through the service layer and
the extra cost of the search index on each post write, on SQLite and on Postgres.

    uv run python -m bench.search                 # 500,000 posts, both backends
    uv run python -m bench.search --quick         # 20,000 posts
    uv run python -m bench.search --posts 100000 --backends postgres

Write cost: the same INSERT of one post, each in its own transaction, with the index's triggers in place and with them
dropped (on the same database, same size). Search: every query of QUERIES run `--repeat` times as a coach (the widest
view: every journal), through `app.services.search.search`, which is what the endpoint calls. The last line is JSON.
`--no-fsync` writes without waiting for the disk, so the write cost is the index's CPU work beside a bare INSERT's.
Needs Postgres on 127.0.0.1:5432 with trust auth (or BENCH_PG=postgresql://.../postgres); databases are dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import sqlite3
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from app.services import search
from db.engine import bind, make_engine, start, stop
from db.migrate import migrate
from db.piccolo_migrations import kindred_2026_12_07t03_40_00_000000 as index_migration

PG_ADMIN = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
# A vocabulary with a long tail: common words appear in many posts, rare ones in few (Zipf-like choice).
COMMON = [
    "i",
    "my",
    "me",
    "you",
    "we",
    "the",
    "a",
    "to",
    "and",
    "of",
    "it",
    "was",
    "that",
    "so",
    "not",
    "no",
    "yes",
    "but",
    "felt",
    "feel",
    "said",
]
TOPICS = [
    "mother",
    "father",
    "boss",
    "manager",
    "partner",
    "friend",
    "sister",
    "brother",
    "colleague",
    "neighbour",
    "teacher",
    "coach",
    "team",
    "family",
    "work",
    "home",
    "weekend",
    "meeting",
    "lunch",
    "call",
    "message",
    "email",
    "dinner",
    "holiday",
    "party",
    "deadline",
    "overtime",
    "project",
    "boundary",
    "guilt",
    "fear",
    "anger",
    "shame",
    "relief",
    "trust",
    "rejection",
    "approval",
    "conflict",
    "apology",
    "request",
    "refusal",
    "asked",
    "refused",
    "waited",
    "decided",
    "tried",
    "practised",
    "noticed",
    "expected",
    "predicted",
    "learned",
    "surprised",
    "relieved",
    "anxious",
    "calm",
    "tired",
    "proud",
    "scared",
    "nervous",
    "honest",
    "kind",
    "firm",
    "clear",
    "gentle",
    "awkward",
]
RARE = [f"rareword{i}" for i in range(2000)]
QUERIES = (
    "boss",  # a topic word: ~8% of posts
    "said no",  # two common words
    '"said no" boss',  # phrase and a word
    "guilt -mother",  # exclusion
    "rejec",  # a prefix, as typed
    "overtime deadline",
    "rareword17",  # a rare word
    "felt scared asked",
)


def body(rng: random.Random) -> str:
    words = [rng.choice(COMMON) for _ in range(rng.randint(10, 30))]
    words += [rng.choice(TOPICS) for _ in range(rng.randint(2, 6))]
    if rng.random() < 0.05:
        words.append(rng.choice(RARE))
    rng.shuffle(words)
    return " ".join(words).capitalize() + "."


class World:
    def __init__(self) -> None:
        self.account = uuid.uuid4()
        self.circle = uuid.uuid4()
        self.coach = uuid.uuid4()
        self.room = uuid.uuid4()
        self.now = datetime.now(UTC)


SETUP = (
    (
        "INSERT INTO account (id, email, name, password_hash, created_at, password_changed_at, timezone) "
        "VALUES ({a}, 'bench@example.org', 'Bench', '', {t}, {t}, 'UTC')"
    ),
    (
        "INSERT INTO circle (id, name, commonality, norms, coach_sees_identity, created_at) "
        "VALUES ({c}, 'Bench', 'bench', '', {f}, {t})"
    ),
    (
        "INSERT INTO membership (id, circle, account, alias, alias_key, alias_skeleton, role, joined_at, "
        "rejoin_blocked, coach_sees_identity) VALUES ({m}, {c}, {a}, 'Coach', 'coach', 'coach', 'coach', {t}, {f}, {f})"
    ),
    (
        "INSERT INTO room (id, circle, name, topic, last_seq, created_at, kind) "
        "VALUES ({r}, {c}, 'General', '', 0, {t}, 'room')"
    ),
)
POST_COLUMNS = (
    "id",
    "room",
    "author",
    "kind",
    "body",
    "html",
    "created_at",
    "seq",
    "like_count",
    "liked_by_coach",
    "pinned",
    "hidden_with_origin",
)


def post_row(w: World, i: int, rng: random.Random) -> tuple[Any, ...]:
    text = body(rng)
    created = w.now - timedelta(seconds=500_000 - i)
    return (uuid.uuid4(), w.room, w.coach, "reflection", text, f"<p>{text}</p>", created, i + 1, 0, False, False, False)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def run_backend(kind: str, posts: int, repeat: int, writes: int, no_sync: bool = False) -> dict[str, Any]:
    rng = random.Random(18)
    w = World()
    tmp = tempfile.mkdtemp(prefix="kindred-bench-search-")
    name = f"kindred_bench_search_{uuid.uuid4().hex[:6]}"
    if kind == "sqlite":
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
    else:
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    engine = make_engine(url)
    bind(engine)
    await start(engine, pool_size=4)
    out: dict[str, Any] = {"backend": kind, "posts": posts, "writes_without_fsync": no_sync}
    try:
        await migrate(engine, quiet=True)
        values = {"a": w.account, "c": w.circle, "m": w.coach, "r": w.room, "t": w.now, "f": False}
        t0 = time.perf_counter()
        if kind == "sqlite":
            path = url.split("///", 1)[1]
            conn = sqlite3.connect(path)
            for sql in SETUP:
                conn.execute(sql.format(**{k: "?" for k in values}), _ordered(sql, values, str))
            placeholders = ", ".join("?" for _ in POST_COLUMNS)
            insert = f"INSERT INTO post ({', '.join(POST_COLUMNS)}) VALUES ({placeholders})"
            batch = 10_000
            for start_i in range(0, posts, batch):
                rows = [_sqlite_row(post_row(w, i, rng)) for i in range(start_i, min(posts, start_i + batch))]
                conn.executemany(insert, rows)
                conn.commit()
            conn.execute("ANALYZE")
            conn.commit()
            out["load_seconds"] = round(time.perf_counter() - t0, 1)
            if no_sync:
                conn.execute("PRAGMA synchronous = OFF")
            out["write"] = _sqlite_write_cost(conn, w, rng, writes, insert)
            conn.close()
        else:
            pg = await asyncpg.connect(url)
            for sql in SETUP:
                await pg.execute(_numbered(sql), *_ordered(sql, values, lambda v: v))
            batch = 20_000
            for start_i in range(0, posts, batch):
                rows = [post_row(w, i, rng) for i in range(start_i, min(posts, start_i + batch))]
                await pg.copy_records_to_table("post", records=rows, columns=list(POST_COLUMNS))
            await pg.execute("VACUUM ANALYZE post")
            await pg.execute("VACUUM ANALYZE post_search")
            out["load_seconds"] = round(time.perf_counter() - t0, 1)
            if no_sync:
                await pg.execute("SET synchronous_commit = off")
            out["write"] = await _pg_write_cost(pg, w, rng, writes)
            await pg.close()
        out["search"] = await _search_latency(w, repeat)
    finally:
        await stop(engine)
        if kind == "postgres":
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    return out


def _numbered(sql: str) -> str:
    """`{x}` placeholders as asyncpg's $1, $2 ..."""
    counter = iter(range(1, 100))
    return re.sub(r"\{\w\}", lambda _: f"${next(counter)}", sql)


def _ordered(sql: str, values: dict[str, Any], conv: Any) -> list[Any]:
    return [conv(values[k]) if k != "f" else False for k in re.findall(r"\{(\w)\}", sql)]


def _sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(str(v) if isinstance(v, uuid.UUID | datetime) else v for v in row)


def _sqlite_write_cost(conn: sqlite3.Connection, w: World, rng: random.Random, n: int, insert: str) -> dict[str, Any]:
    def one_round() -> float:
        t = time.perf_counter()
        for i in range(n):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(insert, _sqlite_row(post_row(w, 600_000 + i, rng)))
            conn.execute("COMMIT")
        return (time.perf_counter() - t) / n * 1e6

    conn.isolation_level = None
    with_index = [one_round() for _ in range(3)]
    for statement in index_migration.SQLITE_BACKWARDS[:3]:  # the triggers only; the index stays
        conn.execute(statement)
    without = [one_round() for _ in range(3)]
    for statement in index_migration.SQLITE_FORWARDS[2:5]:
        conn.execute(statement)
    return _cost(with_index, without)


async def _pg_write_cost(pg: asyncpg.Connection, w: World, rng: random.Random, n: int) -> dict[str, Any]:
    placeholders = ", ".join(f"${k + 1}" for k in range(len(POST_COLUMNS)))
    insert = f"INSERT INTO post ({', '.join(POST_COLUMNS)}) VALUES ({placeholders})"

    async def one_round() -> float:
        t = time.perf_counter()
        for i in range(n):
            async with pg.transaction():
                await pg.execute(insert, *post_row(w, 600_000 + i, rng))
        return (time.perf_counter() - t) / n * 1e6

    with_index = [await one_round() for _ in range(3)]
    await pg.execute("ALTER TABLE post DISABLE TRIGGER post_search_insert")
    without = [await one_round() for _ in range(3)]
    await pg.execute("ALTER TABLE post ENABLE TRIGGER post_search_insert")
    return _cost(with_index, without)


def _cost(with_index: list[float], without: list[float]) -> dict[str, Any]:
    a, b = statistics.median(with_index), statistics.median(without)
    return {
        "us_per_post_with_index": round(a),
        "us_per_post_without": round(b),
        "extra_percent": round((a / b - 1) * 100, 1),
    }


async def _search_latency(w: World, repeat: int) -> dict[str, Any]:
    per_query: dict[str, Any] = {}
    everything: list[float] = []
    for q in QUERIES:
        await search.search(w.account, str(w.circle), q, search.Filters())  # warm
        times = []
        hits = 0
        for _ in range(repeat):
            t = time.perf_counter()
            page = await search.search(w.account, str(w.circle), q, search.Filters())
            times.append((time.perf_counter() - t) * 1000)
            hits = len(page.items)
        everything += times
        per_query[q] = {
            "p50_ms": round(percentile(times, 50), 1),
            "p95_ms": round(percentile(times, 95), 1),
            "page": hits,
        }
    return {
        "p50_ms": round(percentile(everything, 50), 1),
        "p95_ms": round(percentile(everything, 95), 1),
        "queries": per_query,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 posts")
    parser.add_argument("--posts", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--writes", type=int, default=500, help="posts written one by one per round (3 rounds)")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--no-fsync",
        action="store_true",
        help="write rounds without waiting for the disk (synchronous_commit off, PRAGMA synchronous OFF): the index's "
        "CPU cost, not hidden under a slow commit on a busy machine",
    )
    args = parser.parse_args()
    posts = args.posts or (20_000 if args.quick else 500_000)
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}", "backends": []}
    for kind in args.backends.split(","):
        result = await run_backend(kind, posts, args.repeat, args.writes, args.no_fsync)
        print(f"{kind}: {json.dumps(result)}", flush=True)
        results["backends"].append(result)
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
