"""Pulse benchmark: one circle of 1,000 members and 200,000 posts and replies over a year, with the coach's likes,
probing questions, pins, shares and tags, members' likes and experiments at every stage; then the latency of the
coach's pulse (`app.services.pulse.pulse`, what the endpoint calls) on SQLite and on Postgres.

    uv run python -m bench.pulse                   # 1,000 members, 200,000 posts, both backends
    uv run python -m bench.pulse --quick           # 100 members, 20,000 posts
    uv run python -m bench.pulse --backends postgres --days 30,365

Each window in `--days` is asked `--repeat` times after one warm-up. The last line is JSON. Needs Postgres on
127.0.0.1:5432 with trust auth (or BENCH_PG=postgresql://.../postgres); its database is dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from app.services import pulse
from db.engine import bind, make_engine, start, stop
from db.migrate import migrate

PG_ADMIN = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
YEAR = timedelta(days=365)
STATES = ("planned", "tried", "debriefed", "abandoned")


class World:
    """The circle's ids and every row to load, made once (seeded), the same for both backends."""

    def __init__(self, members: int, posts: int, rng: random.Random) -> None:
        self.now = datetime.now(UTC)
        self.circle = uuid.uuid4()
        self.coach_account = uuid.uuid4()
        self.coach = uuid.uuid4()
        self.room = uuid.uuid4()
        self.members = [uuid.uuid4() for _ in range(members)]
        self.tables: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
        self._build(posts, rng)

    def _add(self, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        self.tables[table] = (columns, rows)

    def _build(self, n_posts: int, rng: random.Random) -> None:
        t, f = self.now - YEAR, False
        accounts = [(self.coach_account, "coach@bench.example", "Coach", "", t, t, "UTC")]
        memberships = [(self.coach, self.circle, self.coach_account, "Coach", "coach", "coach", "coach", t, f, f)]
        for i, m in enumerate(self.members):
            a = uuid.uuid4()
            accounts.append((a, f"m{i}@bench.example", f"Member {i}", "", t, t, "UTC"))
            alias = f"member{i:04d}"
            memberships.append((m, self.circle, a, alias, alias, alias, "member", t, f, f))
        self._add(
            "account",
            ["id", "email", "name", "password_hash", "created_at", "password_changed_at", "timezone"],
            accounts,
        )
        self._add("circle", ["id", "name", "commonality", "norms", "coach_sees_identity", "created_at"],
                  [(self.circle, "Bench", "bench", "", True, t)])  # fmt: skip
        self._add("membership", ["id", "circle", "account", "alias", "alias_key", "alias_skeleton", "role",
                                 "joined_at", "rejoin_blocked", "coach_sees_identity"], memberships)  # fmt: skip
        # A tenth of the members keep a journal; a tenth of their posts go there.
        journals = {m: uuid.uuid4() for m in self.members[: max(1, len(self.members) // 10)]}
        rooms = [(self.room, self.circle, "General", "", 0, t, "room", None)]
        rooms += [(r, self.circle, "Journal", "", 0, t, "journal", m) for m, r in journals.items()]
        self._add("room", ["id", "circle", "name", "topic", "last_seq", "created_at", "kind", "membership"], rooms)

        cols = ["id", "room", "parent", "thread_root", "author", "kind", "body", "html", "created_at", "seq",
                "like_count", "liked_by_coach", "pinned", "hidden_with_origin", "origin", "experiment",
                "experiment_state", "experiment_due_at"]  # fmt: skip
        posts: list[tuple[Any, ...]] = []
        likes: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        pins: list[tuple[Any, ...]] = []
        tags: list[tuple[Any, ...]] = []
        tops: list[tuple[uuid.UUID, uuid.UUID]] = []  # id, room
        step = YEAR / n_posts
        for i in range(n_posts):
            created = self.now - YEAR + step * i
            pid = uuid.uuid4()
            reply = tops and rng.random() < 0.65
            if reply:
                root, room = tops[-rng.randint(1, min(len(tops), 200))]
                coach = rng.random() < 0.1
                author = self.coach if coach else rng.choice(self.members)
                kind = "question" if coach and rng.random() < 0.5 else "reflection"
                posts.append((pid, room, root, root, author, kind, "a reply", "<p>a reply</p>", created, i + 1,
                              0, f, f, f, None, None, None, None))  # fmt: skip
            else:
                author = rng.choice(self.members)
                room = journals[author] if author in journals and rng.random() < 0.1 else self.room
                roll = rng.random()
                kind = "win" if roll < 0.1 else "experiment" if roll < 0.15 else "reflection"
                record = state = due = None
                if kind == "experiment":
                    state = rng.choice(STATES)
                    due = created + timedelta(days=7)
                    after = rng.randint(0, 100) if state == "debriefed" else None
                    record = json.dumps({"state": state, "assumption": "a", "belief_before": rng.randint(0, 100),
                                         "action": "b", "prediction": "c", "due_at": due.isoformat(),
                                         "belief_after": after})  # fmt: skip
                    if state != "planned":
                        events.append(
                            (room, 10_000_000 + i, "experiment.changed", pid, "{}", created + timedelta(days=2))
                        )
                posts.append((pid, room, None, None, author, kind, "a post", "<p>a post</p>", created, i + 1,
                              0, f, f, f, None, record, state, due))  # fmt: skip
                tops.append((pid, room))
                if rng.random() < 0.3:
                    likes.append((uuid.uuid4(), pid, self.coach, created + timedelta(hours=3)))
                for m in rng.sample(self.members, k=min(len(self.members), rng.randint(0, 3))):
                    likes.append((uuid.uuid4(), pid, m, created + timedelta(hours=1)))
                if rng.random() < 0.01:
                    pins.append((uuid.uuid4(), pid, self.circle, None, self.coach, created + timedelta(hours=4)))
                if rng.random() < 0.01:
                    share = uuid.uuid4()
                    posts.append((share, self.room, None, None, self.coach, "reflection", "shared", "<p>shared</p>",
                                  created + timedelta(hours=5), n_posts + i + 1, 0, f, f, f, pid, None, None, None))  # fmt: skip
                if rng.random() < 0.02:
                    tags.append((uuid.uuid4(), pid, rng.choice(self.members), self.coach, created + timedelta(hours=2)))
        self._add("post", cols, posts)
        self._add("post_like", ["id", "post", "membership", "created_at"], likes)
        self._add("room_event", ["room", "seq", "type", "post_id", "data", "created_at"], events)
        self._add("pin", ["id", "post", "circle", "note", "pinned_by", "pinned_at"], pins)
        self._add("tag", ["id", "post", "membership", "tagged_by", "created_at"], tags)

    def counts(self) -> dict[str, int]:
        return {name: len(rows) for name, (_, rows) in self.tables.items()}


def _sqlite_value(v: Any) -> Any:
    """As Piccolo's SQLite adapters store it: UUIDs as text, aware times as str() of the UTC time."""
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, datetime):
        return str(v.astimezone(UTC))
    return v


def _chunks(rows: list[tuple[Any, ...]], size: int = 20_000) -> Iterator[list[tuple[Any, ...]]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


async def load(kind: str, url: str, w: World) -> None:
    if kind == "sqlite":
        conn = sqlite3.connect(url.split("///", 1)[1])
        for table, (columns, rows) in w.tables.items():
            insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
            for chunk in _chunks(rows):
                conn.executemany(insert, [tuple(_sqlite_value(v) for v in row) for row in chunk])
        conn.commit()
        conn.execute("ANALYZE")
        conn.commit()
        conn.close()
        return
    pg = await asyncpg.connect(url)
    try:
        for table, (columns, rows) in w.tables.items():
            for chunk in _chunks(rows):
                await pg.copy_records_to_table(table, records=chunk, columns=columns)
        await pg.execute("VACUUM ANALYZE")
    finally:
        await pg.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def run_backend(kind: str, w: World, windows: list[int], repeat: int) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="kindred-bench-pulse-")
    name = f"kindred_bench_pulse_{uuid.uuid4().hex[:6]}"
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
    out: dict[str, Any] = {"backend": kind}
    try:
        await migrate(engine, quiet=True)
        t0 = time.perf_counter()
        await load(kind, url, w)
        out["load_seconds"] = round(time.perf_counter() - t0, 1)
        for days in windows:
            got = await pulse.pulse(w.coach_account, str(w.circle), days)  # warm
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                await pulse.pulse(w.coach_account, str(w.circle), days)
                times.append((time.perf_counter() - t) * 1000)
            out[f"days_{days}"] = {
                "p50_ms": round(percentile(times, 50), 1),
                "p95_ms": round(percentile(times, 95), 1),
                "members": len(got.members),
                "window_posts": sum(d.posts for d in got.circle.posts_by_day),
                "unanswered": len(got.circle.unanswered),
                "open_questions": got.circle.open_questions,
            }
    finally:
        await stop(engine)
        if kind == "postgres":
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 members, 20,000 posts")
    parser.add_argument("--members", type=int, default=None)
    parser.add_argument("--posts", type=int, default=None)
    parser.add_argument("--days", default="30,365", help="windows to ask for, comma-separated")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    members = args.members or (100 if args.quick else 1000)
    posts = args.posts or (20_000 if args.quick else 200_000)
    w = World(members, posts, random.Random(16))
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "rows": w.counts(),
        "backends": [],
    }
    for kind in args.backends.split(","):
        result = await run_backend(kind, w, [int(d) for d in args.days.split(",")], args.repeat)
        print(f"{kind}: {json.dumps(result)}", flush=True)
        results["backends"].append(result)
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
