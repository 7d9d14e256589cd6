"""Delivers notifications after commit, off the request path: frames to the account's open sockets, Web Push to its
subscribed browsers. Owned by the application lifespan.

Frames and pushes travel separately. One worker takes each committed write's batch from a bounded queue and sends
its frames at once; the batch's pushes then go out in a task of their own, so a push service that is slow (or hangs
until the 15-second timeout) delays only its own pushes, never anyone's live frames. Push tasks are bounded in
number, and requests in flight by the sender's semaphore, so a stalled push service cannot grow memory without
limit: past the bound, pushes are dropped with an error in the log (the notifications are still in the feed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import msgspec

from app.live import Delivery, Live
from app.push import PushSender
from db.queries import chunks, now
from db.tables import PushSubscription
from realtime.events import encoder

log = logging.getLogger("kindred.notifier")

# Batches (one per committed write) waiting for their frames. Past this the server is far behind; new batches are
# dropped with an error in the log (they are still in everyone's feed), rather than growing memory without bound.
QUEUE_BATCHES = 10_000
# Batches whose pushes are in flight at once. Each holds one write's recipients; the sender's semaphore lets only a
# few dozen requests out at a time, so this is how much waiting work a slow push service can make us hold.
PUSH_BATCHES = 256
# Seconds given to deliver what is queued (frames, then pushes) when the application stops.
DRAIN_SECONDS = 2.0


class PushPayload(msgspec.Struct):
    """What a push carries: enough to show a notification, nothing that identifies anyone."""

    title: str
    body: str
    # Where a click leads: the feed entry's open link (which also marks it read) when the notification is in the
    # feed, else straight to its target: a push-only notification has no feed entry to open.
    url: str
    tag: str
    kind: str
    # Extension: the thread at the post (or the room, or the circle) the notification is about.
    target: str = "/notifications"


class Notifier:
    def __init__(self, live: Live, sender: PushSender | None) -> None:
        self._live = live
        self._sender = sender
        self._queue: asyncio.Queue[list[Delivery]] = asyncio.Queue(QUEUE_BATCHES)
        self._task: asyncio.Task[None] | None = None
        # Every push task, so stop() can wait for them and then end them (each task has an owner).
        self._pushing: set[asyncio.Task[None]] = set()
        self.pushed = 0
        self.dropped_pushes = 0
        # Batches submitted and not yet through their frames (their pushes are then in `_pushing`).
        self._pending = 0

    def submit(self, deliveries: list[Delivery]) -> None:
        try:
            self._queue.put_nowait(deliveries)
        except asyncio.QueueFull:
            log.error("notification queue full; %d notification(s) stay in the feed only", len(deliveries))
        else:
            self._pending += 1

    def idle(self) -> bool:
        """Nothing queued, nothing being delivered, no push in flight: every notification submitted so far has had
        its frames and pushes (the tests wait on this state instead of on time)."""
        return self._pending == 0 and not self._pushing

    async def start(self) -> None:
        if self._sender is not None:
            await self._sender.start()
        self._task = asyncio.create_task(self._run(), name="kindred-notifier")

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_SECONDS
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), DRAIN_SECONDS)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pushing:
            await asyncio.wait(set(self._pushing), timeout=max(deadline - loop.time(), 0.1))
            for task in list(self._pushing):
                task.cancel()
            await asyncio.gather(*self._pushing, return_exceptions=True)
        if self._sender is not None:
            await self._sender.stop()

    async def _run(self) -> None:
        while True:
            batch = await self._queue.get()
            try:
                await self._frames(batch)
                self._push_soon(batch)
            except Exception:
                log.exception("delivering %d notification(s) failed", len(batch))
            finally:
                self._pending -= 1
                self._queue.task_done()

    async def _frames(self, batch: list[Delivery]) -> None:
        for delivery in batch:
            if delivery.frame:
                await self._live.notification_frame(delivery)

    def _push_soon(self, batch: list[Delivery]) -> None:
        pushes = [d for d in batch if d.push]
        if not pushes or self._sender is None:
            return
        if len(self._pushing) >= PUSH_BATCHES:
            # Named overflow policy: drop, loudly. The push services are far behind; the feed still has these.
            self.dropped_pushes += len(pushes)
            log.error("%d push batches in flight; %d push(es) dropped", len(self._pushing), len(pushes))
            return
        task = asyncio.create_task(self._push(pushes), name="kindred-push")
        self._pushing.add(task)
        task.add_done_callback(self._pushing.discard)

    async def _push(self, pushes: list[Delivery]) -> None:
        sender = self._sender
        assert sender is not None
        try:
            by_account = await _subscriptions([d.account_id for d in pushes])
            sends = []
            for delivery in pushes:
                subscriptions = by_account.get(delivery.account_id)
                if subscriptions:
                    sends.append(sender.send_all(subscriptions, encoder.encode(payload(delivery))))
                    self.pushed += len(subscriptions)
            results = await asyncio.gather(*sends)
            expired = [sub_id for gone in results for sub_id in gone]
            for part in chunks(expired):
                await PushSubscription.delete().where(PushSubscription.id.is_in(part))
            if expired:
                log.info("removed %d expired push subscription(s)", len(expired))
        except Exception:
            log.exception("pushing %d notification(s) failed", len(pushes))


async def _subscriptions(account_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """The browsers of these accounts whose sign-in is still valid: one query per thousand accounts."""
    by_account: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for part in chunks(list(set(account_ids))):
        rows = await PushSubscription.select(
            PushSubscription.id,
            PushSubscription.account,
            PushSubscription.endpoint,
            PushSubscription.p256dh,
            PushSubscription.auth,
        ).where(PushSubscription.account.is_in(part) & (PushSubscription.token.expires_at > now()))
        for row in rows:
            by_account.setdefault(row["account"], []).append(row)
    return by_account


def payload(delivery: Delivery) -> PushPayload:
    note = delivery.notification
    return PushPayload(
        title=delivery.title,
        body=note.text,
        url=f"/notifications/{note.id}/open" if delivery.in_feed else delivery.target,
        tag=note.id,
        kind=note.kind,
        target=delivery.target,
    )
