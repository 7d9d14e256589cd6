"""Sans-I/O pieces of the websocket protocol: client frames in, decisions out. No sockets, no Redis, no database.

* `parse_client_frame` turns a text frame into a typed client frame or a `FrameError` (which names the op and the
  `client_id` of a `post` frame it could not take, so the client can tell which of its posts was refused).
* `Sequencer` turns events arriving in any order, possibly twice, into one gap-free, in-order stream per room.
* The room feed (subscribe with replay, the hand-off to live) is realtime/feed.py, built on the `Sequencer`.
* `FloodGuard` is a token bucket over client frames.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

import msgspec

from realtime.events import PostKind, ReplyWish

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


# Room ids are UUIDs; anything much longer is not one of ours and is refused before it reaches a query.
MAX_ID_LENGTH = 64
# The post table's client_id column, and the HTTP API's bound on it.
MAX_CLIENT_ID = 64
_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]


class PostOp(msgspec.Struct, tag_field="op", tag="post", forbid_unknown_fields=True, kw_only=True):
    """Extension (docs/contract-notes.md): create a post over the socket, as `POST /rooms/{room_id}/posts` does.

    The fields and their bounds are the HTTP body's (`app.schemas.PostCreate`); `client_id` is required here, since
    it is what the answer (`posted` or `error`) is matched by, and it makes a repeat return the same post. The body's
    length, the content note's folding and the experiment's record are checked by the service, as for HTTP.
    """

    room_id: _Id
    client_id: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_CLIENT_ID)]
    body: str = ""
    kind: PostKind = "reflection"
    parent_id: _Id | None = None
    content_note: Annotated[str, msgspec.Meta(max_length=80)] | None = None
    reply_wish: ReplyWish | None = None
    # The lab's record, left undecoded here: the application decodes it with the HTTP API's own struct (this module
    # knows no app types). Empty when absent.
    experiment: msgspec.Raw = msgspec.Raw(b"")


ClientFrame = Subscribe | Unsubscribe | Ping | PostOp

_client_decoder = msgspec.json.Decoder(ClientFrame)


class _Probe(msgspec.Struct):
    """What a frame that failed to parse still says about itself: which op, and for a post, its client_id."""

    op: Any = None
    client_id: Any = None


_probe_decoder = msgspec.json.Decoder(_Probe)


class FrameError(msgspec.Struct, frozen=True):
    code: Literal["bad_frame"]
    detail: str
    # Set for a frame that says it is a `post` (with its client_id when that is a string a post could carry).
    op: str | None = None
    client_id: str | None = None


def _refused(data: str | bytes, detail: str) -> FrameError:
    try:
        probe = _probe_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return FrameError("bad_frame", detail)
    if probe.op != "post":
        return FrameError("bad_frame", detail)
    cid = probe.client_id
    return FrameError("bad_frame", detail, "post", cid if isinstance(cid, str) and len(cid) <= MAX_CLIENT_ID else None)


def parse_client_frame(data: str | bytes) -> ClientFrame | FrameError:
    try:
        frame: ClientFrame = _client_decoder.decode(data)
    except msgspec.ValidationError as exc:
        return _refused(data, f"frame does not match the protocol: {exc}")
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
