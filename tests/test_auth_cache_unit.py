"""The sign-in and room-access caches as pure logic (app/auth/cache.py): size and age bounds, invalidation, and the
rules that keep a revocation immediate (nothing served while the bus is away or from an earlier connection, nothing
stored by a lookup that straddled an invalidation)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.auth.cache import AuthCaches, Lru, SignIn
from db.rows import Member, RoomRow

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeBus:
    """Only what the caches read of the bus: up or not, and which connection."""

    def __init__(self) -> None:
        self.is_up = True
        self.epoch = 1


def test_lru_keeps_at_most_capacity_dropping_the_least_recently_used() -> None:
    lru: Lru[str, int] = Lru(2, ttl=60, clock=Clock())
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # "a" is now the most recently used
    lru.put("c", 3)
    assert (lru.get("a"), lru.get("b"), lru.get("c"), len(lru)) == (1, None, 3, 2)


def test_lru_entries_expire_after_their_ttl() -> None:
    clock = Clock()
    lru: Lru[str, int] = Lru(10, ttl=5, clock=clock)
    lru.put("a", 1)
    clock.now += 4.9
    assert lru.get("a") == 1, "the control: still young"
    clock.now += 0.1
    assert lru.get("a") is None
    assert len(lru) == 0


def test_lru_drop_where_and_clear() -> None:
    lru: Lru[str, int] = Lru(10, ttl=60, clock=Clock())
    for i, key in enumerate("abcd"):
        lru.put(key, i)
    assert lru.drop_where(lambda v: v % 2 == 0) == 2
    assert [lru.get(k) for k in "abcd"] == [None, 1, None, 3]
    lru.clear()
    assert len(lru) == 0
    with pytest.raises(ValueError):
        Lru(0, ttl=1)


def sign_in(account: uuid.UUID | None = None) -> SignIn:
    return SignIn(
        account_id=account or uuid.uuid4(), token_id=uuid.uuid4(), expires_at=datetime.now(UTC) + timedelta(days=1)
    )


class Loader:
    """Counts the queries the cache asks for."""

    def __init__(self, value: SignIn | None) -> None:
        self.value = value
        self.calls = 0

    async def __call__(self) -> SignIn | None:
        self.calls += 1
        return self.value


def caches(bus: FakeBus | None, clock: Clock | None = None, access_entries: int = 100) -> AuthCaches:
    made = AuthCaches(clock=clock or Clock(), access_entries=access_entries)
    made.bus = bus
    return made


async def test_a_sign_in_is_asked_once_then_served_from_memory() -> None:
    c = caches(FakeBus())
    load = Loader(sign_in())
    assert await c.sign_in("k", load) == load.value
    assert await c.sign_in("k", load) == load.value
    assert load.calls == 1
    assert (c.stats["token_lookups"], c.stats["token_hits"]) == (1, 1)


async def test_unknown_tokens_are_not_remembered() -> None:
    c = caches(FakeBus())
    load = Loader(None)
    assert await c.sign_in("k", load) is None
    assert await c.sign_in("k", load) is None
    assert load.calls == 2


async def test_disabled_caches_always_ask() -> None:
    c = AuthCaches(enabled=False)
    c.bus = FakeBus()
    load = Loader(sign_in())
    await c.sign_in("k", load)
    await c.sign_in("k", load)
    assert load.calls == 2


async def test_dropping_tokens_by_id_by_account_and_all() -> None:
    c = caches(FakeBus())
    account = uuid.uuid4()
    one, two, other = sign_in(account), sign_in(account), sign_in()
    loads = {"one": Loader(one), "two": Loader(two), "other": Loader(other)}
    for key, load in loads.items():
        await c.sign_in(key, load)
    c.drop_tokens(None, one.token_id)
    for key, load in loads.items():
        await c.sign_in(key, load)
    assert {k: v.calls for k, v in loads.items()} == {"one": 2, "two": 1, "other": 1}
    c.drop_tokens(account, None)
    for key, load in loads.items():
        await c.sign_in(key, load)
    assert {k: v.calls for k, v in loads.items()} == {"one": 3, "two": 2, "other": 1}
    c.drop_tokens(None, None)
    await c.sign_in("other", loads["other"])
    assert loads["other"].calls == 2


async def test_nothing_is_served_while_the_bus_is_down_nor_from_an_earlier_connection() -> None:
    bus = FakeBus()
    c = caches(bus)
    load = Loader(sign_in())
    await c.sign_in("k", load)
    bus.is_up = False
    await c.sign_in("k", load)
    await c.sign_in("k", load)
    assert load.calls == 3, "while the bus is away every lookup asks"
    bus.is_up, bus.epoch = True, 2
    await c.sign_in("k", load)
    assert load.calls == 4, "what was learnt under connection 1 is not served under connection 2"
    await c.sign_in("k", load)
    assert load.calls == 4, "the control: learnt under connection 2, served under it"
    c2 = caches(None)
    await c2.sign_in("k", load)
    await c2.sign_in("k", load)
    assert load.calls == 6, "no bus yet: nothing served from memory"


async def test_a_lookup_that_straddles_an_invalidation_does_not_store_its_answer() -> None:
    c = caches(FakeBus())
    value = sign_in()
    started, release = asyncio.Event(), asyncio.Event()
    calls = 0

    async def slow() -> SignIn:
        nonlocal calls
        calls += 1
        started.set()
        await release.wait()
        return value

    task = asyncio.create_task(c.sign_in("k", slow))
    await started.wait()
    c.drop_tokens(value.account_id, value.token_id)  # the revocation commits while the row is being read
    release.set()
    assert await task == value
    await c.sign_in("k", slow)
    assert calls == 2, "the answer read before the revocation was not kept"


async def test_ttl_bounds_how_long_an_answer_is_served() -> None:
    clock = Clock()
    c = caches(FakeBus(), clock)
    load = Loader(sign_in())
    await c.sign_in("k", load)
    clock.now += 29
    await c.sign_in("k", load)
    assert load.calls == 1
    clock.now += 60
    await c.sign_in("k", load)
    assert load.calls == 2


async def test_access_is_dropped_by_account_by_circle_and_flush() -> None:
    c = caches(FakeBus(), access_entries=3)
    circle, other_circle = uuid.uuid4(), uuid.uuid4()
    alice, bob = uuid.uuid4(), uuid.uuid4()
    room, other_room = uuid.uuid4(), uuid.uuid4()
    calls: dict[tuple[uuid.UUID, uuid.UUID], int] = {}

    def loader(account: uuid.UUID, rid: uuid.UUID, cid: uuid.UUID) -> object:
        async def load() -> tuple[RoomRow, Member]:
            calls[(account, rid)] = calls.get((account, rid), 0) + 1
            member = Member(id=uuid.uuid4(), circle=cid, account=account, alias="a", role="member")
            return RoomRow(id=rid, circle=cid, name="r"), member

        return load

    async def ask(account: uuid.UUID, rid: uuid.UUID, cid: uuid.UUID) -> None:
        found = await c.access(account, rid, loader(account, rid, cid))  # type: ignore[arg-type]
        assert found is not None and found[1].account == account

    pairs = [(alice, room, circle), (bob, room, circle), (alice, other_room, other_circle)]
    for pair in pairs:
        await ask(*pair)
        await ask(*pair)
    assert list(calls.values()) == [1, 1, 1]
    c.drop_access(account_id=alice, circle_id=circle)
    for pair in pairs:
        await ask(*pair)
    assert list(calls.values()) == [2, 1, 1]
    c.drop_access(circle_id=circle)
    for pair in pairs:
        await ask(*pair)
    assert list(calls.values()) == [3, 2, 1]
    c.drop_access(account_id=alice)
    for pair in pairs:
        await ask(*pair)
    assert list(calls.values()) == [4, 2, 2]
    c.flush()
    for pair in pairs:
        await ask(*pair)
    assert list(calls.values()) == [5, 3, 3]
    # Bounded: a fourth pair pushes out the least recently used (the first), and only it.
    await ask(bob, other_room, other_circle)
    assert c.sizes()["access_entries"] == 3
    await ask(*pairs[2])
    await ask(*pairs[0])
    assert list(calls.values()) == [6, 3, 3, 1]


async def test_refused_access_is_not_remembered() -> None:
    c = caches(FakeBus())
    calls = 0

    async def refuse() -> None:
        nonlocal calls
        calls += 1

    assert await c.access(uuid.uuid4(), uuid.uuid4(), refuse) is None
    assert calls == 1
