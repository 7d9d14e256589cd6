"""The bus over real Redis: many subscriptions made at once all receive (a regression test for redis-py's lazy,
unguarded PubSub connect, under which concurrent first subscribes could land on a connection nobody reads)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from realtime.bus import Bus, redis_backend_factory
from tests.conftest import REDIS_URL, Templates

pytestmark = pytest.mark.anyio


async def test_concurrent_subscriptions_all_receive(templates: Templates) -> None:
    await templates.postgres()  # the Redis variant only: skips loudly (or fails in CI) without the services
    received: dict[str, bytes] = {}

    async def nothing() -> None:
        return None

    listener = Bus(redis_backend_factory(REDIS_URL), lambda channel, data: received.update({channel: data}), nothing)
    sender = Bus(redis_backend_factory(REDIS_URL), lambda channel, data: None, nothing)
    await listener.start()
    await sender.start()
    try:
        channels = [f"kt-bus-{uuid.uuid4().hex}" for _ in range(50)]
        await asyncio.gather(*(listener.subscribe([c]) for c in channels))
        await asyncio.sleep(0.2)
        for c in channels:
            assert await sender.publish(c.encode(), [c])
        for _ in range(100):
            if len(received) == len(channels):
                break
            await asyncio.sleep(0.05)
        assert sorted(received) == sorted(channels)
    finally:
        await listener.stop()
        await sender.stop()
