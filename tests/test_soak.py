"""The soak (bench/soak.py, docs/reliability.md): its checker catches what it must (gaps, duplicates, foreign rooms,
events after access ended), and a 60-second run over Postgres and Redis with every kind of fault passes it."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

import pytest

from bench import soak
from tests.conftest import IN_CI, PG_ADMIN_DSN, _services_up

ROOT = Path(__file__).resolve().parent.parent


def world(tmp_path: Path) -> tuple[soak.World, soak.Client]:
    w = soak.World(soak.parse(["--seconds", "1", "--seed", "7"]), random.Random(7), soak.Services(tmp_path))
    member = soak.Account("m", "token", membership_id="m1", journal="journal-1")
    client = soak.Client(0, member, ["room-a", "journal-1"])
    w.clients.append(client)
    return w, client


def event(room: str, seq: int, post_id: str = "p") -> str:
    return json.dumps({"type": "event", "room_id": room, "seq": seq, "event": "post.created", "data": {"id": post_id}})


def test_the_checker_takes_every_next_seq_and_flags_gaps_duplicates_and_foreign_rooms(tmp_path: Path) -> None:
    w, c = world(tmp_path)
    for seq in (1, 2, 3):
        soak.on_frame(w, c, event("room-a", seq))
    soak.on_frame(w, c, event("journal-1", 1))
    assert (w.delivered, w.violation_count, c.last) == (4, 0, {"room-a": 3, "journal-1": 1})
    soak.on_frame(w, c, event("room-a", 3))  # again
    soak.on_frame(w, c, event("room-a", 5))  # 4 is missing
    soak.on_frame(w, c, event("journal-2", 1))  # someone else's journal
    assert [v["kind"] for v in w.violations] == ["duplicate", "gap", "foreign_room"]
    # A resync moves the floor (the client reloads over HTTP); the next live event follows it.
    soak.on_frame(w, c, json.dumps({"type": "resync", "room_id": "room-a", "last_seq": 1500}))
    soak.on_frame(w, c, event("room-a", 1501))
    assert w.violation_count == 3 and c.resyncs == 1


def test_the_checker_allows_a_second_after_removal_and_nothing_later(tmp_path: Path) -> None:
    w, c = world(tmp_path)
    now = time.monotonic()
    c.account.removed_at = now
    soak.on_frame(w, c, event("room-a", 1))  # within the grace: in flight when the removal answered
    assert w.violation_count == 0 and w.delivered == 1
    c.account.removed_at = now - soak.REMOVAL_GRACE - 1
    soak.on_frame(w, c, event("room-a", 2))
    assert [v["kind"] for v in w.violations] == ["after_access_ended"]


def test_a_503_counts_only_while_postgres_is_down(tmp_path: Path) -> None:
    w, _ = world(tmp_path)
    soak.judge(w, "post", 201, 10.0)
    soak.judge(w, "post", 503, 10.0)
    w.pg_down.append([20.0, 22.0])
    soak.judge(w, "post", 503, 21.0)
    soak.judge(w, "post", 503, 22.0 + soak.PG_GRACE - 0.1)
    soak.judge(w, "post", 500, 21.0)
    assert [v["status"] for v in w.violations] == [503, 500]
    assert w.writes == {"post 201": 1, "post 503": 3, "post 500": 1}


@pytest.mark.anyio
async def test_a_one_minute_soak_with_every_fault_finds_nothing_lost_nothing_twice(tmp_path: Path) -> None:
    """CI's short soak: 2 instances, 60 sockets, every heavy fault at least once and sockets dropped all along."""
    problem = await _services_up()
    if problem is None and not shutil.which("redis-server"):
        problem = RuntimeError("redis-server is not on the PATH")
    if problem is not None:
        if IN_CI:
            pytest.fail(f"CI=true requires Postgres and redis-server for the soak: {problem!r}")
        pytest.skip(f"SKIPPING THE SOAK: {problem!r}")
    out = tmp_path / "summary.json"
    args = ["--seconds", "60", "--sockets", "60", "--accounts", "10", "--seed", "2026", "--out", str(out)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.soak",
        *args,
        cwd=ROOT,
        env={**os.environ, "BENCH_PG": PG_ADMIN_DSN},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert out.exists(), err.decode()[-3000:]
    summary = json.loads(out.read_text())
    assert proc.returncode == 0 and summary["violations"] == 0, json.dumps(summary["first_violations"], indent=1)
    for kind in soak.HEAVY_FAULTS:
        assert summary["faults"].get(kind, 0) >= 1, kind
    assert summary["faults"].get("stall_cut_off") == summary["faults"]["stall"], "the stalled socket was cut off"
    assert summary["faults"]["drop"] > 20 and summary["delivered_events"] > 1000
    assert summary["created"] > 100 and summary["refused_503"] >= 1, "writes went in; one was refused while down"
    assert summary["created_over_socket"] >= 10, "a share of the creates went over the socket, checked like the rest"
