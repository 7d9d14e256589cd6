"""The hub: one per instance, the I/O loop around the room feeds. Topics to sockets, in order, authorised, encoded once.

Data flow: a message arrives from the bus (or from a local publish) -> its head is decoded once (room, seq, event
name) -> room events go to that room's `Feed` (realtime/feed.py), which decides, without I/O, who gets what: in
order, gap-free, each once, replays and their hand-off to live included -> the hub carries out what it returns: the
frame for each lane (variant) is made once (the JSON frame is the bus payload itself; the HTML frame is rendered at
most once per instance) and every socket of the lane gets the same string appended to its bounded queue.

What the hub does itself is only I/O: reading the log (for a replay, a gap, the tail check), awaiting a socket's
queue, subscribing channels, timers. Presence fan-out is realtime/presence.py's `PresenceBroadcaster`; losing access
is realtime/revocation.py. The hub does not import the database: reading the log, checking membership and finding
last seqs reach it through the `HubStore` callbacks that the application passes in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from realtime.bus import Bus
from realtime.events import (
    AliasChanged,
    CacheDrop,
    ErrorFrame,
    EventHead,
    LogRewritten,
    Membership,
    NotificationFrame,
    NotificationsRead,
    PresenceFrame,
    Resync,
    Revoke,
    SignedOut,
    Subscribed,
    Unsubscribed,
    bus_decoder,
    encoder,
)
from realtime.feed import Action as FeedAction
from realtime.feed import Deliver, Feed, Finish, Phase, ReadLog, SendReplay, Subscription, TooSlow
from realtime.presence import HEARTBEAT_INTERVAL, PRESENCE_LIST_MAX, PresenceBroadcaster, PresenceStore
from realtime.revocation import Revocations
from realtime.topics import Topics
from realtime.types import CLOSE_GOING_AWAY, CLOSE_POLICY, CLOSE_TRY_AGAIN, Access, Entry, Socket, SocketLimits

log = logging.getLogger("kindred.hub")

# Seconds to wait for a missing seq to arrive on the bus before reading it from the log: publishers on different
# instances race to Redis, so a short reorder is normal and not worth a query.
GAP_GRACE = 0.05
# Seconds a stopping hub gives its in-flight tasks to finish before cancelling them.
STOP_GRACE = 2.0
# Seconds between sweeps: tail check (an event whose publish was lost), idle feeds, presence heartbeat.
SWEEP_INTERVAL = 2.0
# Seconds between re-checks of every live subscription against the database (a backstop for a lost revoke).
REVALIDATE_INTERVAL = 30.0
# Seconds a room with no local sockets keeps its channel subscription, so a page reload doesn't churn Redis.
IDLE_FEED_SECONDS = 30.0
# HTML renderings kept per instance (keyed by the event's envelope), so replays to page sockets reuse the render the
# live delivery made instead of rendering once per socket.
HTML_CACHE = 1024
# Events read from the log per query by the tail check.
CATCH_UP_PAGE = 500


class HubStore(Protocol):
    async def authorize(self, account_id: str, room_id: str) -> Access | None:
        """The account's access to the room, or None if it is not a current member of the room's circle."""
        ...

    async def read_events(self, room_id: str, after: int, limit: int) -> tuple[list[Entry], int]:
        """Up to `limit` events with seq > after, in order, and the room's current last seq."""
        ...

    async def last_seqs(self, room_ids: list[str]) -> dict[str, int]: ...

    async def still_allowed(self, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
        """Of (account_id, circle_id) pairs, those whose account is still a current member of the circle."""
        ...

    async def hands(self, room_id: str) -> list[Membership]:
        """The raised hands, in order, when the room is a live drop-in's; empty otherwise."""
        ...


class Renderer(Protocol):
    def html_frame(self, envelope: bytes) -> str | None:
        """The HTML variant of an event frame, or None when the event has none (the JSON frame is sent instead)."""
        ...


@dataclass(eq=False, slots=True)
class Room:
    """One room this instance follows: its feed (the decisions) and the I/O state around it."""

    feed: Feed[Socket]
    circle_id: str
    dropin: bool
    gap_task: asyncio.Task[None] | None = None
    idle_since: float | None = None


class Hub:
    def __init__(
        self,
        *,
        store: HubStore,
        presence: PresenceStore,
        topics: Topics,
        limits: SocketLimits,
        renderer: Renderer,
        presence_jitter: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.presence = presence
        self.topics = topics
        self.limits = limits
        self.renderer = renderer
        self.bus: Bus | None = None
        self.rooms: dict[str, Room] = {}
        self.accounts: dict[str, set[Socket]] = {}
        self.broadcaster = PresenceBroadcaster(self.refresh_presence, self._spawn, jitter=presence_jitter, rng=rng)
        self.revocations = Revocations(self)
        self._open_locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._last_revalidate = time.monotonic()
        self._last_heartbeat = time.monotonic()
        self._html_cache: dict[bytes, str | None] = {}
        # Set by the application (app/auth/cache.py): a cache invalidation heard on the bus, and the bus coming back.
        self.cache_dropped: Callable[[CacheDrop], None] | None = None
        self.bus_returned: Callable[[], None] | None = None
        # Counters for /healthz: deliveries, gap reads, events recovered by the tail check (should stay near zero while
        # the bus is healthy), sockets cut off for being slow, HTML renders, and live frames made (one per variant in
        # use per event, however many sockets get it: what "encoded once" means, counted).
        self.stats = {"delivered": 0, "gap_fills": 0, "caught_up": 0, "slow_closed": 0, "rendered": 0, "frames": 0}
        # Counters of the periodic jobs the app runs beside the hub (app.main): looks for due experiments, and how
        # many reminders they sent.
        self.stats.update(due_checks=0, due_sent=0)

    # --- lifecycle (owned by the application lifespan) -----------------------------------------------------------------

    async def start(self, bus: Bus) -> None:
        self.bus = bus
        await bus.subscribe([self.topics.caches()])
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="kindred-hub-sweeper")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for conns in list(self.accounts.values()):
            for conn in list(conns):
                conn.close_soon(CLOSE_GOING_AWAY, "server restarting; reconnect with since")
        # Let what is in flight (a presence broadcast, a gap fill: each a query or two) finish before cancelling the
        # rest: a query cancelled mid-way keeps running in the SQLite driver's thread, which then calls back into an
        # event loop that may be closed by then.
        running = set(self._tasks)
        if running:
            _done, pending = await asyncio.wait(running, timeout=STOP_GRACE)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- sockets ---------------------------------------------------------------------------------------------------

    def socket_count(self, account_id: str) -> int:
        return len(self.accounts.get(account_id, ()))

    async def attach(self, conn: Socket) -> None:
        """Register a socket before its handshake completes, so no notification created after that is missed."""
        conns = self.accounts.get(conn.account_id)
        if conns is None:
            conns = self.accounts[conn.account_id] = set()
            assert self.bus is not None
            await self.bus.subscribe([self.topics.account(conn.account_id)])
        conns.add(conn)

    async def detach(self, conn: Socket) -> None:
        for room_id in list(conn.rooms):
            await self.unsubscribe(conn, room_id, quiet=True)
        conns = self.accounts.get(conn.account_id)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.accounts[conn.account_id]
                if self.bus is not None:
                    with contextlib.suppress(Exception):
                        await self.bus.unsubscribe([self.topics.account(conn.account_id)])

    async def subscribe(self, conn: Socket, room_id: str, since: int | None) -> None:
        if room_id in conn.rooms:
            await self.unsubscribe(conn, room_id, quiet=True)
        try:
            access = await self.store.authorize(conn.account_id, room_id)
        except Exception:
            log.exception("authorize failed")
            conn.reply(ErrorFrame(code="unavailable", detail="could not check access; try again", room_id=room_id))
            return
        if access is None:
            conn.reply(ErrorFrame(code="forbidden", detail="not a member of this room's circle", room_id=room_id))
            return
        if conn.closing:
            return
        try:
            room = await self._open(room_id, access)
        except Exception:
            log.exception("opening room %s failed", room_id)
            conn.reply(ErrorFrame(code="unavailable", detail="could not open the room; try again", room_id=room_id))
            return
        conn.rooms[room_id] = access
        room.idle_since = None
        feed = room.feed
        sub = feed.subscribe(conn, conn.variant, since)
        if sub.phase is Phase.LIVE:
            conn.reply(Subscribed(room_id=room_id, last_seq=feed.last))
        else:
            try:
                finish = await self._replay(conn, room, sub)
            except Exception:
                log.exception("replay failed")
                if feed.get(conn) is sub:
                    feed.unsubscribe(conn)
                    conn.rooms.pop(room_id, None)
                conn.reply(
                    ErrorFrame(code="unavailable", detail="could not read the room log; try again", room_id=room_id)
                )
                return
            if finish is None:  # unsubscribed, revoked or closed while the replay streamed
                return
            frame = Resync if finish.resync else Subscribed
            conn.reply(frame(room_id=room_id, last_seq=finish.last_seq))
            for entry in finish.held:
                conn.push_reply(self._frame(conn, entry))
        # Read again: an alias change may have replaced the access while the replay was read.
        current = conn.rooms.get(room_id)
        if current is None:
            return
        try:
            await self.presence.join(room_id, conn.key, current.who)
        except Exception:
            log.warning("presence join failed for room %s", room_id, exc_info=True)
        self._presence_changed(room_id)

    async def _replay(self, conn: Socket, room: Room, sub: Subscription[Socket]) -> Finish | None:
        """Carry out a subscription's replay as its feed asks: one event at a time as the socket's queue drains, the
        log a page at a time. A replay is never built whole, and a client that asks for many and reads none holds a
        quarter of its send bound at most (live events meanwhile are held by the feed, bounded too)."""
        feed = room.feed
        while True:
            if not await conn.drained():
                if feed.get(conn) is sub:
                    feed.unsubscribe(conn)
                return None
            step = feed.replay_step(sub)
            if step is None:
                return None
            if isinstance(step, SendReplay):
                conn.push_reply(self._frame(conn, step.entry))
            elif isinstance(step, ReadLog):
                entries, room_last = await self.store.read_events(feed.room_id, step.after, step.limit)
                self._apply(room, feed.log_read(sub, entries, room_last))
            else:
                return step

    async def unsubscribe(self, conn: Socket, room_id: str, *, quiet: bool = False) -> None:
        access = conn.rooms.pop(room_id, None)
        room = self.rooms.get(room_id)
        if room is not None:
            room.feed.unsubscribe(conn)
            if not room.feed.sockets:
                room.idle_since = time.monotonic()
        if access is not None:
            try:
                await self.presence.leave(room_id, conn.key, access.who)
            except Exception:
                log.warning("presence leave failed for room %s", room_id, exc_info=True)
            if room is not None:
                self._presence_changed(room_id)
        if not quiet:
            conn.reply(Unsubscribed(room_id=room_id))

    def cut_off(self, conn: Socket, room_id: str) -> None:
        room = self.rooms.get(room_id)
        if room is not None:
            room.feed.unsubscribe(conn)

    async def still_allowed(self, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
        return await self.store.still_allowed(pairs)

    async def rejoin_presence(self, conn: Socket, room_id: str, old: Membership, new: Membership) -> None:
        try:
            await self.presence.leave(room_id, conn.key, old)
            await self.presence.join(room_id, conn.key, new)
        except Exception:
            log.warning("presence update after an alias change failed for room %s", room_id, exc_info=True)
        if room_id in self.rooms:
            self._presence_changed(room_id)

    # --- frames ----------------------------------------------------------------------------------------------------

    def _frame(self, conn: Socket, entry: Entry) -> str:
        return self._lane_frame(conn.variant, entry)

    def _lane_frame(self, lane: str, entry: Entry) -> str:
        if lane == "html":
            html = self._html(entry.envelope)
            if html is not None:
                return html
        return entry.envelope.decode()

    def _html(self, envelope: bytes) -> str | None:
        """The event's HTML frame, rendered once per instance however many sockets (live or replaying) need it."""
        if envelope in self._html_cache:
            return self._html_cache[envelope]
        html = self.renderer.html_frame(envelope)
        self.stats["rendered"] += 1
        if len(self._html_cache) >= HTML_CACHE:
            del self._html_cache[next(iter(self._html_cache))]
        self._html_cache[envelope] = html
        return html

    # --- rooms ---------------------------------------------------------------------------------------------------

    async def _open(self, room_id: str, access: Access) -> Room:
        room = self.rooms.get(room_id)
        if room is not None and room.feed.is_open:
            return room
        lock = self._open_locks.setdefault(room_id, asyncio.Lock())
        async with lock:
            room = self.rooms.get(room_id)
            if room is not None and room.feed.is_open:
                return room
            if room is None:
                # Registered before the channel subscription so no event arriving meanwhile is dropped.
                feed: Feed[Socket] = Feed(
                    room_id, replay_cap=self.limits.replay_cap, hold_limit=self.limits.send_queue_frames
                )
                room = self.rooms[room_id] = Room(feed, access.circle_id, access.dropin)
            assert self.bus is not None
            await self.bus.subscribe([self.topics.room(room_id)])
            try:
                baseline = (await self.store.last_seqs([room_id])).get(room_id, 0)
            except Exception:
                if not room.feed.sockets:  # nobody else is waiting on it: forget the half-made room
                    self.rooms.pop(room_id, None)
                    await self.bus.unsubscribe([self.topics.room(room_id)])
                raise
            self._apply(room, room.feed.open(baseline))
        self._open_locks.pop(room_id, None)
        return room

    def _offer(self, room: Room, entry: Entry) -> None:
        self._apply(room, room.feed.offer(entry))

    def _apply(self, room: Room, actions: list[FeedAction[Socket]]) -> None:
        """Carry out what the feed decided: deliveries, and sockets to close for being too slow."""
        for action in actions:
            if isinstance(action, Deliver):
                self._deliver(action)
            elif isinstance(action, TooSlow):
                # A replay that cannot stream because the client does not read: live events would pile up.
                self.stats["slow_closed"] += 1
                action.key.close_soon(CLOSE_TRY_AGAIN, "too slow to keep up; reconnect with since")
        if room.gap_task is None and room.feed.gap() is not None:
            room.gap_task = self._spawn(self._fill_gap(room))

    def _deliver(self, delivery: Deliver[Socket]) -> None:
        entry = delivery.entry
        stats = self.stats
        for lane, conns in delivery.lanes.items():
            frame = self._lane_frame(lane, entry)
            stats["frames"] += 1
            for conn in conns:
                conn.push(frame)
            stats["delivered"] += len(conns)
        for conn in delivery.ahead:
            conn.push(self._frame(conn, entry))

    async def _fill_gap(self, room: Room) -> None:
        try:
            await asyncio.sleep(GAP_GRACE)
            while (gap := room.feed.gap()) is not None:
                first, last = gap
                entries, _ = await self.store.read_events(room.feed.room_id, first - 1, last - first + 1)
                self.stats["gap_fills"] += 1
                if not entries:
                    log.error("room %s: seqs %d..%d missing from the log", room.feed.room_id, first, last)
                    return
                for entry in entries:
                    self._offer(room, entry)
        except Exception:
            log.exception("gap fill for room %s failed", room.feed.room_id)
        finally:
            room.gap_task = None

    async def catch_up(self) -> None:
        """Bring every room up to the log's last seq (after a bus outage, or as the periodic tail check)."""
        ready = [room for room in self.rooms.values() if room.feed.is_open]
        if not ready:
            return
        lasts = await self.store.last_seqs([room.feed.room_id for room in ready])
        if any(room.feed.last < lasts.get(room.feed.room_id, 0) for room in ready):
            # Events the bus did not bring may come with revocations it did not bring either: check who may still
            # read before delivering them.
            await self.revocations.revalidate()
        for room in ready:
            target = lasts.get(room.feed.room_id, 0)
            while room.feed.last < target:
                entries, _ = await self.store.read_events(room.feed.room_id, room.feed.last, CATCH_UP_PAGE)
                if not entries:
                    break
                self.stats["caught_up"] += len(entries)
                for entry in entries:
                    self._offer(room, entry)

    # --- the bus ---------------------------------------------------------------------------------------------------

    def on_message(self, channel: str, payload: bytes) -> None:
        """Everything that arrives from the bus, and every local publish: decoded once, routed by type."""
        try:
            message = bus_decoder.decode(payload)
        except msgspec.DecodeError:
            log.error("undecodable message on %s", channel)
            return
        if isinstance(message, EventHead):
            room = self.rooms.get(message.room_id)
            if room is not None:
                self._offer(room, Entry(message.seq, message.event, payload))
        elif isinstance(message, PresenceFrame):
            room = self.rooms.get(message.room_id)
            if room is not None:
                text = payload.decode()
                for conn in room.feed.listeners():
                    conn.push(text)
        elif isinstance(message, NotificationFrame | NotificationsRead):
            parsed = self.topics.parse(channel)
            if parsed is not None and parsed[0] == "account":
                text = payload.decode()
                for conn in self.accounts.get(parsed[1], ()):
                    conn.push(text)
        elif isinstance(message, Revoke):
            # Cut off now, before anything else is delivered; the rest of the revoke (presence, the error frame) may
            # wait for its task.
            self.revocations.cut_off(message.account_id, message.circle_id)
            self._spawn(self.revocations.revoke(message.account_id, message.circle_id))
        elif isinstance(message, AliasChanged):
            self._spawn(self.revocations.alias_changed(message))
        elif isinstance(message, LogRewritten):
            rewritten = self.rooms.get(message.room_id)
            if rewritten is not None:
                rewritten.feed.forget_recent()
        elif isinstance(message, CacheDrop):
            if self.cache_dropped is not None:
                self.cache_dropped(message)
        elif isinstance(message, SignedOut):
            for conn in list(self.accounts.get(message.account_id, ())):
                if message.token_id is None or conn.token_id == message.token_id:
                    conn.close_soon(CLOSE_POLICY, "signed out")

    async def publish_event(self, room_id: str, entry: Entry) -> None:
        """A committed room event from this instance: into the room's feed at once (no decoding: the entry already
        says what it is), then to the other instances through the bus, whose echo the feed drops as a duplicate.
        Local sockets keep receiving even while Redis is down."""
        room = self.rooms.get(room_id)
        if room is not None:
            self._offer(room, entry)
        bus = self.bus
        if bus is not None and not bus.is_local:
            await bus.publish(entry.envelope, [self.topics.room(room_id)])

    async def publish(self, channel: str, payload: bytes) -> None:
        """An unsequenced frame (presence, notifications, internal messages) to every instance. These cannot be
        de-duplicated, so they go through the bus alone, and locally only when the bus is unreachable."""
        bus = self.bus
        if bus is None or not await bus.publish(payload, [channel]):
            self.on_message(channel, payload)

    # --- presence --------------------------------------------------------------------------------------------------

    def _presence_changed(self, room_id: str) -> None:
        room = self.rooms.get(room_id)
        if room is not None:
            self.broadcaster.changed(room_id, lambda: room.feed.sockets)

    async def refresh_presence(self, room_id: str) -> None:
        """Send everyone in the room, on every instance, who is here and whose hand is up (after a change)."""
        room = self.rooms.get(room_id)
        hands = await self.store.hands(room_id) if room is None or room.dropin else []
        present = await self.presence.members(room_id)
        frame = PresenceFrame(
            room_id=room_id, present=present[:PRESENCE_LIST_MAX], hands=hands, present_count=len(present)
        )
        await self.publish(self.topics.room(room_id), encoder.encode(frame))

    async def after_reconnect(self) -> None:
        """The bus came back: what was published meanwhile is lost to pub/sub, so read it from the log."""
        if self.bus_returned is not None:
            self.bus_returned()
        await self.revocations.revalidate()
        await self.catch_up()
        for room_id, room in self.rooms.items():
            if room.feed.sockets:
                self._presence_changed(room_id)

    # --- periodic work -----------------------------------------------------------------------------------------------

    def _heartbeat_entries(self) -> dict[str, dict[str, Membership]]:
        entries: dict[str, dict[str, Membership]] = {}
        for room_id, room in self.rooms.items():
            present: dict[str, Membership] = {}
            for conn in room.feed.listeners():
                access = conn.rooms.get(room_id)
                if access is not None:
                    present[conn.key] = access.who
            entries[room_id] = present
        return entries

    async def sweep(self) -> None:
        now = time.monotonic()
        await self.catch_up()
        for room_id, room in list(self.rooms.items()):
            if room.feed.sockets == 0 and room.idle_since is not None and now - room.idle_since > IDLE_FEED_SECONDS:
                del self.rooms[room_id]
                if self.bus is not None:
                    await self.bus.unsubscribe([self.topics.room(room_id)])
        if now - self._last_heartbeat >= HEARTBEAT_INTERVAL:
            self._last_heartbeat = now
            swept = await self.presence.heartbeat(self._heartbeat_entries())
            for room_id in swept:
                self._presence_changed(room_id)
        if now - self._last_revalidate >= REVALIDATE_INTERVAL:
            self._last_revalidate = now
            await self.revocations.revalidate()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("hub sweep failed", exc_info=True)
