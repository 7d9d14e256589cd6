"""Types the realtime modules share, in a leaf module: the hub, the connections and the feed import these, and this
imports nothing of theirs, so none of them needs another's module to name a type."""

from __future__ import annotations

from typing import Literal, NamedTuple, Protocol

import msgspec

from realtime.events import Membership

Variant = Literal["json", "html"]

# Close codes (RFC 6455 and the IANA registry).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008  # abuse: frame floods
CLOSE_TOO_BIG = 1009  # a frame over the size limit
CLOSE_TRY_AGAIN = 1013  # too slow to keep up, or the server is shutting down: reconnect with `since`


class Entry(NamedTuple):
    """One room event as the hub handles it: its seq, its name (read from the head or the log, never searched for in
    the bytes) and its wire envelope, which is exactly the JSON frame a socket is sent."""

    seq: int
    name: str
    envelope: bytes


class SocketLimits(msgspec.Struct, frozen=True):
    frames_per_second: int
    send_queue_frames: int
    max_frame_bytes: int
    replay_cap: int
    sockets_per_account: int
    # Characters a socket may have queued, live frames and replies alike; past this it is closed 1013. A replay is
    # streamed into the queue only while it holds less than a quarter of this, so replays never come near it.
    send_queue_bytes: int = 4 * 1024 * 1024


class Access(msgspec.Struct, frozen=True):
    """What a subscription is allowed on: the room's circle and who the account is there."""

    circle_id: str
    who: Membership
    # The room is a drop-in's: its presence frames carry the raised hands (other rooms skip that query).
    dropin: bool = False


class Socket(Protocol):
    """What the hub needs of one websocket (realtime.connection.Connection is the one implementation)."""

    key: str
    account_id: str
    token_id: str | None
    variant: Variant
    rooms: dict[str, Access]

    def __hash__(self) -> int: ...

    @property
    def closing(self) -> bool: ...

    def push(self, frame: str) -> None: ...

    def push_reply(self, frame: str) -> None: ...

    def reply(self, message: msgspec.Struct) -> None: ...

    def close_soon(self, code: int, reason: str) -> None: ...

    async def drained(self) -> bool: ...


class HubPort(Protocol):
    """What a connection needs of the hub: the limits it is held to, a counter, and the three calls its reader makes.
    The hub implements this; realtime.connection depends on this Protocol, not on realtime.hub."""

    limits: SocketLimits
    stats: dict[str, int]

    async def subscribe(self, conn: Socket, room_id: str, since: int | None) -> None: ...

    async def unsubscribe(self, conn: Socket, room_id: str, *, quiet: bool = False) -> None: ...

    async def detach(self, conn: Socket) -> None: ...
