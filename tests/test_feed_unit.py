"""The room feed (realtime/feed.py) without I/O: every interleaving of live events, replays from memory and from the
log, an instance that is behind, resyncs, unsubscribes and slow sockets, as plain calls. No sockets, no event loop,
no sleeps; the whole file runs in well under a second.

`Room` below plays the hub's part in miniature: it carries out the feed's actions into per-socket lists of what
each was sent, and reads a list standing in for the room log."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.feed import Deliver, Feed, Finish, Phase, ReadLog, SendReplay, Subscription, TooSlow
from realtime.types import Entry


def entry(seq: int, name: str = "post.created") -> Entry:
    return Entry(seq, name, f'{{"seq":{seq}}}'.encode())


@dataclass
class Sent:
    """What one socket was sent: event seqs in order, and its subscribed/resync acknowledgements."""

    seqs: list[int] = field(default_factory=list)
    acks: list[tuple[str, int]] = field(default_factory=list)
    closed: bool = False


class Room:
    def __init__(self, *, baseline: int = 0, replay_cap: int = 50, hold_limit: int = 1000, page: int = 3) -> None:
        self.feed: Feed[str] = Feed("r", replay_cap=replay_cap, hold_limit=hold_limit, recent=4, replay_page=page)
        self.log: list[Entry] = [entry(s) for s in range(1, baseline + 1)]
        self.sent: dict[str, Sent] = {}
        self.subs: dict[str, Subscription[str]] = {}
        self.apply(self.feed.open(baseline))

    def commit(self, name: str = "post.created") -> Entry:
        new = entry(len(self.log) + 1, name)
        self.log.append(new)
        return new

    def publish(self, name: str = "post.created") -> Entry:
        """Commit and deliver at once (a local publish)."""
        new = self.commit(name)
        self.apply(self.feed.offer(new))
        return new

    def apply(self, actions: list[Deliver[str] | TooSlow[str]]) -> None:
        for action in actions:
            if isinstance(action, Deliver):
                for lane in action.lanes.values():
                    for key in lane:
                        self._send(key, action.entry.seq)
                for key in action.ahead:
                    self._send(key, action.entry.seq)
            else:
                self.sent[action.key].closed = True

    def _send(self, key: str, seq: int) -> None:
        seqs = self.sent[key].seqs
        assert not seqs or seq > seqs[-1], f"{key} got {seq} after {seqs[-1]}"
        seqs.append(seq)

    def subscribe(self, key: str, since: int | None, lane: str = "json") -> Subscription[str]:
        self.sent.setdefault(key, Sent())
        sub = self.subs[key] = self.feed.subscribe(key, lane, since)
        if sub.phase is Phase.LIVE:
            self.sent[key].acks.append(("subscribed", self.feed.last))
        return sub

    def step(self, key: str) -> bool:
        """One step of `key`'s replay, as the hub takes it; False when there is none to take."""
        sub = self.subs.get(key)
        step = None if sub is None else self.feed.replay_step(sub)
        if step is None or sub is None:
            return False
        if isinstance(step, SendReplay):
            self._send(key, step.entry.seq)
        elif isinstance(step, ReadLog):
            page = [e for e in self.log if e.seq > step.after][: step.limit]
            self.apply(self.feed.log_read(sub, page, len(self.log)))
        else:
            assert isinstance(step, Finish)
            self.sent[key].acks.append(("resync" if step.resync else "subscribed", step.last_seq))
            for held in step.held:
                self._send(key, held.seq)
        return True

    def replay(self, key: str) -> None:
        while self.step(key):
            pass

    def tail_check(self) -> None:
        """What the hub's catch_up does: read what the log holds past the instance's position."""
        for e in self.log[self.feed.last :]:
            self.apply(self.feed.offer(e))


def test_live_subscribers_get_each_event_once_in_order_whatever_the_bus_does() -> None:
    room = Room()
    room.subscribe("a", None)
    room.subscribe("b", None, lane="html")
    e1, e2, e3 = room.commit(), room.commit(), room.commit()
    for e in (e2, e1, e2, e3, e1):  # reordered by racing publishers, echoed twice
        room.apply(room.feed.offer(e))
    assert room.sent["a"].seqs == room.sent["b"].seqs == [1, 2, 3]
    assert room.sent["a"].acks == [("subscribed", 0)]


def test_a_hole_is_a_gap_to_read_and_releases_when_filled() -> None:
    room = Room()
    room.subscribe("a", None)
    room.commit()
    e2 = room.commit()
    room.apply(room.feed.offer(e2))
    assert room.feed.gap() == (1, 1) and room.sent["a"].seqs == []
    room.apply(room.feed.offer(room.log[0]))  # read from the log
    assert room.feed.gap() is None and room.sent["a"].seqs == [1, 2]


def test_events_before_the_baseline_is_known_wait_and_are_released_once() -> None:
    feed: Feed[str] = Feed("r", replay_cap=10, hold_limit=10)
    assert feed.offer(entry(3)) == [] and feed.offer(entry(2)) == []
    assert not feed.is_open and feed.gap() is None
    released = feed.open(2)  # seq 2 was already in the log when the baseline was read: a duplicate
    assert [a.entry.seq for a in released if isinstance(a, Deliver)] == [3]
    assert feed.last == 3


def test_replay_from_memory_holds_live_events_and_releases_only_the_uncovered() -> None:
    room = Room()
    room.subscribe("live", None)
    for _ in range(3):
        room.publish()
    room.subscribe("late", 1)
    assert room.step("late")  # sends 2
    room.publish()  # 4 arrives mid-replay: held for "late"
    room.replay("late")
    assert room.sent["late"].seqs == [2, 3, 4]
    assert room.sent["late"].acks == [("subscribed", 3)]
    assert room.feed.phase("late") is Phase.LIVE
    room.publish()
    assert room.sent["late"].seqs == [2, 3, 4, 5] and room.sent["live"].seqs == [1, 2, 3, 4, 5]


def test_replay_from_the_log_pages_through_and_asks_nothing_once_it_reaches_the_end() -> None:
    room = Room(baseline=10)  # the recent window is empty: the log is read
    sub = room.subscribe("a", 2)
    steps = []
    while (step := room.feed.replay_step(sub)) is not None:
        steps.append(type(step).__name__)
        if isinstance(step, ReadLog):
            page = [e for e in room.log if e.seq > step.after][: step.limit]
            room.apply(room.feed.log_read(sub, page, len(room.log)))
        elif isinstance(step, SendReplay):
            room.sent["a"].seqs.append(step.entry.seq)
        if isinstance(step, Finish):
            break
    assert room.sent["a"].seqs == list(range(3, 11))
    # Pages of three: 3-5, 6-8, 9-10 (short: the last), no fourth read.
    assert steps.count("ReadLog") == 3 and steps[-1] == "Finish"


def test_an_instance_behind_the_log_catches_up_from_a_replays_read_and_sends_nothing_twice() -> None:
    room = Room()
    room.subscribe("x", None)
    late = [room.commit() for _ in range(10)]  # committed elsewhere while the bus was away
    room.subscribe("y", 0)
    room.replay("y")
    for e in late:  # the bus comes back with the publishes after all
        room.apply(room.feed.offer(e))
    room.publish()
    assert room.sent["y"].seqs == list(range(1, 12))
    assert room.sent["x"].seqs == list(range(1, 12)), "the instance took the events the replay read"


def test_too_far_behind_resyncs_and_gets_only_what_follows_the_resync() -> None:
    room = Room(replay_cap=5)
    room.subscribe("x", None)
    late = [room.commit() for _ in range(10)]
    room.subscribe("y", 0)
    room.replay("y")
    assert room.sent["y"].acks == [("resync", 10)] and room.sent["y"].seqs == []
    assert room.feed.phase("y") is Phase.AHEAD, "the instance has released nothing yet; y's floor is 10"
    for e in late:
        room.apply(room.feed.offer(e))
    room.publish()
    assert room.sent["y"].seqs == [11], "live events with seq > N follow, and only those"
    assert room.sent["x"].seqs == list(range(1, 12))
    assert room.feed.phase("y") is Phase.LIVE


def test_a_since_past_the_log_is_a_reset_database_and_resyncs() -> None:
    room = Room(baseline=3)
    room.subscribe("a", 40)
    room.replay("a")
    assert room.sent["a"].acks == [("resync", 3)]
    room.publish()
    assert room.sent["a"].seqs == [4]


def test_ahead_socket_skips_what_it_had_and_joins_the_lane_at_its_floor() -> None:
    room = Room()
    room.subscribe("x", None)
    late = [room.commit() for _ in range(4)]
    room.subscribe("y", 0)
    room.replay("y")  # the log read also hands the instance 1..4: y is not ahead after all
    assert room.feed.phase("y") is Phase.LIVE
    # Now the ahead case proper: y's resync lands past the instance, and events up to it arrive afterwards.
    room2 = Room(replay_cap=1)
    room2.subscribe("x", None)
    late = [room2.commit() for _ in range(4)]
    room2.subscribe("y", 0)
    room2.replay("y")
    assert room2.sent["y"].acks == [("resync", 4)]
    room2.apply(room2.feed.offer(late[0]))
    room2.apply(room2.feed.offer(late[1]))
    assert room2.sent["y"].seqs == [] and room2.feed.phase("y") is Phase.AHEAD
    room2.apply(room2.feed.offer(late[2]))
    room2.apply(room2.feed.offer(late[3]))  # at the floor: joins the lane, is not sent it
    assert room2.feed.phase("y") is Phase.LIVE and room2.sent["y"].seqs == []
    room2.publish()
    assert room2.sent["y"].seqs == [5] and room2.sent["x"].seqs == [1, 2, 3, 4, 5]


def test_unsubscribing_mid_replay_stops_it_while_others_keep_receiving() -> None:
    room = Room(baseline=6)
    room.subscribe("control", None)
    sub = room.subscribe("a", 0)
    assert room.step("a")  # reads the first page
    room.feed.unsubscribe("a")
    assert room.feed.replay_step(sub) is None and not room.step("a")
    room.publish()
    assert room.sent["a"].seqs == [] and room.sent["control"].seqs == [7]
    assert room.feed.sockets == 1


def test_a_resubscribe_replaces_the_replay_in_flight() -> None:
    room = Room(baseline=6)
    old = room.subscribe("a", 0)
    room.step("a")
    new = room.subscribe("a", 5)
    assert room.feed.replay_step(old) is None, "the old replay's steps are no-ops"
    assert old.phase is Phase.GONE and room.feed.get("a") is new
    room.replay("a")
    assert room.sent["a"].seqs == [6]


def test_a_replay_that_does_not_stream_is_cut_off_when_it_holds_too_much() -> None:
    room = Room(hold_limit=2)
    room.subscribe("control", None)
    room.subscribe("slow", 0)  # never steps: its client does not read
    room.publish()
    room.publish()
    assert not room.sent["slow"].closed
    room.publish()
    assert room.sent["slow"].closed and room.feed.phase("slow") is Phase.GONE
    assert room.sent["control"].seqs == [1, 2, 3]


def test_an_edit_drops_the_recent_window_so_replays_read_the_log() -> None:
    room = Room()
    room.subscribe("x", None)
    room.publish()
    room.publish("post.updated")
    assert not room.feed.recent
    sub = room.subscribe("y", 0)
    assert isinstance(room.feed.replay_step(sub), ReadLog)
    room.publish()
    assert len(room.feed.recent) == 1
    room.feed.forget_recent()  # an alias change rewrote the log elsewhere
    assert not room.feed.recent


def test_a_delivery_keeps_the_lane_it_was_released_to() -> None:
    room = Room()
    room.subscribe("a", None)
    actions = room.feed.offer(room.commit())
    room.subscribe("b", None)  # joins after the release, before the hub acts on it
    room.feed.unsubscribe("a")
    room.apply(actions)
    assert room.sent["a"].seqs == [1] and room.sent["b"].seqs == []


def test_listeners_are_those_following_live_or_ahead() -> None:
    room = Room(baseline=3)
    room.subscribe("live", None)
    room.subscribe("replaying", 0)
    assert room.feed.listeners() == ["live"] and room.feed.sockets == 2


def test_a_closed_feed_refuses_subscriptions() -> None:
    feed: Feed[str] = Feed("r", replay_cap=1, hold_limit=1)
    with pytest.raises(RuntimeError):
        feed.subscribe("a", "json", None)


# --- every interleaving that matters, by hypothesis -------------------------------------------------------------

SOCKETS = ("s0", "s1")
operation = st.one_of(
    st.tuples(st.just("commit"), st.integers(1, 4), st.booleans()),  # this many events, each published twice?
    st.tuples(st.just("deliver"), st.integers(0, 50)),  # a bus message arrives (any of those in flight)
    st.tuples(st.just("lose"), st.integers(0, 50)),  # a bus message is lost
    st.tuples(st.just("subscribe"), st.integers(0, 1), st.one_of(st.none(), st.integers(0, 12))),
    st.tuples(st.just("step"), st.integers(0, 1)),
    st.tuples(st.just("step"), st.integers(0, 1)),
    st.tuples(st.just("unsubscribe"), st.integers(0, 1)),
    st.tuples(st.just("gap")),
    st.tuples(st.just("tail")),
    st.tuples(st.just("edit")),
)


@settings(max_examples=250, deadline=None)
@given(st.lists(operation, min_size=5, max_size=60), st.integers(0, 5))
def test_every_interleaving_delivers_each_event_once_in_order_from_where_each_socket_started(
    ops: list[tuple[object, ...]], baseline: int
) -> None:
    room = Room(baseline=baseline, replay_cap=3)
    in_flight: list[Entry] = []
    start: dict[str, int | None] = {}
    for op in ops:
        kind = op[0]
        if kind == "commit":
            for _ in range(int(op[1])):  # type: ignore[call-overload]
                new = room.commit()
                in_flight.extend([new, new] if op[2] else [new])
        elif kind == "edit":
            new = room.commit("post.updated")
            in_flight.append(new)
        elif kind in ("deliver", "lose") and in_flight:
            e = in_flight.pop(int(op[1]) % len(in_flight))  # type: ignore[call-overload]
            if kind == "deliver":
                room.apply(room.feed.offer(e))
        elif kind == "subscribe":
            key = SOCKETS[int(op[1])]  # type: ignore[call-overload]
            since = op[2] if op[2] is None else min(int(op[2]), len(room.log) + 2)  # type: ignore[call-overload]
            room.sent[key] = Sent()  # a new socket each time: what an earlier one got is not this one's
            room.subscribe(key, since)
            start[key] = room.feed.last if since is None else since
        elif kind == "step":
            room.step(SOCKETS[int(op[1])])  # type: ignore[call-overload]
        elif kind == "unsubscribe":
            key = SOCKETS[int(op[1])]  # type: ignore[call-overload]
            room.feed.unsubscribe(key)
            start.pop(key, None)
        elif kind == "gap" and (gap := room.feed.gap()) is not None:
            for e in room.log[gap[0] - 1 : gap[1]]:
                room.apply(room.feed.offer(e))
        elif kind == "tail":
            room.tail_check()
    # Quiesce: whatever the bus lost, the tail check finds; every replay runs to its end.
    room.tail_check()
    for key in list(start):
        room.replay(key)
    last = len(room.log)
    assert room.feed.last == last
    for key, began in start.items():
        sent = room.sent[key]
        assert began is not None
        acks = sent.acks
        assert len(acks) == 1, f"{key}: one acknowledgement per subscription, got {acks}"
        kind, ack_seq = acks[0]
        if kind == "resync":
            # Nothing at or below the resync's seq, then everything after it.
            assert sent.seqs == list(range(ack_seq + 1, last + 1)), (key, sent, began)
        else:
            assert sent.seqs == list(range(began + 1, last + 1)), (key, sent, began)
            assert ack_seq >= began
        assert room.feed.phase(key) is Phase.LIVE
