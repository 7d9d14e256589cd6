"""The application's side of realtime: publishing after commit, and the database callbacks the hub needs."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import msgspec

from app.auth.cache import AuthCaches
from realtime.events import (
    AliasChanged,
    CacheDrop,
    LogRewritten,
    Membership,
    Notification,
    NotificationFrame,
    NotificationsRead,
    Revoke,
    SignedOut,
    encoder,
)
from realtime.hub import Hub
from realtime.topics import Topics
from realtime.types import Entry

log = logging.getLogger("kindred.live")

# Cache invalidations kept while the bus is away, at most; past that, one "forget everything" stands for them all.
UNSENT_MAX = 1000


class Delivery(msgspec.Struct, kw_only=True):
    """One notification on its way to one account, with the channels its preferences allow."""

    account_id: uuid.UUID
    notification: Notification
    frame: bool  # to the account's open sockets
    alert: bool  # ... and their page should show a browser notification
    push: bool  # Web Push to the account's subscribed browsers
    in_feed: bool  # it has a row in their feed (in-app is on for it); else it is only a browser notification or push
    target: str  # where opening it leads (app.services.notifications.target_url)
    title: str


class Live:
    """What services call after their transaction has committed. Never raises: the write is already safe."""

    def __init__(self, hub: Hub, topics: Topics, caches: AuthCaches | None = None) -> None:
        self.hub = hub
        self.topics = topics
        # Sign-ins and room access remembered by this instance; every change to them below drops them here first
        # (before the request that made it answers), then on every other instance through the bus.
        self.caches = caches if caches is not None else AuthCaches(enabled=False)
        # Invalidations this instance could not publish (its bus was away): sent again when the bus is back.
        self._unsent: list[bytes] = []
        hub.cache_dropped = self._heard
        hub.bus_returned = self._bus_returned
        # Set by the application when notifications are delivered in the background (see app.notifier).
        self.deliver_later: Callable[[list[Delivery]], None] | None = None
        # Set by the application to wake this instance's mail sender (app.mail.Mailer.wake).
        self.mail_written: Callable[[], None] | None = None

    def mail_queued(self) -> None:
        """Mail was committed: send it now rather than at the sender's next look."""
        if self.mail_written is not None:
            self.mail_written()

    def deliver(self, deliveries: list[Delivery]) -> None:
        """Hand notifications to the background deliverer; never waits for sockets or push services."""
        if self.deliver_later is not None:
            self.deliver_later(deliveries)
        else:
            log.error("no notification deliverer configured; %d notification(s) stay in the feed only", len(deliveries))

    async def room_event(self, room_id: str, entry: Entry) -> None:
        """A committed room event: to this instance's feed at once, and to the others through the bus."""
        try:
            await self.hub.publish_event(room_id, entry)
        except Exception:
            log.exception(
                "publishing %s #%d of room %s failed; sockets will catch up from the log",
                entry.name,
                entry.seq,
                room_id,
            )

    async def notification_frame(self, delivery: Delivery) -> None:
        note = delivery.notification
        frame = NotificationFrame(
            data=note,
            alert=delivery.alert,
            in_feed=delivery.in_feed,
            url=f"/notifications/{note.id}/open" if delivery.in_feed else delivery.target,
        )
        await self._account(delivery.account_id, encoder.encode(frame))

    async def notifications_read(self, account_id: uuid.UUID, unread: int) -> None:
        await self._account(account_id, encoder.encode(NotificationsRead(unread=unread)))

    async def revoke(self, account_id: uuid.UUID, circle_id: uuid.UUID) -> None:
        await self.access_changed(circle_id, account_id)
        await self._account(account_id, encoder.encode(Revoke(account_id=str(account_id), circle_id=str(circle_id))))

    async def signed_out(self, account_id: uuid.UUID, token_id: uuid.UUID | None) -> None:
        await self.tokens_ended(account_id, token_id)
        frame = SignedOut(account_id=str(account_id), token_id=str(token_id) if token_id else None)
        await self._account(account_id, encoder.encode(frame))

    async def log_rewritten(self, room_ids: list[uuid.UUID]) -> None:
        """After a commit that rewrote stored events: every instance drops its cached copies of those rooms."""
        for room_id in room_ids:
            rid = str(room_id)
            try:
                await self.hub.publish(self.topics.room(rid), encoder.encode(LogRewritten(room_id=rid)))
            except Exception:
                log.exception("publishing the rewrite of room %s failed", rid)

    async def alias_changed(
        self, account_id: uuid.UUID, circle_id: uuid.UUID, who: Membership, room_ids: list[uuid.UUID]
    ) -> None:
        """After an alias change has committed: every instance drops its cached copies of those rooms' events, and
        the account's sockets re-join presence under the new alias."""
        await self.log_rewritten(room_ids)
        await self.access_changed(circle_id, account_id)
        frame = AliasChanged(account_id=str(account_id), circle_id=str(circle_id), who=who)
        await self._account(account_id, encoder.encode(frame))

    async def tokens_ended(self, account_id: uuid.UUID, token_id: uuid.UUID | None) -> None:
        """A sign-in of the account (`token_id`), or all of them, ended: no instance may accept it from memory."""
        self.caches.drop_tokens(account_id, token_id)
        await self._caches(
            CacheDrop(what="tokens", account_id=str(account_id), token_id=str(token_id) if token_id else None)
        )

    async def access_changed(self, circle_id: uuid.UUID | None, account_id: uuid.UUID | None = None) -> None:
        """What someone may do in a circle changed (removed, muted, role, alias, the circle closed or reopened, a
        drop-in's state): of `account_id` only, or of everyone in the circle; `circle_id` None: everywhere."""
        self.caches.drop_access(account_id=account_id, circle_id=circle_id)
        await self._caches(
            CacheDrop(
                what="access",
                account_id=str(account_id) if account_id else None,
                circle_id=str(circle_id) if circle_id else None,
            )
        )

    def _heard(self, message: CacheDrop) -> None:
        account = uuid.UUID(message.account_id) if message.account_id else None
        if message.what == "tokens":
            self.caches.drop_tokens(account, uuid.UUID(message.token_id) if message.token_id else None)
        else:
            circle = uuid.UUID(message.circle_id) if message.circle_id else None
            self.caches.drop_access(account_id=account, circle_id=circle)

    async def _caches(self, message: CacheDrop) -> None:
        """To every other instance. Already applied here; an invalidation the bus could not take is kept and sent
        again once it is back, for the instances that stayed connected meanwhile (the TTL bounds that gap)."""
        payload = encoder.encode(message)
        bus = self.hub.bus
        if bus is None or bus.is_local:
            return  # one process: the caches in it have already dropped it (app/auth/cache.py)
        if not await bus.publish(payload, [self.topics.caches()]):
            if len(self._unsent) >= UNSENT_MAX:
                # So many that the rest are better said at once: everyone forgets everything.
                self._unsent = [encoder.encode(CacheDrop(what="tokens")), encoder.encode(CacheDrop(what="access"))]
            else:
                self._unsent.append(payload)

    def _bus_returned(self) -> None:
        self.caches.flush()
        if self._unsent:
            unsent, self._unsent = self._unsent, []
            self.hub._spawn(self._resend(unsent))

    async def _resend(self, unsent: list[bytes]) -> None:
        bus = self.hub.bus
        for payload in unsent:
            if bus is None or not await bus.publish(payload, [self.topics.caches()]):
                self._unsent.append(payload)

    async def _account(self, account_id: uuid.UUID, payload: bytes) -> None:
        try:
            await self.hub.publish(self.topics.account(str(account_id)), payload)
        except Exception:
            log.exception("publishing to account %s failed", account_id)
