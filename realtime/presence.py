"""Who is in a room now, across instances. Ephemeral: never in the room log, never replayed.

Each open socket subscribed to a room is one entry, keyed by a per-socket id, so a member with two tabs on two
instances stays present until both are gone. Entries carry the alias and role they were made with: presence needs
no database read. In Redis an entry is a member of a sorted set scored by its expiry; instances refresh their own
entries on a heartbeat, so an instance that dies without cleaning up fades out within `PRESENCE_TTL` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, Protocol

import msgspec

from realtime.events import Membership
from realtime.topics import Topics

log = logging.getLogger("kindred.presence")

# Seconds an entry lives without a heartbeat; a closed tab leaves at once, a crashed instance's sockets after this.
PRESENCE_TTL = 30.0
# Seconds between heartbeats; a third of the TTL so two missed beats are tolerated.
HEARTBEAT_INTERVAL = 10.0

# Presence commands in flight per instance (joins, leaves, reads, heartbeats): presence gets at most this share of
# the Redis client's pool (redis-py's default is 100 connections), so a connect storm over thousands of rooms queues
# here instead of failing with "Too many connections" and starving the rate limiter (docs/scaling.md, S8).
PRESENCE_COMMANDS = 32

_entry_encoder = msgspec.json.Encoder()
# An entry is (socket key, who): the key makes two tabs of one member two entries.
_entry_decoder = msgspec.json.Decoder(tuple[str, Membership])


def unique_members(entries: Iterable[Membership]) -> list[Membership]:
    """One entry per membership (two tabs are one presence), coach first, then by alias."""
    seen: dict[str, Membership] = {}
    for m in entries:
        seen.setdefault(m.membership_id, m)
    return sorted(seen.values(), key=lambda m: (m.role != "coach", m.alias.casefold()))


class PresenceStore(Protocol):
    async def join(self, room_id: str, socket_key: str, who: Membership) -> None: ...

    async def leave(self, room_id: str, socket_key: str, who: Membership) -> None: ...

    async def members(self, room_id: str) -> list[Membership]: ...

    async def heartbeat(self, entries: dict[str, dict[str, Membership]]) -> list[str]:
        """Refresh this instance's entries (room -> socket key -> who); return rooms where expired entries were swept."""
        ...


class MemoryPresence:
    def __init__(self) -> None:
        self._rooms: dict[str, dict[str, Membership]] = {}

    async def join(self, room_id: str, socket_key: str, who: Membership) -> None:
        self._rooms.setdefault(room_id, {})[socket_key] = who

    async def leave(self, room_id: str, socket_key: str, who: Membership) -> None:
        room = self._rooms.get(room_id)
        if room is not None:
            room.pop(socket_key, None)
            if not room:
                del self._rooms[room_id]

    async def members(self, room_id: str) -> list[Membership]:
        return unique_members(self._rooms.get(room_id, {}).values())

    async def heartbeat(self, entries: dict[str, dict[str, Membership]]) -> list[str]:
        return []


class RedisPresence:
    def __init__(self, redis: object, topics: Topics, *, in_flight: int = PRESENCE_COMMANDS) -> None:
        from redis.asyncio import Redis
        from redis.asyncio.cluster import RedisCluster

        # A single Redis or a Redis Cluster: every command names one key, and pipelines are not transactions, so
        # the cluster client routes each command to its key's node.
        assert isinstance(redis, Redis | RedisCluster)
        self._redis: Redis | RedisCluster = redis
        self._topics = topics
        self._slots = asyncio.Semaphore(in_flight)

    @staticmethod
    def _member(socket_key: str, who: Membership) -> bytes:
        return _entry_encoder.encode((socket_key, who))

    async def join(self, room_id: str, socket_key: str, who: Membership) -> None:
        key = self._topics.presence_key(room_id)
        async with self._slots, self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {self._member(socket_key, who): time.time() + PRESENCE_TTL})
            pipe.expire(key, int(PRESENCE_TTL * 2))
            await pipe.execute()

    async def leave(self, room_id: str, socket_key: str, who: Membership) -> None:
        async with self._slots:
            await self._redis.zrem(self._topics.presence_key(room_id), self._member(socket_key, who))

    async def members(self, room_id: str) -> list[Membership]:
        async with self._slots:
            raw = await self._redis.zrangebyscore(self._topics.presence_key(room_id), time.time(), "+inf")
        return unique_members(_entry_decoder.decode(item)[1] for item in raw if isinstance(item, (bytes, str)))

    async def heartbeat(self, entries: dict[str, dict[str, Membership]]) -> list[str]:
        now = time.time()
        rooms = list(entries)
        async with self._slots, self._redis.pipeline(transaction=False) as pipe:
            for room_id in rooms:
                key = self._topics.presence_key(room_id)
                pipe.zremrangebyscore(key, "-inf", now)
                if entries[room_id]:
                    pipe.zadd(key, {self._member(k, who): now + PRESENCE_TTL for k, who in entries[room_id].items()})
                    pipe.expire(key, int(PRESENCE_TTL * 2))
            results = await pipe.execute()
        swept: list[str] = []
        i = 0
        for room_id in rooms:
            if results[i]:
                swept.append(room_id)
            i += 3 if entries[room_id] else 1
        return swept


# Most memberships a presence frame lists. Above it the frame lists the first this many and counts the rest: a full
# list would make each broadcast O(members) bytes to each of O(members) sockets (docs/scaling.md, point 4).
PRESENCE_LIST_MAX = 200

# Presence broadcasts per room are coalesced: at most one per this many seconds, more for big rooms (below).
PRESENCE_MIN_INTERVAL = 0.25
PRESENCE_PER_MEMBER = 0.0025
# Broadcasts in flight per instance. Each reads the room's set and publishes one frame; when thousands of rooms change
# at once (a connect storm, the bus coming back) the rest wait their turn, and changes meanwhile coalesce into the
# frame they will send.
PRESENCE_BROADCASTS = 8


class PresenceBroadcaster:
    """When a room's presence changed, one frame goes out after a delay: the changes meanwhile coalesce into it.

    The delay is a coalescing interval that grows with the room, plus a random delay drawn for this room and this
    change alone. Without the random part, one socket subscribed in two circles would show its two aliases joining
    and leaving in the same tick, which links them; with it, the two rooms' frames go out at independent times
    (docs/security.md says how far that goes)."""

    def __init__(
        self,
        broadcast: Callable[[str], Awaitable[None]],
        spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]],
        *,
        jitter: float = 0.0,
        rng: random.Random | None = None,
        in_flight: int = PRESENCE_BROADCASTS,
    ) -> None:
        self._broadcast = broadcast
        self._spawn = spawn
        self.jitter = jitter
        self._rng = rng or random.SystemRandom()
        self._due: set[str] = set()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(in_flight)
        self.in_flight = 0
        self.peak_in_flight = 0

    def delay(self, sockets: int) -> float:
        jitter = self._rng.uniform(0.0, self.jitter) if self.jitter > 0 else 0.0
        return PRESENCE_MIN_INTERVAL + PRESENCE_PER_MEMBER * sockets + jitter

    def changed(self, room_id: str, sockets: Callable[[], int]) -> None:
        """The room's presence changed; `sockets` says how many follow it when the delay is drawn."""
        self._due.add(room_id)
        if room_id not in self._tasks:
            self._tasks[room_id] = self._spawn(self._run(room_id, sockets))

    def running(self) -> list[asyncio.Task[None]]:
        return list(self._tasks.values())

    async def _run(self, room_id: str, sockets: Callable[[], int]) -> None:
        try:
            while room_id in self._due:
                await asyncio.sleep(self.delay(sockets()))
                async with self._slots:
                    # Taken off the due list only now: what changed while waiting for a slot is in this frame.
                    self._due.discard(room_id)
                    self.in_flight += 1
                    self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                    try:
                        await self._broadcast(room_id)
                    finally:
                        self.in_flight -= 1
        except Exception:
            log.warning("presence broadcast for room %s failed", room_id, exc_info=True)
        finally:
            self._due.discard(room_id)
            self._tasks.pop(room_id, None)
