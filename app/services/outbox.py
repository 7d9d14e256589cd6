"""Room events and notifications written inside a service's transaction, published only after it commits.

Piccolo has no on-commit hook, so a write is one unit of work:

    async with unit_of_work(live) as outbox:
        seq = await outbox.next_seq(room_id)
        ... write the change ...
        await outbox.append(PostCreated(room_id=str(room_id), seq=seq, data=post), post_id=post.id)
        await notifications.notify(outbox, "reply", [author], me, About.post(room, row))
    # here the transaction has committed and the events are out: only committed events are ever published

An exception inside the block rolls the transaction back and publishes nothing. The event's data is encoded once:
the same bytes are stored in the room log and wrapped into the wire envelope every socket is sent.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

from app.live import Delivery, Live
from db import queries
from db.engine import write_transaction
from realtime.events import RoomEvent, encode_event, encoder, event_name
from realtime.types import Entry


class Outbox:
    __slots__ = ("_access", "_deliveries", "_events", "_mailed", "_rewritten")

    def __init__(self) -> None:
        self._events: list[tuple[str, Entry]] = []
        self._deliveries: list[Delivery] = []
        self._rewritten: set[uuid.UUID] = set()
        self._mailed = False
        self._access: set[uuid.UUID] = set()

    async def next_seq(self, room_id: uuid.UUID) -> int:
        return await queries.allocate_seq(room_id)

    async def append(self, event: RoomEvent, *, post_id: uuid.UUID | str | None = None) -> bytes:
        """Write the event to its room's log (inside the transaction) and queue it for publishing after commit.
        Returns the encoded data, for callers that store it elsewhere too."""
        name = event_name(event)
        data_json = encoder.encode(event.data)
        pid = uuid.UUID(post_id) if isinstance(post_id, str) else post_id
        await queries.append_event(uuid.UUID(event.room_id), event.seq, name, data_json, pid)
        self.record(uuid.UUID(event.room_id), event.seq, name, data_json)
        return data_json

    def record(self, room_id: uuid.UUID, seq: int, name: str, data_json: bytes) -> None:
        """An event already written to the log by the caller's own statement; it goes out with the others."""
        rid = str(room_id)
        self._events.append((rid, Entry(seq, name, encode_event(rid, seq, name, data_json))))

    def deliver(self, delivery: Delivery) -> None:
        self._deliveries.append(delivery)

    def mailed(self) -> None:
        """A mail was queued in the transaction (app/mail.py): after commit this instance's sender is woken."""
        self._mailed = True

    def rewrote(self, room_id: uuid.UUID) -> None:
        """Stored events of this room were rewritten in the transaction: after commit every instance drops its
        cached copies, so a replay reads the log instead of resending what was taken away."""
        self._rewritten.add(room_id)

    def access_changed(self, circle_id: uuid.UUID) -> None:
        """What members may do in the circle changed in the transaction (a mute, the circle closed, a drop-in's
        state): after commit every instance forgets the access it remembered there (app/auth/cache.py)."""
        self._access.add(circle_id)

    async def publish(self, live: Live) -> None:
        for circle_id in sorted(self._access, key=str):
            await live.access_changed(circle_id)
        self._access.clear()
        if self._rewritten:
            await live.log_rewritten(sorted(self._rewritten, key=str))
            self._rewritten.clear()
        for room_id, entry in self._events:
            await live.room_event(room_id, entry)
        if self._deliveries:
            live.deliver(self._deliveries)
        if self._mailed:
            live.mail_queued()
            self._mailed = False
        self._events.clear()
        self._deliveries = []


@contextlib.asynccontextmanager
async def unit_of_work(live: Live, outbox: Outbox | None = None) -> AsyncIterator[Outbox]:
    """One service write: a write transaction whose events and notifications go out once it has committed.

    Pass `outbox` when some of the work happened before the transaction (an event written by a single statement)."""
    outbox = outbox if outbox is not None else Outbox()
    async with write_transaction():
        yield outbox
    await outbox.publish(live)
