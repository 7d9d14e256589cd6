"""The bus over real Redis: many subscriptions made at once all receive (a regression test for redis-py's lazy,
unguarded PubSub connect, under which concurrent first subscribes could land on a connection nobody reads)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from redis.asyncio import Redis

from realtime.bus import Bus, redis_backend_factory
from tests.client import DEADLINE
from tests.conftest import REDIS_URL, Templates

pytestmark = pytest.mark.anyio


async def test_concurrent_subscriptions_all_receive(templates: Templates) -> None:
    await templates.postgres()  # the Redis variant only: skips loudly (or fails in CI) without the services
    received: dict[str, bytes] = {}

    async def nothing() -> None:
        return None

    all_in = asyncio.Event()

    def deliver(channel: str, data: bytes) -> None:
        received[channel] = data
        if len(received) == len(channels):
            all_in.set()

    channels = [f"kt-bus-{uuid.uuid4().hex}" for _ in range(50)]
    listener = Bus(redis_backend_factory(REDIS_URL), deliver, nothing)
    sender = Bus(redis_backend_factory(REDIS_URL), lambda channel, data: None, nothing)
    await listener.start()
    await sender.start()
    try:
        await asyncio.gather(*(listener.subscribe([c]) for c in channels))
        # Redis confirms a SUBSCRIBE on its own time: wait until it counts a subscriber on every channel.
        probe = Redis.from_url(REDIS_URL)
        try:
            deadline = asyncio.get_running_loop().time() + DEADLINE
            while not all(n == 1 for _, n in await probe.pubsub_numsub(*channels)):
                assert asyncio.get_running_loop().time() < deadline, "Redis never counted every subscription"
                await asyncio.sleep(0.02)
        finally:
            await probe.aclose()
        for c in channels:
            assert await sender.publish(c.encode(), [c])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_in.wait(), DEADLINE)
        assert sorted(received) == sorted(channels)
    finally:
        await listener.stop()
        await sender.stop()
