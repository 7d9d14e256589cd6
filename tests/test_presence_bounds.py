"""Presence and the bus under a storm (issue 20, S8): bounded work in flight, and no quick-fire reconnects.

At 5,000 rooms every subscribe scheduled its own presence broadcast, each took a connection of the Redis pool, the
pool ran out ("Too many connections"), and the starved bus reconnected again and again, catching every socket up
each time. These tests pin the three bounds that stop that: broadcasts in flight, presence commands in flight, and
the backoff after a connection that did not last.
"""

from __future__ import annotations

import asyncio
import uuid

import anyio
import pytest
from redis.asyncio import Redis
from redis.exceptions import MaxConnectionsError

from realtime.bus import RECONNECT_CAP, RECONNECT_INITIAL, RECONNECT_STABLE_AFTER, reconnect_delay
from realtime.events import Membership
from realtime.presence import PresenceBroadcaster, RedisPresence
from realtime.topics import Topics
from tests.client import DEADLINE
from tests.conftest import REDIS_URL, Templates

pytestmark = pytest.mark.anyio


def test_a_stable_connection_earns_a_quick_retry_and_a_flapping_one_backs_off() -> None:
    assert reconnect_delay(RECONNECT_CAP, RECONNECT_STABLE_AFTER) == RECONNECT_INITIAL
    assert reconnect_delay(RECONNECT_INITIAL, 3600.0) == RECONNECT_INITIAL
    # Up for a moment only: each short-lived connection doubles the wait, up to the cap and no further.
    delays = [RECONNECT_INITIAL]
    for _ in range(6):
        delays.append(reconnect_delay(delays[-1], 0.5))
    assert delays[:4] == [RECONNECT_INITIAL, RECONNECT_INITIAL * 2, RECONNECT_INITIAL * 4, RECONNECT_INITIAL * 8]
    assert delays[-1] == RECONNECT_CAP and max(delays) == RECONNECT_CAP


async def test_presence_broadcasts_in_flight_are_bounded_and_none_is_lost() -> None:
    rooms = [f"room-{i}" for i in range(40)]
    cap = 4
    sent: list[str] = []
    flying: set[str] = set()
    most = 0
    first_wave = asyncio.Event()
    release = asyncio.Event()
    all_sent = asyncio.Event()

    async def broadcast(room_id: str) -> None:
        nonlocal most
        flying.add(room_id)
        most = max(most, len(flying))
        if most == cap:
            first_wave.set()
        await release.wait()
        flying.discard(room_id)
        sent.append(room_id)
        if set(sent) == set(rooms) and sent.count(rooms[0]) == 2:
            all_sent.set()

    broadcaster = PresenceBroadcaster(broadcast, asyncio.create_task, in_flight=cap)
    for room_id in rooms:  # forty rooms change in the same tick, as after a connect storm
        broadcaster.changed(room_id, lambda: 1)
    with anyio.fail_after(DEADLINE):
        await first_wave.wait()
    # A change to a room whose frame is being sent now needs a frame of its own; one to a room still waiting for a
    # slot is folded into the frame it will send.
    assert rooms[0] in flying and rooms[-1] not in flying
    broadcaster.changed(rooms[0], lambda: 1)
    broadcaster.changed(rooms[-1], lambda: 1)
    release.set()
    with anyio.fail_after(DEADLINE):
        await all_sent.wait()
        while broadcaster.running():
            await asyncio.gather(*broadcaster.running())
    assert most == cap, "every room was due at once: without the bound all forty would be in flight together"
    assert broadcaster.peak_in_flight == cap
    assert sorted(sent) == sorted([*rooms, rooms[0]]), "each room once, and the in-flight room's change once more"


def _who(i: int) -> Membership:
    return Membership(membership_id=f"m{i}", alias=f"Alias {i}", role="member")


async def test_redis_presence_stays_within_its_share_of_the_pool(templates: Templates) -> None:
    await templates.postgres()  # the Redis variant only: skips loudly (or fails in CI) without the services
    client = Redis.from_url(REDIS_URL, max_connections=4)
    topics = Topics(f"kt{uuid.uuid4().hex[:10]}")
    try:
        bounded = RedisPresence(client, topics, in_flight=4)
        await asyncio.gather(*(bounded.join("bounded", f"s{i}", _who(i)) for i in range(200)))
        assert len(await bounded.members("bounded")) == 200, "two hundred joins at once on four connections"
        # The control: the same storm without the bound asks the pool for more connections than it has.
        unbounded = RedisPresence(client, topics, in_flight=200)
        results = await asyncio.gather(
            *(unbounded.join("unbounded", f"s{i}", _who(i)) for i in range(200)), return_exceptions=True
        )
        assert any(isinstance(r, MaxConnectionsError) for r in results)
    finally:
        await client.delete(topics.presence_key("bounded"), topics.presence_key("unbounded"))
        await client.aclose()


async def test_a_big_room_lists_the_first_names_and_counts_everyone() -> None:
    from realtime.presence import PRESENCE_LIST_MAX
    from tests.test_hub_unit import ROOM, Rig, until

    async with Rig() as rig:
        # A small room first: the whole list, and a count that matches it (the control).
        conn, sock = await rig.connect("reader")
        await rig.hub.subscribe(conn, ROOM, 0)

        def presence() -> list[dict[str, object]]:
            return [f for f in sock.sent if f["type"] == "presence"]

        await until(lambda: bool(presence()), "the reader's own presence frame")
        small = presence()[-1]
        assert small["present_count"] == len(small["present"]) == 1  # type: ignore[arg-type]
        others = PRESENCE_LIST_MAX + 50
        for i in range(others):
            await rig.hub.presence.join(ROOM, f"s{i}", _who(i))
        seen = len(presence())
        await rig.hub.refresh_presence(ROOM)
        await until(lambda: len(presence()) > seen, "a presence frame after the room grew")
        big = presence()[-1]
        assert big["present_count"] == others + 1
        listed = big["present"]
        assert isinstance(listed, list) and len(listed) == PRESENCE_LIST_MAX
        aliases = [m["alias"] for m in listed]
        assert aliases == sorted(aliases, key=str.casefold), "the first names in the usual order"
