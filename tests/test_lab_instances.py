"""The experiment.due reminder across real `kindred serve` processes sharing Postgres and Redis: two instances looking
at once send one reminder, and one that came due while every instance was down goes out once when they come back.

Each instance looks every KINDRED_EXPERIMENT_DUE_INTERVAL seconds and counts its looks (`due_checks` on /healthz, for
an operator). The tests wait on those counters, never on time: "exactly one" is asserted only after both instances
have looked again several times since the reminder arrived."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.client import ApiClient, User, make_circle
from tests.conftest import REDIS_URL
from tests.procs import KindredProcess

pytestmark = [pytest.mark.anyio, pytest.mark.multi]

OPS_TOKEN = "ops-token-for-lab-tests"
INTERVAL = "0.2"
PLAN = {
    "assumption": "If I say no, she will stop trusting me",
    "belief_before": 80,
    "action": "Decline the Friday extra shift, kindly and briefly",
    "prediction": "She will be cold with me for the rest of the week",
}


def _procs(pg_url: str, prefix: str) -> list[KindredProcess]:
    env = {"KINDRED_OPS_TOKEN": OPS_TOKEN, "KINDRED_EXPERIMENT_DUE_INTERVAL": INTERVAL}
    return [KindredProcess(pg_url, REDIS_URL, prefix, **env) for _ in range(2)]


async def _checks(api: ApiClient) -> int:
    health = (await api.http.get("/healthz", headers={"Authorization": f"Bearer {OPS_TOKEN}"})).json()
    return int(health["stats"]["due_checks"])


async def _until(condition: Callable[[], Awaitable[Any]], what: str, deadline: float = 60.0) -> Any:
    """Poll a state over HTTP until it holds; the deadline only turns a hang into a failure saying what never came."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        result = await condition()
        if result:
            return result
        if loop.time() > end:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.05)


async def _due_notes(user: User) -> list[dict[str, Any]]:
    return [n for n in await user.ok("GET", "/api/v1/notifications") if n["kind"] == "experiment.due"]


async def _both_look_again(apis: list[ApiClient], times: int = 3) -> None:
    """Wait until every instance has made `times` more looks than now: any second reminder would be out by then."""
    start = [await _checks(api) for api in apis]

    async def done() -> bool:
        now = [await _checks(api) for api in apis]
        return all(n >= s + times for n, s in zip(now, start, strict=True))

    await _until(done, f"every instance looked {times} more times")


@contextlib.asynccontextmanager
async def _running(procs: list[KindredProcess]) -> AsyncIterator[list[ApiClient]]:
    await asyncio.gather(*(p.start() for p in procs))
    apis = [ApiClient(p.url, p.ws_url) for p in procs]
    try:
        yield apis
    finally:
        for api in apis:
            await api.aclose()
        for p in procs:
            p.stop()


def _in(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def test_two_instances_looking_at_once_send_one_reminder(pg_url: str) -> None:
    async with _running(_procs(pg_url, f"kt{uuid.uuid4().hex[:8]}")) as apis:
        c = await make_circle(apis[0], members=2)
        jackie, peer = c.members
        sock = await apis[1].ws(jackie.token)
        due = await jackie.post(c.room_id, "", kind="experiment", experiment={**PLAN, "due_at": _in(seconds=1)})
        # The control for "nothing else": the peer's experiment, due in five days, is never reminded now.
        await peer.post(c.room_id, "", kind="experiment", experiment={**PLAN, "due_at": _in(days=5)})
        # Made through instance A, reminded by whichever instance looks first, heard on instance B's socket.
        frame = await sock.recv_until(lambda f: f.get("type") == "notification", timeout=60)
        assert (frame["data"]["kind"], frame["data"]["post_id"]) == ("experiment.due", due["id"])
        await _both_look_again(apis)
        assert [n["post_id"] for n in await _due_notes(jackie)] == [due["id"]], "one reminder from two instances"
        assert await _due_notes(peer) == []
        await sock.close()


async def test_due_while_every_instance_is_down_is_reminded_once_when_they_return(pg_url: str) -> None:
    prefix = f"kt{uuid.uuid4().hex[:8]}"
    async with _running(_procs(pg_url, prefix)) as apis:
        c = await make_circle(apis[0], members=2)
        jackie, peer = c.members
        due = await jackie.post(c.room_id, "", kind="experiment", experiment={**PLAN, "due_at": _in(days=2)})
        debriefed = await peer.post(c.room_id, "", kind="experiment", experiment={**PLAN, "due_at": _in(days=2)})
        await peer.ok(
            "PATCH",
            f"/api/v1/posts/{debriefed['id']}/experiment",
            {"state": "debriefed", "outcome": "fine", "matched_prediction": "no", "belief_after": 40, "learning": "x"},
        )
        await _both_look_again(apis)
        assert await _due_notes(jackie) == [], "not due yet"
        people = (jackie, peer)
    # Every instance is down. Two days pass (in the database): both experiments are past their time.
    conn = await asyncpg.connect(pg_url)
    try:
        past = datetime.now(UTC) - timedelta(hours=1)
        await conn.execute(
            "UPDATE post SET experiment_due_at = $1 WHERE id = ANY($2::uuid[])",
            past,
            [uuid.UUID(due["id"]), uuid.UUID(debriefed["id"])],
        )
    finally:
        await conn.close()
    async with _running(_procs(pg_url, prefix)) as apis:
        # The same accounts, now through the new instances.
        jackie, peer = (dataclasses.replace(u, api=api) for u, api in zip(people, apis, strict=True))
        notes = await _until(lambda: _due_notes(jackie), "the reminder after the restart")
        assert [n["post_id"] for n in notes] == [due["id"]]
        await _both_look_again(apis)
        assert [n["post_id"] for n in await _due_notes(jackie)] == [due["id"]], "once, not once per instance"
        assert await _due_notes(peer) == [], "a debriefed experiment is never reminded"
