"""The room feed, sans I/O: one room's delivery protocol on this instance, as a plain object.

The hub is the I/O loop around it (sockets, the bus, the database); this module decides. Its methods take what
happened (an event arrived, a socket subscribed, a page of the log was read, a socket left) and return what to do
(deliver this event to these sockets, send this replayed event, read the log after N, finish a subscription with a
`subscribed` or `resync` frame, close a socket that cannot keep up). Nothing here awaits, sleeps, or touches a
socket, so every interleaving the hub can meet is a plain sequence of calls in a unit test.

The room's events pass a `Sequencer`: in order, gap-free, each once, whatever order the bus and the log bring them in.
Each subscription is in one explicit phase:

* CATCHING_UP: subscribed with `since`; its replay (from the recent window, else the log a page at a time) is being
  sent. Live events released meanwhile are held for it (bounded) and released after the replay, skipping what the
  replay covered.
* AHEAD: its replay, or its resync, went past what this instance has released (the instance is behind, say while
  Redis was away). Events at or below its floor were covered; the first event past the floor is sent to it alone, and
  at the floor it joins the live lanes. So it never gets an event twice, nor one at or below a resync's seq.
* LIVE: in a lane (one per frame variant); every released event goes to the lane as one frame.
* GONE: unsubscribed, revoked or cut off; any later call about it does nothing.

Lanes are frozensets replaced, never mutated, when a socket joins or leaves: a `Deliver` holds the lane as it was
when the event was released, so the hub can act on a batch of actions after the feed has moved on.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from realtime.protocol import Sequencer
from realtime.types import Entry

K = TypeVar("K", bound=Hashable)

# Recent events kept per room, so most reconnects replay from memory instead of the database.
RECENT_EVENTS = 256
# Events read from the log per query while a replay streams to a socket.
REPLAY_PAGE = 100
# Events whose arrival rewrote earlier stored copies (an edit, a hide, a deletion): the recent window is dropped, so
# no replay resends from memory what the log no longer says.
REWRITING = frozenset({"post.updated", "post.deleted"})


class Phase(enum.Enum):
    CATCHING_UP = "catching up"
    AHEAD = "ahead"
    LIVE = "live"
    GONE = "gone"


@dataclass(eq=False, slots=True)
class Subscription(Generic[K]):
    """One socket's subscription to the room. The hub holds it only to hand it back; the feed changes it."""

    key: K
    lane: str
    phase: Phase
    # The last seq this socket has been sent (or been told to resync at).
    sent: int
    # CATCHING_UP: events still to send from the replay, live events held meanwhile, whether the log must be read
    # next, the room's last seq at the first log read (None before it), and the seq of a resync when one is due.
    page: deque[Entry] = field(default_factory=deque)
    held: list[Entry] = field(default_factory=list)
    read_next: bool = False
    room_last: int | None = None
    resync_at: int | None = None
    # AHEAD: the seq at which it joins the live lane.
    floor: int = 0


# --- What the feed asks the I/O loop to do ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deliver(Generic[K]):
    """The next event in order: one frame per lane to every socket in it, and the same event to `ahead` one by one
    (sockets that were ahead of the instance and are now past their floor)."""

    entry: Entry
    lanes: Mapping[str, frozenset[K]]
    ahead: tuple[K, ...] = ()


@dataclass(frozen=True, slots=True)
class TooSlow(Generic[K]):
    """A socket whose replay cannot stream (it does not read) held too many live events: close it with 1013; it
    recovers by reconnecting with `since`. It is already GONE from the feed."""

    key: K


@dataclass(frozen=True, slots=True)
class SendReplay:
    """Send this replayed event to the subscribing socket (after its queue has drained)."""

    entry: Entry


@dataclass(frozen=True, slots=True)
class ReadLog:
    """Read up to `limit` events after `after` from the room log, with the room's last seq, and hand them to
    `Feed.log_read`."""

    after: int
    limit: int


@dataclass(frozen=True, slots=True)
class Finish:
    """The replay is over: send `subscribed` (or `resync` when `resync` is true) with `last_seq`, then `held` (the
    live events the replay did not cover), in order. The subscription is now AHEAD or LIVE."""

    last_seq: int
    resync: bool
    held: tuple[Entry, ...]


Action = Deliver[K] | TooSlow[K]
ReplayStep = SendReplay | ReadLog | Finish


class Feed(Generic[K]):
    """This instance's view of one room: its sequencer, its recent events and its subscriptions."""

    __slots__ = (
        "_ahead",
        "_catching",
        "_early",
        "_lanes",
        "_seq",
        "_subs",
        "hold_limit",
        "recent",
        "replay_cap",
        "replay_page",
        "room_id",
    )

    def __init__(
        self,
        room_id: str,
        *,
        replay_cap: int,
        hold_limit: int,
        recent: int = RECENT_EVENTS,
        replay_page: int = REPLAY_PAGE,
    ) -> None:
        self.room_id = room_id
        self.replay_cap = replay_cap
        self.hold_limit = hold_limit
        self.replay_page = replay_page
        # None until the baseline (the room's last seq when this instance started following it) is known; events
        # that arrive before that wait in `_early`.
        self._seq: Sequencer[Entry] | None = None
        self._early: list[Entry] = []
        self.recent: deque[Entry] = deque(maxlen=recent)
        self._subs: dict[K, Subscription[K]] = {}
        # The subscriptions a released event must look at besides the lanes (usually none: the fast path).
        self._catching: dict[K, Subscription[K]] = {}
        self._ahead: dict[K, Subscription[K]] = {}
        # Replaced (copied), never mutated, like the lanes in it.
        self._lanes: dict[str, frozenset[K]] = {}

    # --- the room ----------------------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._seq is not None

    @property
    def last(self) -> int:
        """The last seq this instance has released for the room."""
        if self._seq is None:
            raise RuntimeError("the feed is not open yet")
        return self._seq.last

    def open(self, baseline: int) -> list[Action[K]]:
        """The room's last seq is known: events that arrived before it are released now."""
        if self._seq is not None:
            return []
        self._seq = Sequencer(baseline)
        early, self._early = self._early, []
        actions: list[Action[K]] = []
        for entry in early:
            actions.extend(self.offer(entry))
        return actions

    def offer(self, entry: Entry) -> list[Action[K]]:
        """An event arrived (from the bus, a local publish, a gap read or a tail check), maybe twice, maybe early."""
        sequencer = self._seq
        if sequencer is None:
            self._early.append(entry)
            return []
        released = sequencer.offer(entry.seq, entry)
        if not released:
            return []
        if len(released) == 1:
            return self._release(released[0][1])
        actions: list[Action[K]] = []
        for _, item in released:
            actions.extend(self._release(item))
        return actions

    def gap(self) -> tuple[int, int] | None:
        """The inclusive range of seqs to read from the log, when events past a hole are waiting."""
        return None if self._seq is None else self._seq.gap()

    def forget_recent(self) -> None:
        """The room's stored events were rewritten elsewhere (an alias change): replay from the log from now on."""
        self.recent.clear()

    def _release(self, entry: Entry) -> list[Action[K]]:
        lanes = self._lanes
        actions: list[Action[K]]
        if not self._catching and not self._ahead:
            actions = [Deliver(entry, lanes)]
        else:
            slow: list[Action[K]] = []
            ahead = self._release_to_others(entry, slow)
            actions = [Deliver(entry, lanes, ahead), *slow]
        if entry.name in REWRITING:
            self.recent.clear()
        else:
            self.recent.append(entry)
        return actions

    def _release_to_others(self, entry: Entry, slow: list[Action[K]]) -> tuple[K, ...]:
        for sub in list(self._catching.values()):
            if len(sub.held) >= self.hold_limit:
                self._drop(sub)
                slow.append(TooSlow(sub.key))
            else:
                sub.held.append(entry)
        ahead: list[K] = []
        for sub in list(self._ahead.values()):
            if entry.seq > sub.floor:
                ahead.append(sub.key)
                sub.sent = entry.seq
            if entry.seq >= sub.floor:
                del self._ahead[sub.key]
                self._go_live(sub)
        return tuple(ahead)

    # --- subscriptions -------------------------------------------------------------------------------------------

    def subscribe(self, key: K, lane: str, since: int | None) -> Subscription[K]:
        """A socket subscribes, live from now (`since` None) or with a replay of what came after `since`."""
        if self._seq is None:
            raise RuntimeError("the feed is not open yet")
        if key in self._subs:
            self.unsubscribe(key)
        if since is None:
            sub = Subscription(key, lane, Phase.CATCHING_UP, self._seq.last)
            self._subs[key] = sub
            self._go_live(sub)
            return sub
        sub = Subscription(key, lane, Phase.CATCHING_UP, since)
        self._catching[key] = sub
        recent = self.recent
        if recent and recent[0].seq <= since + 1 and since <= self._seq.last:
            # The recent window covers it: replay from memory, no query.
            sub.page.extend(e for e in recent if e.seq > since)
        else:
            sub.read_next = True
        self._subs[key] = sub
        return sub

    def unsubscribe(self, key: K) -> None:
        sub = self._subs.get(key)
        if sub is not None:
            self._drop(sub)

    def get(self, key: K) -> Subscription[K] | None:
        return self._subs.get(key)

    def replay_step(self, sub: Subscription[K]) -> ReplayStep | None:
        """What the replay of `sub` needs next; None when it is not catching up (any more)."""
        if sub.phase is not Phase.CATCHING_UP or self._subs.get(sub.key) is not sub:
            return None
        if sub.resync_at is None and sub.page:
            entry = sub.page.popleft()
            sub.sent = entry.seq
            return SendReplay(entry)
        if sub.resync_at is None and sub.read_next:
            return ReadLog(sub.sent, self.replay_page)
        return self._finish(sub)

    def log_read(self, sub: Subscription[K], entries: Iterable[Entry], room_last: int) -> list[Action[K]]:
        """A page of the log was read for `sub`'s replay (after `ReadLog`), with the room's last seq."""
        if sub.phase is not Phase.CATCHING_UP or self._subs.get(sub.key) is not sub or not sub.read_next:
            return []
        assert self._seq is not None
        page = list(entries)
        if sub.room_last is None:
            sub.room_last = room_last
            since = sub.sent
            if room_last - since > self.replay_cap or since > room_last:
                # Too far behind to replay, or ahead of a log it cannot have seen (a reset database): start afresh.
                sub.resync_at = max(room_last, self._seq.last)
                sub.read_next = False
                return []
        # Seqs are gap-free, so a short page, or one that reaches the room's end as first read, is the last one;
        # what was committed since arrives live, held for this socket.
        sub.read_next = len(page) >= self.replay_page and (not page or page[-1].seq < sub.room_last)
        sub.page.extend(page)
        # What the log holds beyond this instance's position is committed: the room takes it now (this instance was
        # behind), so every socket gets it once; this one holds it too, and the finish skips what the replay sent.
        actions: list[Action[K]] = []
        for entry in page:
            if entry.seq > self._seq.last:
                actions.extend(self.offer(entry))
        return actions

    def _finish(self, sub: Subscription[K]) -> Finish:
        assert self._seq is not None
        resync = sub.resync_at is not None
        last = sub.resync_at if sub.resync_at is not None else sub.sent
        held = tuple(e for e in sub.held if e.seq > last)
        sub.held = []
        sub.page.clear()
        sub.sent = max(last, held[-1].seq) if held else last
        del self._catching[sub.key]
        if last > self._seq.last:
            sub.phase = Phase.AHEAD
            sub.floor = last
            self._ahead[sub.key] = sub
        else:
            self._go_live(sub)
        return Finish(last, resync, held)

    def _go_live(self, sub: Subscription[K]) -> None:
        sub.phase = Phase.LIVE
        self._lanes = {**self._lanes, sub.lane: self._lanes.get(sub.lane, frozenset()) | {sub.key}}

    def _drop(self, sub: Subscription[K]) -> None:
        if sub.phase is Phase.LIVE:
            lanes = dict(self._lanes)
            lane = lanes.pop(sub.lane) - {sub.key}
            if lane:
                lanes[sub.lane] = lane
            self._lanes = lanes
        self._catching.pop(sub.key, None)
        self._ahead.pop(sub.key, None)
        sub.phase = Phase.GONE
        sub.page.clear()
        sub.held = []
        self._subs.pop(sub.key, None)

    # --- views -----------------------------------------------------------------------------------------------------

    @property
    def sockets(self) -> int:
        """Every subscription, whatever its phase (a room with none may be let go)."""
        return len(self._subs)

    def listeners(self) -> list[K]:
        """Sockets following the room (live or ahead): presence frames go to them."""
        return [sub.key for sub in self._subs.values() if sub.phase is not Phase.CATCHING_UP]

    def phase(self, key: K) -> Phase:
        sub = self._subs.get(key)
        return Phase.GONE if sub is None else sub.phase
