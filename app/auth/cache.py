"""Sign-ins and room access remembered in-process (issue 20; docs/security.md "Cached sign-ins and room access").

Every request looks its token up and every post checks its room access: two queries that answer the same thing
thousands of times between the rare events that change them. These caches hold the answers, and drop them:

* on the events that change them (sign-out, revocation, password change, account deletion for tokens; removal,
  mute, role or alias change, circle closed/reopened/deleted, drop-in state for access), published on the bus's
  `caches` channel that every instance subscribes to, and dropped locally first by the instance that made the change;
* when they are old (`TOKEN_TTL`, `ACCESS_TTL`: a safety net, not the mechanism);
* when there are too many (least recently used first);
* when the bus is not connected: an instance that cannot hear invalidations serves nothing from the cache, and what
  it stored under an earlier connection is not served after a reconnect (each entry carries the bus's connection
  epoch; the caches are flushed on reconnect as well).

A lookup that was in flight while an invalidation arrived does not store its answer (the generation check), so a
row read just before a revocation committed cannot outlive the revocation.
"""

from __future__ import annotations

import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from datetime import datetime
from typing import Generic, Protocol, TypeVar

import msgspec

from db.rows import Member, RoomRow

V = TypeVar("V")
K = TypeVar("K", bound=Hashable)

# Seconds an answer may be served without being asked again, whatever the bus says (a safety net).
TOKEN_TTL = 30.0
ACCESS_TTL = 10.0
# Entries per cache: a token entry is ~300 bytes, an access entry ~1 KiB.
TOKEN_ENTRIES = 20_000
ACCESS_ENTRIES = 20_000


class Lru(Generic[K, V]):
    """A mapping bounded in size (least recently used out first) and in age (`ttl` seconds since stored). Pure: the
    clock is passed in, so tests drive it."""

    def __init__(self, capacity: int, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.ttl = ttl
        self._clock = clock
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K) -> V | None:
        found = self._items.get(key)
        if found is None:
            return None
        stored, value = found
        if self._clock() - stored >= self.ttl:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = (self._clock(), value)
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def drop_where(self, doomed: Callable[[V], bool]) -> int:
        gone = [key for key, (_at, value) in self._items.items() if doomed(value)]
        for key in gone:
            del self._items[key]
        return len(gone)

    def clear(self) -> None:
        self._items.clear()


class SignIn(msgspec.Struct, frozen=True):
    """What a token resolves to: the account, the sign-in's id, and when it ends."""

    account_id: uuid.UUID
    token_id: uuid.UUID
    expires_at: datetime


class Access(msgspec.Struct, frozen=True):
    """An account's access to a room, as the post path checks it. `room.last_seq` is not kept fresh: callers of the
    cached lookup must not read it."""

    room: RoomRow
    member: Member


class Connection(Protocol):
    """What the caches need of the bus: whether it is connected, and which connection this is."""

    @property
    def is_up(self) -> bool: ...

    @property
    def epoch(self) -> int: ...


class _Entry(msgspec.Struct, Generic[V], frozen=True):
    epoch: int
    account_id: uuid.UUID
    value: V
    token_id: uuid.UUID | None = None
    circle_id: uuid.UUID | None = None


# Every instance's caches in this process, so that a revocation written here (app/auth/tokens.py) is forgotten here
# before anything else runs, whoever wrote it; the bus tells the other processes.
_IN_PROCESS: weakref.WeakSet[AuthCaches] = weakref.WeakSet()


def tokens_revoked_here(account_id: uuid.UUID | None, token_id: uuid.UUID | None) -> None:
    """Sign-ins were deleted by this process: every cache in it forgets them now (the bus message follows)."""
    for caches in list(_IN_PROCESS):
        caches.drop_tokens(account_id, token_id)


class AuthCaches:
    """This instance's token and access caches. `enabled=False` (KINDRED_AUTH_CACHE=0) makes every lookup a query."""

    def __init__(
        self,
        *,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
        token_entries: int = TOKEN_ENTRIES,
        access_entries: int = ACCESS_ENTRIES,
    ) -> None:
        self.enabled = enabled
        self.bus: Connection | None = None
        self._tokens: Lru[Hashable, _Entry[SignIn]] = Lru(token_entries, TOKEN_TTL, clock)
        self._access: Lru[tuple[uuid.UUID, uuid.UUID], _Entry[Access]] = Lru(access_entries, ACCESS_TTL, clock)
        # Bumped by every invalidation: a lookup that straddles one does not store its answer.
        self._generation = 0
        # For /healthz and the tests: queries asked (misses), answers served from memory (hits), invalidations heard.
        self.stats = {"token_lookups": 0, "token_hits": 0, "access_lookups": 0, "access_hits": 0, "invalidations": 0}
        _IN_PROCESS.add(self)

    # --- serving -----------------------------------------------------------------------------------------------------

    def _epoch(self) -> int | None:
        """The bus connection entries may be served under, or None when nothing may be served from memory."""
        bus = self.bus
        if not self.enabled or bus is None or not bus.is_up:
            return None
        return bus.epoch

    async def _cached(
        self,
        cache: Lru[K, _Entry[V]],
        key: K,
        kind: str,
        load: Callable[[], Awaitable[_Entry[V] | None]],
    ) -> _Entry[V] | None:
        epoch = self._epoch()
        if epoch is not None:
            hit = cache.get(key)
            if hit is not None and hit.epoch == epoch:
                self.stats[f"{kind}_hits"] += 1
                return hit
        generation = self._generation
        self.stats[f"{kind}_lookups"] += 1
        entry = await load()
        # Stored only if nothing was invalidated meanwhile and the bus is (still) the one it was.
        if entry is not None and epoch is not None and generation == self._generation and self._epoch() == epoch:
            cache.put(key, msgspec.structs.replace(entry, epoch=epoch))
        return entry

    async def sign_in(self, key: Hashable, load: Callable[[], Awaitable[SignIn | None]]) -> SignIn | None:
        """The sign-in under `key` (a token digest, or a token id): from memory when it may be, else `load()`.
        Only sign-ins that exist are kept; an unknown token is asked about every time."""

        async def entry() -> _Entry[SignIn] | None:
            found = await load()
            if found is None:
                return None
            return _Entry(epoch=0, account_id=found.account_id, token_id=found.token_id, value=found)

        hit = await self._cached(self._tokens, key, "token", entry)
        return hit.value if hit is not None else None

    async def access(
        self, account_id: uuid.UUID, room_id: uuid.UUID, load: Callable[[], Awaitable[tuple[RoomRow, Member] | None]]
    ) -> tuple[RoomRow, Member] | None:
        """The account's (room, membership) for the room, as `db.queries.room_access` says; a refusal is not kept."""

        async def entry() -> _Entry[Access] | None:
            found = await load()
            if found is None:
                return None
            room, member = found
            return _Entry(epoch=0, account_id=account_id, circle_id=room.circle, value=Access(room, member))

        hit = await self._cached(self._access, (account_id, room_id), "access", entry)
        if hit is None:
            return None
        return hit.value.room, hit.value.member

    # --- invalidation ------------------------------------------------------------------------------------------------

    def drop_tokens(self, account_id: uuid.UUID | None, token_id: uuid.UUID | None) -> None:
        """One sign-in ended (`token_id`), or all of the account's (`token_id` None); both None: every sign-in."""
        self._generation += 1
        self.stats["invalidations"] += 1
        self._tokens.drop_where(
            lambda e: (
                (account_id is None or e.account_id == account_id) and (token_id is None or e.token_id == token_id)
            )
        )

    def drop_access(self, *, account_id: uuid.UUID | None = None, circle_id: uuid.UUID | None = None) -> None:
        """Access changed: of the account (in `circle_id`, or everywhere), or of everyone in the circle."""
        self._generation += 1
        self.stats["invalidations"] += 1
        self._access.drop_where(
            lambda e: (
                (account_id is None or e.account_id == account_id) and (circle_id is None or e.circle_id == circle_id)
            )
        )

    def flush(self) -> None:
        """Forget everything (the bus came back: what was said while it was away was not heard)."""
        self._generation += 1
        self._tokens.clear()
        self._access.clear()

    def sizes(self) -> dict[str, int]:
        return {"token_entries": len(self._tokens), "access_entries": len(self._access)}
