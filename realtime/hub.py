"""The hub: one per instance. Topics to sockets, in order, authorised, encoded once.

Data flow: a message arrives from the bus (or from a local publish) -> its head is decoded once -> room events go
through that room's `Sequencer` (in order, gap-free, each once; holes are read back from the room log) -> the frame
for each variant is made once (the JSON frame is the bus payload itself; the HTML frame is rendered at most once)
-> every live socket of the room gets the same string appended to its bounded queue.

The hub does not import the database: reading the log, checking membership and finding last seqs reach it through
the `HubStore` callbacks that the application passes in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import msgspec

from realtime.bus import Bus
from realtime.connection import CLOSE_GOING_AWAY, CLOSE_POLICY, CLOSE_TRY_AGAIN, Access, Connection, SocketLimits
from realtime.events import (
    AliasChanged,
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
from realtime.presence import HEARTBEAT_INTERVAL, PresenceStore
from realtime.protocol import Catchup, Sequencer
from realtime.topics import Topics

log = logging.getLogger("kindred.hub")

LogEntry = tuple[int, bytes]  # (seq, the event's wire envelope)

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
# Recent events kept per room, so most reconnects replay from memory instead of the database.
RECENT_EVENTS = 256
# Events read from the log per query while a replay streams to a socket.
REPLAY_PAGE = 100
# HTML renderings kept per instance (keyed by the event's envelope), so replays to page sockets reuse the render the
# live delivery made instead of rendering once per socket.
HTML_CACHE = 1024
# Presence broadcasts per room are coalesced: at most one per this many seconds, more for big rooms (below).
PRESENCE_MIN_INTERVAL = 0.25
PRESENCE_PER_MEMBER = 0.0025


class HubStore(Protocol):
    async def authorize(self, account_id: str, room_id: str) -> Access | None:
        """The account's access to the room, or None if it is not a current member of the room's circle."""
        ...

    async def read_events(self, room_id: str, after: int, limit: int) -> tuple[list[LogEntry], int]:
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


class RoomFeed:
    """This instance's view of one room: its sequencer and the sockets that follow it."""

    __slots__ = (
        "ahead",
        "catchups",
        "circle_id",
        "dropin",
        "early",
        "gap_task",
        "html",
        "idle_since",
        "json",
        "presence_due",
        "presence_task",
        "recent",
        "room_id",
        "seq",
    )

    def __init__(self, room_id: str, circle_id: str, dropin: bool) -> None:
        self.room_id = room_id
        self.circle_id = circle_id
        self.dropin = dropin
        # None until the baseline seq is read; events that arrive before that wait in `early`.
        self.seq: Sequencer[bytes] | None = None
        self.early: list[LogEntry] = []
        self.json: set[Connection] = set()
        self.html: set[Connection] = set()
        self.catchups: dict[Connection, Catchup[bytes]] = {}
        # Sockets whose replay (or resync) went past what this instance has released: each joins the live sets when
        # the room's sequencer reaches its floor, so it never gets an event twice, nor one at or below a resync's seq.
        self.ahead: dict[Connection, int] = {}
        self.recent: deque[LogEntry] = deque(maxlen=RECENT_EVENTS)
        self.gap_task: asyncio.Task[None] | None = None
        self.idle_since: float | None = None
        self.presence_task: asyncio.Task[None] | None = None
        self.presence_due = False

    @property
    def sockets(self) -> int:
        return len(self.json) + len(self.html) + len(self.catchups) + len(self.ahead)

    def listeners(self) -> list[Connection]:
        """Every socket following the room live (presence frames go to all of them)."""
        return [*self.json, *self.html, *self.ahead]

    def drop(self, conn: Connection) -> None:
        self.json.discard(conn)
        self.html.discard(conn)
        self.catchups.pop(conn, None)
        self.ahead.pop(conn, None)


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
        self.presence_jitter = presence_jitter
        self._rng = rng or random.SystemRandom()
        self.presence = presence
        self.topics = topics
        self.limits = limits
        self.renderer = renderer
        self.bus: Bus | None = None
        self.rooms: dict[str, RoomFeed] = {}
        self.accounts: dict[str, set[Connection]] = {}
        self._feed_locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._last_revalidate = time.monotonic()
        self._last_heartbeat = time.monotonic()
        self._html_cache: dict[bytes, str | None] = {}
        # Counters for /healthz: deliveries, gap reads, events recovered by the tail check (should stay near zero while
        # the bus is healthy), sockets cut off for being slow, HTML renders.
        self.stats = {"delivered": 0, "gap_fills": 0, "caught_up": 0, "slow_closed": 0, "rendered": 0}

    # --- lifecycle (owned by the application lifespan) -----------------------------------------------------------------

    async def start(self, bus: Bus) -> None:
        self.bus = bus
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
        for feed in self.rooms.values():
            running.update(t for t in (feed.gap_task, feed.presence_task) if t is not None)
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

    async def attach(self, conn: Connection) -> None:
        """Register a socket before its handshake completes, so no notification created after that is missed."""
        conns = self.accounts.get(conn.account_id)
        if conns is None:
            conns = self.accounts[conn.account_id] = set()
            assert self.bus is not None
            await self.bus.subscribe([self.topics.account(conn.account_id)])
        conns.add(conn)

    async def detach(self, conn: Connection) -> None:
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

    async def subscribe(self, conn: Connection, room_id: str, since: int | None) -> None:
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
            feed = await self._feed(room_id, access)
        except Exception:
            log.exception("opening room %s failed", room_id)
            conn.reply(ErrorFrame(code="unavailable", detail="could not open the room; try again", room_id=room_id))
            return
        conn.rooms[room_id] = access
        feed.idle_since = None
        variant_set = feed.html if conn.variant == "html" else feed.json
        assert feed.seq is not None
        if since is None:
            variant_set.add(conn)
            conn.reply(Subscribed(room_id=room_id, last_seq=feed.seq.last))
        else:
            catchup: Catchup[bytes] = Catchup(since)
            feed.catchups[conn] = catchup

            def still_wanted() -> bool:
                # Not unsubscribed, revoked or closed while the replay streamed (an alias change keeps it).
                current = conn.rooms.get(room_id)
                return (
                    feed.catchups.get(conn) is catchup
                    and current is not None
                    and current.who.membership_id == access.who.membership_id
                    and not conn.closing
                )

            try:
                last, resync_at = await self._stream_replay(conn, feed, since, still_wanted)
            except Exception:
                log.exception("replay failed")
                if feed.catchups.get(conn) is catchup:
                    del feed.catchups[conn]
                conn.rooms.pop(room_id, None)
                conn.reply(
                    ErrorFrame(code="unavailable", detail="could not read the room log; try again", room_id=room_id)
                )
                return
            if not still_wanted():
                return
            del feed.catchups[conn]
            if resync_at is not None:
                last = resync_at
                conn.reply(Resync(room_id=room_id, last_seq=last))
            else:
                conn.reply(Subscribed(room_id=room_id, last_seq=last))
            for _, envelope in catchup.release_after(last):
                conn.push_reply(self._frame(conn, envelope))
            if last > feed.seq.last:
                feed.ahead[conn] = last
            else:
                variant_set.add(conn)
        # Read again: an alias change may have replaced the access while the replay was read.
        current = conn.rooms.get(room_id)
        if current is None:
            return
        try:
            await self.presence.join(room_id, conn.key, current.who)
        except Exception:
            log.warning("presence join failed for room %s", room_id, exc_info=True)
        self._presence_changed(feed)

    async def unsubscribe(self, conn: Connection, room_id: str, *, quiet: bool = False) -> None:
        access = conn.rooms.pop(room_id, None)
        feed = self.rooms.get(room_id)
        if feed is not None:
            feed.drop(conn)
            if not feed.sockets:
                feed.idle_since = time.monotonic()
        if access is not None:
            try:
                await self.presence.leave(room_id, conn.key, access.who)
            except Exception:
                log.warning("presence leave failed for room %s", room_id, exc_info=True)
            if feed is not None:
                self._presence_changed(feed)
        if not quiet:
            conn.reply(Unsubscribed(room_id=room_id))

    def _frame(self, conn: Connection, envelope: bytes) -> str:
        if conn.variant == "html":
            html = self._html(envelope)
            if html is not None:
                return html
        return envelope.decode()

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

    async def _stream_replay(
        self, conn: Connection, feed: RoomFeed, since: int, still_wanted: Callable[[], bool]
    ) -> tuple[int, int | None]:
        """Send `conn` the events after `since`, one at a time as its queue drains, reading the log a page at a time:
        a replay is never built whole, and a client that asks for many and reads none holds a quarter of its send
        bound at most. Returns (the last seq sent, None), or (since, N) when the client must resync from N instead.
        Live events meanwhile wait in the socket's Catchup, which is bounded too (`_offer`)."""
        assert feed.seq is not None
        last = since
        recent = feed.recent
        if recent and recent[0][0] <= since + 1 and since <= feed.seq.last:
            for seq, envelope in [entry for entry in recent if entry[0] > since]:
                if not await conn.drained() or not still_wanted():
                    return last, None
                conn.push_reply(self._frame(conn, envelope))
                last = seq
            return last, None
        entries, room_last = await self.store.read_events(feed.room_id, since, REPLAY_PAGE)
        if room_last - since > self.limits.replay_cap or since > room_last:
            # Too far behind to replay, or ahead of a log it cannot have seen (a reset database): start afresh.
            return since, max(room_last, feed.seq.last)
        while True:
            for seq, envelope in entries:
                # What the log holds beyond this instance's position is committed: the room's sequencer takes it now
                # (this instance was behind, say while Redis was away), so every socket gets it once, this one as
                # part of its replay (its Catchup holds it, and release_after skips what the replay sent).
                if seq > feed.seq.last:
                    self._offer(feed, seq, envelope)
                if not await conn.drained() or not still_wanted():
                    return last, None
                conn.push_reply(self._frame(conn, envelope))
                last = seq
            # Seqs are gap-free, so the page that reaches the room's end at the first read is the last one; what
            # was committed since arrives live, held in the Catchup.
            if len(entries) < REPLAY_PAGE or last >= room_last:
                return last, None
            entries, _ = await self.store.read_events(feed.room_id, last, REPLAY_PAGE)

    # --- rooms ---------------------------------------------------------------------------------------------------

    async def _feed(self, room_id: str, access: Access) -> RoomFeed:
        feed = self.rooms.get(room_id)
        if feed is not None and feed.seq is not None:
            return feed
        lock = self._feed_locks.setdefault(room_id, asyncio.Lock())
        async with lock:
            feed = self.rooms.get(room_id)
            if feed is not None and feed.seq is not None:
                return feed
            if feed is None:
                # Registered before the channel subscription so no event arriving meanwhile is dropped.
                feed = self.rooms[room_id] = RoomFeed(room_id, access.circle_id, access.dropin)
            assert self.bus is not None
            await self.bus.subscribe([self.topics.room(room_id)])
            try:
                baseline = (await self.store.last_seqs([room_id])).get(room_id, 0)
            except Exception:
                if not feed.sockets:  # nobody else is waiting on it: forget the half-made feed
                    self.rooms.pop(room_id, None)
                    await self.bus.unsubscribe([self.topics.room(room_id)])
                raise
            feed.seq = Sequencer(baseline)
            early, feed.early = feed.early, []
            for seq, envelope in early:
                self._offer(feed, seq, envelope)
        self._feed_locks.pop(room_id, None)
        return feed

    def _offer(self, feed: RoomFeed, seq: int, envelope: bytes) -> None:
        sequencer = feed.seq
        if sequencer is None:
            feed.early.append((seq, envelope))
            return
        for released_seq, released in sequencer.offer(seq, envelope):
            self._release(feed, released_seq, released)
        if sequencer.pending and feed.gap_task is None:
            feed.gap_task = self._spawn(self._fill_gap(feed))

    def _release(self, feed: RoomFeed, seq: int, envelope: bytes) -> None:
        if feed.json:
            text = envelope.decode()
            for conn in feed.json:
                conn.push(text)
        if feed.html:
            html = self._html(envelope)
            frame = html if html is not None else envelope.decode()
            for conn in feed.html:
                conn.push(frame)
        for waiting, catchup in list(feed.catchups.items()):
            if catchup.held >= self.limits.send_queue_frames:
                # A replay that cannot stream because the client does not read: live events would pile up here.
                self.stats["slow_closed"] += 1
                waiting.close_soon(CLOSE_TRY_AGAIN, "too slow to keep up; reconnect with since")
                continue
            catchup.hold(seq, envelope)
        self.stats["delivered"] += len(feed.json) + len(feed.html)
        if feed.ahead:
            for conn, floor in list(feed.ahead.items()):
                if seq > floor:
                    conn.push(self._frame(conn, envelope))
                if seq >= floor:
                    del feed.ahead[conn]
                    (feed.html if conn.variant == "html" else feed.json).add(conn)
        head = envelope[:200]
        if b'"event":"post.updated"' in head or b'"event":"post.deleted"' in head:
            # Replays must not resend what an edit, a hide or a deletion took away: the log's copies have been
            # rewritten, so the memory window is dropped and the next replay reads the log.
            feed.recent.clear()
        else:
            feed.recent.append((seq, envelope))

    async def _fill_gap(self, feed: RoomFeed) -> None:
        try:
            await asyncio.sleep(GAP_GRACE)
            while feed.seq is not None and (gap := feed.seq.gap()) is not None:
                first, last = gap
                entries, _ = await self.store.read_events(feed.room_id, first - 1, last - first + 1)
                self.stats["gap_fills"] += 1
                if not entries:
                    log.error("room %s: seqs %d..%d missing from the log", feed.room_id, first, last)
                    return
                for seq, envelope in entries:
                    self._offer(feed, seq, envelope)
        except Exception:
            log.exception("gap fill for room %s failed", feed.room_id)
        finally:
            feed.gap_task = None

    async def catch_up(self) -> None:
        """Bring every room up to the log's last seq (after a bus outage, or as the periodic tail check)."""
        ready = [feed for feed in self.rooms.values() if feed.seq is not None]
        if not ready:
            return
        lasts = await self.store.last_seqs([feed.room_id for feed in ready])
        if any(feed.seq is not None and feed.seq.last < lasts.get(feed.room_id, 0) for feed in ready):
            # Events the bus did not bring may come with revocations it did not bring either: check who may still
            # read before delivering them.
            await self._revalidate()
        for feed in ready:
            assert feed.seq is not None
            target = lasts.get(feed.room_id, 0)
            while feed.seq.last < target:
                entries, _ = await self.store.read_events(feed.room_id, feed.seq.last, 500)
                if not entries:
                    break
                self.stats["caught_up"] += len(entries)
                for seq, envelope in entries:
                    self._offer(feed, seq, envelope)

    # --- the bus ---------------------------------------------------------------------------------------------------

    def on_message(self, channel: str, payload: bytes) -> None:
        """Everything that arrives from the bus, and every local publish: decoded once, routed by type."""
        try:
            message = bus_decoder.decode(payload)
        except msgspec.DecodeError:
            log.error("undecodable message on %s", channel)
            return
        if isinstance(message, EventHead):
            feed = self.rooms.get(message.room_id)
            if feed is not None:
                self._offer(feed, message.seq, payload)
        elif isinstance(message, PresenceFrame):
            feed = self.rooms.get(message.room_id)
            if feed is not None:
                text = payload.decode()
                for conn in feed.listeners():
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
            self._cut_off(message.account_id, message.circle_id)
            self._spawn(self._revoke(message.account_id, message.circle_id))
        elif isinstance(message, AliasChanged):
            self._spawn(self._alias_changed(message))
        elif isinstance(message, LogRewritten):
            rewritten = self.rooms.get(message.room_id)
            if rewritten is not None:
                rewritten.recent.clear()
        elif isinstance(message, SignedOut):
            for conn in list(self.accounts.get(message.account_id, ())):
                if message.token_id is None or conn.token_id == message.token_id:
                    conn.close_soon(CLOSE_POLICY, "signed out")

    async def publish(self, channel: str, payload: bytes, *, sequenced: bool) -> None:
        """Deliver to this instance's sockets at once and to every other instance through the bus.

        Sequenced events are delivered locally first (the bus echo is then a duplicate the sequencer drops), so
        local sockets keep receiving even while Redis is down. Unsequenced frames (presence, notifications) cannot
        be de-duplicated, so they go through the bus alone, locally only when the bus is unreachable.
        """
        bus = self.bus
        if sequenced:
            self.on_message(channel, payload)
            if bus is not None and not bus.is_local:
                await bus.publish(payload, [channel])
            return
        if bus is None or not await bus.publish(payload, [channel]):
            self.on_message(channel, payload)

    def _cut_off(self, account_id: str, circle_id: str) -> None:
        for conn in self.accounts.get(account_id, ()):
            for room_id, access in conn.rooms.items():
                if access.circle_id == circle_id and (feed := self.rooms.get(room_id)) is not None:
                    feed.drop(conn)

    async def _revoke(self, account_id: str, circle_id: str) -> None:
        for conn in list(self.accounts.get(account_id, ())):
            lost = False
            for room_id, access in list(conn.rooms.items()):
                if access.circle_id == circle_id:
                    lost = True
                    await self.unsubscribe(conn, room_id, quiet=True)
                    conn.reply(
                        ErrorFrame(
                            code="forbidden", detail="you are no longer a member of this circle", room_id=room_id
                        )
                    )
            # A page's socket exists for one room; with that room gone it is closed, not left open and idle.
            if lost and conn.variant == "html" and not conn.rooms:
                conn.close_soon(CLOSE_POLICY, "no longer a member of this circle")

    async def _alias_changed(self, message: AliasChanged) -> None:
        """The account's sockets in that circle appear under the new alias from now on, in presence as everywhere."""
        for conn in list(self.accounts.get(message.account_id, ())):
            for room_id, access in list(conn.rooms.items()):
                if access.circle_id != message.circle_id or access.who.membership_id != message.who.membership_id:
                    continue
                old = access.who
                conn.rooms[room_id] = msgspec.structs.replace(access, who=message.who)
                try:
                    await self.presence.leave(room_id, conn.key, old)
                    await self.presence.join(room_id, conn.key, message.who)
                except Exception:
                    log.warning("presence update after an alias change failed for room %s", room_id, exc_info=True)
                if (feed := self.rooms.get(room_id)) is not None:
                    self._presence_changed(feed)

    # --- presence --------------------------------------------------------------------------------------------------

    def _presence_changed(self, feed: RoomFeed) -> None:
        feed.presence_due = True
        if feed.presence_task is None:
            feed.presence_task = self._spawn(self._broadcast_presence(feed))

    def presence_delay(self, sockets: int) -> float:
        """How long a room's presence change waits before its frame goes out: a coalescing interval that grows with
        the room, plus a random delay drawn for this room and this change alone. Without the random part, one
        socket subscribed in two circles would show its two aliases joining and leaving in the same tick, which
        links them; with it, the two rooms' frames go out at independent times (docs/security.md says how far that
        goes)."""
        jitter = self._rng.uniform(0.0, self.presence_jitter) if self.presence_jitter > 0 else 0.0
        return PRESENCE_MIN_INTERVAL + PRESENCE_PER_MEMBER * sockets + jitter

    async def _broadcast_presence(self, feed: RoomFeed) -> None:
        try:
            while feed.presence_due:
                await asyncio.sleep(self.presence_delay(feed.sockets))
                feed.presence_due = False
                await self.refresh_presence(feed.room_id)
        except Exception:
            log.warning("presence broadcast for room %s failed", feed.room_id, exc_info=True)
        finally:
            feed.presence_task = None

    async def refresh_presence(self, room_id: str) -> None:
        """Send everyone in the room, on every instance, who is here and whose hand is up (after a change)."""
        feed = self.rooms.get(room_id)
        hands = await self.store.hands(room_id) if feed is None or feed.dropin else []
        frame = PresenceFrame(room_id=room_id, present=await self.presence.members(room_id), hands=hands)
        await self.publish(self.topics.room(room_id), encoder.encode(frame), sequenced=False)

    async def after_reconnect(self) -> None:
        """The bus came back: what was published meanwhile is lost to pub/sub, so read it from the log."""
        await self._revalidate()
        await self.catch_up()
        for feed in self.rooms.values():
            if feed.sockets:
                self._presence_changed(feed)

    # --- periodic work -----------------------------------------------------------------------------------------------

    async def _revalidate(self) -> None:
        pairs = {
            (conn.account_id, access.circle_id)
            for conns in self.accounts.values()
            for conn in conns
            for access in conn.rooms.values()
        }
        if not pairs:
            return
        allowed = await self.store.still_allowed(pairs)
        for account_id, circle_id in pairs - allowed:
            await self._revoke(account_id, circle_id)

    def _heartbeat_entries(self) -> dict[str, dict[str, Membership]]:
        entries: dict[str, dict[str, Membership]] = {}
        for feed in self.rooms.values():
            room: dict[str, Membership] = {}
            for conn in feed.listeners():
                access = conn.rooms.get(feed.room_id)
                if access is not None:
                    room[conn.key] = access.who
            entries[feed.room_id] = room
        return entries

    async def sweep(self) -> None:
        now = time.monotonic()
        await self.catch_up()
        for room_id, feed in list(self.rooms.items()):
            if feed.sockets == 0 and feed.idle_since is not None and now - feed.idle_since > IDLE_FEED_SECONDS:
                del self.rooms[room_id]
                if self.bus is not None:
                    await self.bus.unsubscribe([self.topics.room(room_id)])
        if now - self._last_heartbeat >= HEARTBEAT_INTERVAL:
            self._last_heartbeat = now
            swept = await self.presence.heartbeat(self._heartbeat_entries())
            for room_id in swept:
                if (swept_feed := self.rooms.get(room_id)) is not None:
                    self._presence_changed(swept_feed)
        if now - self._last_revalidate >= REVALIDATE_INTERVAL:
            self._last_revalidate = now
            await self._revalidate()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("hub sweep failed", exc_info=True)
