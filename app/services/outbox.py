"""Room events written inside a service's transaction, published only after it commits.

Piccolo has no on-commit hook, so the pattern is explicit:

    outbox = Outbox()
    async with write_transaction():
        seq = await outbox.next_seq(room_id)
        ... write the change ...
        await outbox.append(room_id, seq, "post.created", data, post_id=...)
    await outbox.publish(live)      # after the block: only committed events go out
"""

from __future__ import annotations

import uuid

import msgspec

from app.live import Delivery, Live
from db import queries
from realtime.events import encoder


class Outbox:
    __slots__ = ("_deliveries", "_events", "_rewritten")

    def __init__(self) -> None:
        self._events: list[tuple[uuid.UUID, int, str, bytes]] = []
        self._deliveries: list[Delivery] = []
        self._rewritten: set[uuid.UUID] = set()

    async def next_seq(self, room_id: uuid.UUID) -> int:
        return await queries.allocate_seq(room_id)

    async def append(
        self, room_id: uuid.UUID, seq: int, name: str, data: msgspec.Struct, *, post_id: uuid.UUID | None = None
    ) -> bytes:
        data_json = encoder.encode(data)
        await queries.append_event(room_id, seq, name, data_json, post_id)
        self._events.append((room_id, seq, name, data_json))
        return data_json

    def record(self, room_id: uuid.UUID, seq: int, name: str, data_json: bytes) -> None:
        """An event already written to the log by the caller's own statement; it goes out with the others."""
        self._events.append((room_id, seq, name, data_json))

    async def event(
        self, room_id: uuid.UUID, name: str, data: msgspec.Struct, *, post_id: uuid.UUID | None = None
    ) -> int:
        """Allocate a seq and append in one step, for events whose data does not carry its own seq."""
        seq = await self.next_seq(room_id)
        await self.append(room_id, seq, name, data, post_id=post_id)
        return seq

    def deliver(self, delivery: Delivery) -> None:
        self._deliveries.append(delivery)

    def rewrote(self, room_id: uuid.UUID) -> None:
        """Stored events of this room were rewritten in the transaction: after commit every instance drops its
        cached copies, so a replay reads the log instead of resending what was taken away."""
        self._rewritten.add(room_id)

    async def publish(self, live: Live) -> None:
        if self._rewritten:
            await live.log_rewritten(sorted(self._rewritten, key=str))
            self._rewritten.clear()
        for room_id, seq, name, data_json in self._events:
            await live.room_event(room_id, seq, name, data_json)
        if self._deliveries:
            live.deliver(self._deliveries)
        self._events.clear()
        self._deliveries = []
