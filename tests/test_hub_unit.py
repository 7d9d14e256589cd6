"""The hub's delivery logic without a server: real Hub, Connection, Bus (memory backend) and presence, with the room
log held in memory behind the `HubStore` callbacks (the hub's only window on the database).

These are the orderings that integration tests reach only by luck: an instance that is behind (Redis away) while a
socket replays from the log, a resync while behind, revocations lost with the bus, and edits that must not be
replayed from memory."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import anyio
import msgspec
import pytest

from realtime.bus import Bus, memory_backend
from realtime.connection import Connection
from realtime.events import Membership, encode_event
from realtime.hub import Hub
from realtime.presence import MemoryPresence
from realtime.topics import Topics
from realtime.types import Access, Entry, SocketLimits

pytestmark = pytest.mark.anyio

ROOM, CIRCLE = "room-1", "circle-1"


class LogStore:
    """The room log and memberships, in memory."""

    def __init__(self) -> None:
        self.log: list[Entry] = []
        self.allowed: set[tuple[str, str]] = set()

    def append(self, body: str = "hello", name: str = "post.created") -> bytes:
        seq = len(self.log) + 1
        data = msgspec.json.encode({"id": f"p{seq}", "body": body})
        envelope = encode_event(ROOM, seq, name, data)
        self.log.append(Entry(seq, name, envelope))
        return envelope

    def rewrite(self, seq: int, body: str) -> None:
        """What the database does to older events of a post when it is edited or hidden."""
        data = msgspec.json.encode({"id": f"p{seq}", "body": body})
        self.log[seq - 1] = Entry(seq, "post.created", encode_event(ROOM, seq, "post.created", data))

    async def authorize(self, account_id: str, room_id: str) -> Access | None:
        if (account_id, CIRCLE) not in self.allowed:
            return None
        return Access(
            circle_id=CIRCLE, who=Membership(membership_id=f"m-{account_id}", alias=account_id, role="member")
        )

    async def read_events(self, room_id: str, after: int, limit: int) -> tuple[list[Entry], int]:
        return [e for e in self.log if e[0] > after][:limit], len(self.log)

    async def last_seqs(self, room_ids: list[str]) -> dict[str, int]:
        return {r: len(self.log) for r in room_ids}

    async def still_allowed(self, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
        return pairs & self.allowed

    async def hands(self, room_id: str) -> list[Membership]:
        return []


class Socket:
    """The ASGI side of one websocket: what the server sent, and nothing ever received."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed: int | None = None

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.close":
            self.closed = message["code"]
        else:
            self.sent.append(json.loads(message["text"]))

    async def receive(self) -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    def seqs(self) -> list[int]:
        return [f["seq"] for f in self.sent if f["type"] == "event"]


class Rig:
    def __init__(self, replay_cap: int = 1000) -> None:
        self.store = LogStore()
        limits = SocketLimits(
            frames_per_second=100,
            send_queue_frames=5000,
            max_frame_bytes=65536,
            replay_cap=replay_cap,
            sockets_per_account=10,
        )
        self.hub = Hub(store=self.store, presence=MemoryPresence(), topics=Topics("t"), limits=limits, renderer=None)  # type: ignore[arg-type]
        self.bus = Bus(memory_backend, self.hub.on_message, self.hub.after_reconnect)
        self.tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Rig:
        await self.bus.start()
        await self.hub.start(self.bus)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self.tasks:
            task.cancel()
        await self.hub.stop()
        await self.bus.stop()

    async def connect(self, account: str) -> tuple[Connection, Socket]:
        self.store.allowed.add((account, CIRCLE))
        socket = Socket()
        conn = Connection(socket, self.hub, account_id=account, token_id=None, variant="json")
        await self.hub.attach(conn)
        self.tasks.append(asyncio.ensure_future(conn.run()))
        return conn, socket

    def echo(self, envelope: bytes) -> None:
        """A publish reaching this instance through the bus, late."""
        self.hub.on_message(self.hub.topics.room(ROOM), envelope)


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for a state (the hub's tasks run meanwhile), never for a time: each turn yields to the event loop once,
    and a generous deadline only turns a hang into a failure that says what never happened."""
    with anyio.fail_after(20):
        # The hub's tasks have no event to offer a waiter; each check gives them one turn of the loop.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0)
    assert condition(), what


async def test_replay_from_the_log_while_behind_sends_nothing_twice() -> None:
    async with Rig() as rig:
        x, x_sock = await rig.connect("x")
        await rig.hub.subscribe(x, ROOM, None)
        # Another instance commits ten events while the bus is away: this instance hears nothing.
        late = [rig.store.append(f"post {i}") for i in range(10)]
        y, y_sock = await rig.connect("y")
        await rig.hub.subscribe(y, ROOM, 0)  # replayed from the log, past what this instance had released
        for envelope in late:  # then the bus comes back and the publishes arrive after all
            rig.echo(envelope)
        await rig.hub.catch_up()
        rig.echo(rig.store.append("live"))
        await until(lambda: 11 in y_sock.seqs() and 11 in x_sock.seqs(), "the live event reaches both")
        assert y_sock.seqs() == list(range(1, 12))
        assert x_sock.seqs() == list(range(1, 12)), "the instance caught up from the replay's read"
        assert [f["type"] for f in y_sock.sent].count("subscribed") == 1


async def test_resync_while_behind_sends_only_what_follows_it() -> None:
    async with Rig(replay_cap=5) as rig:
        x, x_sock = await rig.connect("x")
        await rig.hub.subscribe(x, ROOM, None)
        late = [rig.store.append() for _ in range(10)]
        y, y_sock = await rig.connect("y")
        await rig.hub.subscribe(y, ROOM, 0)
        for envelope in late:
            rig.echo(envelope)
        rig.echo(rig.store.append())
        await until(lambda: 11 in y_sock.seqs() and 11 in x_sock.seqs(), "the live event reaches both")
        resync = [f for f in y_sock.sent if f["type"] == "resync"]
        assert [f["last_seq"] for f in resync] == [10]
        assert y_sock.seqs() == [11], "live events with seq > N follow, and only those"
        assert x_sock.seqs() == list(range(1, 12))


async def test_events_read_back_after_an_outage_skip_revoked_sockets() -> None:
    async with Rig() as rig:
        x, x_sock = await rig.connect("x")
        stays, stays_sock = await rig.connect("stays")
        await rig.hub.subscribe(x, ROOM, None)
        await rig.hub.subscribe(stays, ROOM, None)
        await until(lambda: [f["type"] for f in x_sock.sent] == ["subscribed"], "x is subscribed: the revoke has work")
        # During an outage x is removed (the revoke frame is lost with the bus) and the room moves on.
        rig.store.allowed.discard(("x", CIRCLE))
        rig.store.append("said after x left")
        await rig.hub.catch_up()  # the tail check finds the event in the log
        await until(lambda: stays_sock.seqs() == [1], "the member who stays gets the event (the control)")
        await until(
            lambda: any(f["type"] == "error" and f["code"] == "forbidden" for f in x_sock.sent), "x is told why"
        )
        assert x_sock.seqs() == []


async def test_a_revoke_cuts_off_before_the_next_event() -> None:
    async with Rig() as rig:
        x, x_sock = await rig.connect("x")
        stays, stays_sock = await rig.connect("stays")
        await rig.hub.subscribe(x, ROOM, None)
        await rig.hub.subscribe(stays, ROOM, None)
        await until(lambda: [f["type"] for f in x_sock.sent] == ["subscribed"], "x is subscribed: the revoke has work")
        from realtime.events import Revoke, encoder

        rig.store.allowed.discard(("x", CIRCLE))
        rig.hub.on_message(rig.hub.topics.account("x"), encoder.encode(Revoke(account_id="x", circle_id=CIRCLE)))
        rig.echo(rig.store.append("right after the removal"))  # arrives before the revoke's task has run
        await until(lambda: stays_sock.seqs() == [1], "the member who stays gets the event (the control)")
        assert x_sock.seqs() == []


async def test_replays_after_an_edit_come_from_the_log() -> None:
    async with Rig() as rig:
        x, _ = await rig.connect("x")
        await rig.hub.subscribe(x, ROOM, None)
        rig.echo(rig.store.append("my boss is Jane Roe"))
        rig.echo(rig.store.append("p1 edited", name="post.updated"))
        rig.store.rewrite(1, "my boss is J.")  # the log's copy no longer says it
        y, y_sock = await rig.connect("y")
        await rig.hub.subscribe(y, ROOM, 0)
        await until(lambda: len(y_sock.seqs()) == 2, "the replay reaches y")
        bodies = [f["data"]["body"] for f in y_sock.sent if f["type"] == "event"]
        assert bodies == ["my boss is J.", "p1 edited"]


def test_presence_frames_of_two_rooms_go_out_at_independent_times() -> None:
    """The presence side channel (issue 12): with jitter, each room's change waits its own random delay, so one
    socket's two aliases in two circles do not appear or vanish in the same tick. Without it (jitter 0, as in the
    tests), the delay is the plain coalescing interval, the same for both rooms: the control."""
    import random

    limits = SocketLimits(
        frames_per_second=100, send_queue_frames=10, max_frame_bytes=65536, replay_cap=10, sockets_per_account=1
    )

    def hub(jitter: float) -> Hub:
        return Hub(
            store=LogStore(),
            presence=MemoryPresence(),
            topics=Topics("t"),
            limits=limits,
            renderer=None,  # type: ignore[arg-type]
            presence_jitter=jitter,
            rng=random.Random(12),
        )

    plain = hub(0.0)
    assert plain.broadcaster.delay(3) == plain.broadcaster.delay(3), "no jitter: both rooms wait the same"
    jittered = hub(2.0)
    delays = [jittered.broadcaster.delay(3) for _ in range(200)]
    base = plain.broadcaster.delay(3)
    assert all(base <= d <= base + 2.0 for d in delays)
    # Two rooms' frames for the same socket's join: drawn apart, and spread over the whole window.
    gaps = [abs(a - b) for a, b in zip(delays[::2], delays[1::2], strict=True)]
    assert sum(g > 0.1 for g in gaps) > 80, "most pairs are further apart than a tenth of a second"
    assert max(delays) - min(delays) > 1.5
