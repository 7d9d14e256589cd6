"""Sans-I/O pieces of the websocket protocol: client frames in, decisions out. No sockets, no Redis, no database.

* `parse_client_frame` turns a text frame into a typed client frame or a `FrameError`.
* `Sequencer` turns events arriving in any order, possibly twice, into one gap-free, in-order stream per room.
* The room feed (subscribe with replay, the hand-off to live) is realtime/feed.py, built on the `Sequencer`.
* `FloodGuard` is a token bucket over client frames.
"""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

import msgspec

T = TypeVar("T")


# The largest seq a client may name: a signed 64-bit integer, what every database can compare against. Anything
# bigger cannot be a seq and is a bad frame, not a failed query.
MAX_SEQ = 2**63 - 1


class Subscribe(msgspec.Struct, tag_field="op", tag="subscribe", forbid_unknown_fields=True):
    room_id: str
    since: Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)] | None = None


class Unsubscribe(msgspec.Struct, tag_field="op", tag="unsubscribe", forbid_unknown_fields=True):
    room_id: str


class Ping(msgspec.Struct, tag_field="op", tag="ping", forbid_unknown_fields=True):
    pass


ClientFrame = Subscribe | Unsubscribe | Ping

_client_decoder = msgspec.json.Decoder(ClientFrame)

# Room ids are UUIDs; anything much longer is not one of ours and is refused before it reaches a query.
MAX_ID_LENGTH = 64


class FrameError(msgspec.Struct, frozen=True):
    code: Literal["bad_frame"]
    detail: str


def parse_client_frame(data: str | bytes) -> ClientFrame | FrameError:
    try:
        frame: ClientFrame = _client_decoder.decode(data)
    except msgspec.ValidationError as exc:
        return FrameError("bad_frame", f"frame does not match the protocol: {exc}")
    except msgspec.DecodeError:
        return FrameError("bad_frame", "frame is not valid JSON")
    except UnicodeDecodeError:
        # msgspec decodes strings itself and raises this for invalid UTF-8 (a binary frame can carry any bytes).
        return FrameError("bad_frame", "frame is not valid UTF-8")
    except RecursionError:
        return FrameError("bad_frame", "frame nests too deeply")
    if isinstance(frame, (Subscribe, Unsubscribe)) and not 0 < len(frame.room_id) <= MAX_ID_LENGTH:
        return FrameError("bad_frame", "room_id must be a room id")
    return frame


class Sequencer(Generic[T]):
    """Release items strictly in seq order, each once.

    Items may arrive out of order (publishers on different instances race to Redis) or twice (local delivery and its
    Redis echo, or a log read that overlaps the live stream). Items at or below `last` are duplicates and dropped.
    A hole below a pending item is a gap; `gap()` says which seqs to read from the log.
    """

    __slots__ = ("_pending", "last")

    def __init__(self, last: int) -> None:
        self.last = last
        self._pending: dict[int, T] = {}

    def offer(self, seq: int, item: T) -> list[tuple[int, T]]:
        if seq <= self.last or seq in self._pending:
            return []
        if seq == self.last + 1 and not self._pending:
            # The common case: the next event, nothing waiting. No dict traffic.
            self.last = seq
            return [(seq, item)]
        self._pending[seq] = item
        released: list[tuple[int, T]] = []
        while (nxt := self.last + 1) in self._pending:
            released.append((nxt, self._pending.pop(nxt)))
            self.last = nxt
        return released

    def gap(self) -> tuple[int, int] | None:
        """The inclusive range of missing seqs below the lowest pending one, or None when nothing is missing."""
        if not self._pending:
            return None
        return self.last + 1, min(self._pending) - 1

    @property
    def pending(self) -> int:
        return len(self._pending)


class FloodGuard:
    """Token bucket: `rate` frames a second on average, bursts up to `burst`."""

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._stamp = now

    def allow(self, now: float) -> bool:
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
