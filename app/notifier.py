"""Delivers notifications after commit, off the request path: frames to the account's open sockets, Web Push to its
subscribed browsers. One worker with a bounded queue, owned by the application lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import msgspec

from app.live import Delivery, Live
from app.push import PushSender
from db.tables import PushSubscription
from realtime.events import encoder

log = logging.getLogger("kindred.notifier")

# Batches (one per committed write) waiting for delivery. Past this the server is far behind; new batches are
# dropped with an error in the log (they are still in everyone's feed), rather than growing memory without bound.
QUEUE_BATCHES = 10_000
# Seconds given to deliver what is queued when the application stops.
DRAIN_SECONDS = 2.0


class PushPayload(msgspec.Struct):
    """What a push carries: enough to show a notification, nothing that identifies anyone."""

    title: str
    body: str
    url: str
    tag: str
    kind: str


class Notifier:
    def __init__(self, live: Live, sender: PushSender | None) -> None:
        self._live = live
        self._sender = sender
        self._queue: asyncio.Queue[list[Delivery]] = asyncio.Queue(QUEUE_BATCHES)
        self._task: asyncio.Task[None] | None = None
        self.pushed = 0

    def submit(self, deliveries: list[Delivery]) -> None:
        try:
            self._queue.put_nowait(deliveries)
        except asyncio.QueueFull:
            log.error("notification queue full; %d notification(s) stay in the feed only", len(deliveries))

    async def start(self) -> None:
        if self._sender is not None:
            await self._sender.start()
        self._task = asyncio.create_task(self._run(), name="kindred-notifier")

    async def stop(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), DRAIN_SECONDS)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sender is not None:
            await self._sender.stop()

    async def _run(self) -> None:
        while True:
            batch = await self._queue.get()
            try:
                await self._deliver(batch)
            except Exception:
                log.exception("delivering %d notification(s) failed", len(batch))
            finally:
                self._queue.task_done()

    async def _deliver(self, batch: list[Delivery]) -> None:
        for delivery in batch:
            if delivery.frame:
                await self._live.notification_frame(delivery.account_id, delivery.notification, delivery.alert)
        pushes = [d for d in batch if d.push]
        if not pushes or self._sender is None:
            return
        # One query for every recipient's browsers, however many recipients.
        rows = await PushSubscription.select().where(
            PushSubscription.account.is_in(list({d.account_id for d in pushes}))
        )
        by_account: dict[uuid.UUID, list[dict[str, Any]]] = {}
        for row in rows:
            by_account.setdefault(row["account"], []).append(row)
        sends = []
        for delivery in pushes:
            subscriptions = by_account.get(delivery.account_id)
            if subscriptions:
                note = delivery.notification
                payload = encoder.encode(
                    PushPayload(
                        title=delivery.title,
                        body=note.text,
                        url=f"/notifications/{note.id}/open",
                        tag=note.id,
                        kind=note.kind,
                    )
                )
                sends.append(self._sender.send_all(subscriptions, payload))
        results = await asyncio.gather(*sends)
        self.pushed += sum(len(by_account.get(d.account_id, [])) for d in pushes)
        expired = [sub_id for gone in results for sub_id in gone]
        if expired:
            await PushSubscription.delete().where(PushSubscription.id.is_in(expired))
            log.info("removed %d expired push subscription(s)", len(expired))
