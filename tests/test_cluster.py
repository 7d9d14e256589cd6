"""The bus on Redis Cluster's sharded pub/sub, against a real three-master cluster this module starts: the same
promises the single-Redis and memory buses keep (delivery, unsubscribe, a node restarted, no loss via the log)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.settings import ConfigError, load_settings
from realtime.bus import PUBLISH_TIMEOUT, Bus
from realtime.cluster import ClusterUrl, close_cluster, cluster_backend_factory, cluster_client
from tests.client import DEADLINE, ApiClient, make_circle
from tests.conftest import Templates
from tests.procs import KindredProcess
from tests.redis_cluster import RedisCluster

pytestmark = pytest.mark.anyio


# --- the URL (pure) -----------------------------------------------------------------------------------------------


def test_cluster_urls_name_their_startup_nodes() -> None:
    url = ClusterUrl("redis+cluster://kindred:s%40cret@10.0.0.1:7000,10.0.0.2:7001")
    assert url.nodes == [("10.0.0.1", 7000), ("10.0.0.2", 7001)]
    assert (url.username, url.password, url.tls) == ("kindred", "s@cret", False)
    assert ClusterUrl("rediss+cluster://[::1]:7000/").tls and ClusterUrl("rediss+cluster://[::1]:7000").nodes == [
        ("::1", 7000)
    ]
    for bad in ("redis+cluster://host", "redis+cluster://host:port", "redis+cluster://h:7000/1", "redis://h:1"):
        with pytest.raises(ValueError):
            ClusterUrl(bad)


def test_settings_refuse_a_malformed_cluster_url(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/k.sqlite3", "KINDRED_DATA_DIR": str(tmp_path)}
    assert load_settings({**env, "REDIS_URL": "redis+cluster://127.0.0.1:7000"}).redis_url
    with pytest.raises(ConfigError, match="host:port"):
        load_settings({**env, "REDIS_URL": "redis+cluster://127.0.0.1"})
    with pytest.raises(ConfigError, match="redis\\+cluster://"):
        load_settings({**env, "REDIS_URL": "memcached://127.0.0.1:11211"})


# --- against a real cluster ----------------------------------------------------------------------------------------


@pytest.fixture
async def cluster(templates: Templates, tmp_path: Path) -> AsyncIterator[RedisCluster]:
    await templates.postgres()  # a services test: skips loudly (fails in CI) without them, like the others
    nodes = RedisCluster(tmp_path / "cluster")
    try:
        await nodes.start()
        yield nodes
    finally:
        nodes.stop()


class Listener:
    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.changed = asyncio.Event()
        self.reconnected = 0

    def __call__(self, channel: str, data: bytes) -> None:
        self.received.append((channel, data))
        self.changed.set()

    async def after_reconnect(self) -> None:
        self.reconnected += 1
        self.changed.set()

    async def until(self, what: str, check: object) -> None:
        deadline = asyncio.get_running_loop().time() + DEADLINE
        while not check():  # type: ignore[operator]
            left = deadline - asyncio.get_running_loop().time()
            assert left > 0, f"never happened: {what}"
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)


async def shard_channels(cluster: RedisCluster) -> dict[int, set[str]]:
    """What each node itself says it holds subscriptions for (PUBSUB SHARDCHANNELS)."""
    from redis.asyncio import Redis

    held: dict[int, set[str]] = {}
    for port in cluster.procs:
        client = Redis(host="127.0.0.1", port=port)
        try:
            held[port] = {c.decode() for c in await client.execute_command("PUBSUB", "SHARDCHANNELS")}  # type: ignore[no-untyped-call]
        finally:
            await client.aclose()
    return held


async def until_held(cluster: RedisCluster, channels: set[str]) -> dict[int, set[str]]:
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while True:
        held = await shard_channels(cluster)
        if set().union(*held.values()) >= channels:
            return held
        assert asyncio.get_running_loop().time() < deadline, f"never subscribed on the cluster: {held}"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def buses(url: str, listener: Listener) -> AsyncIterator[tuple[Bus, Bus]]:
    async def nothing() -> None:
        return None

    make = cluster_backend_factory(url, PUBLISH_TIMEOUT)
    receiving = Bus(make, listener, listener.after_reconnect, name="redis-cluster")
    sending = Bus(make, lambda channel, data: None, nothing, name="redis-cluster")
    await receiving.start()
    await sending.start()
    try:
        assert receiving.is_up and sending.is_up
        yield receiving, sending
    finally:
        await receiving.stop()
        await sending.stop()


async def test_sharded_bus_delivers_from_every_node_and_unsubscribes(cluster: RedisCluster) -> None:
    listener = Listener()
    async with buses(cluster.url, listener) as (receiving, sending):
        channels = [f"kt-shard-{uuid.uuid4().hex}" for _ in range(60)]
        await receiving.subscribe(channels)
        held = await until_held(cluster, set(channels))
        assert all(held[port] for port in cluster.ports), f"60 channels spread over all three masters: {held}"

        for c in channels:
            assert await sending.publish(c.encode(), [c])
        await listener.until("every channel's message", lambda: len(listener.received) >= len(channels))
        assert sorted(listener.received) == sorted((c, c.encode()) for c in channels), "each exactly once"

        # Unsubscribe half; the other half is the control that must still arrive.
        gone, kept = channels[:30], channels[30:]
        await receiving.unsubscribe(gone)
        deadline = asyncio.get_running_loop().time() + DEADLINE
        while set(gone) & set().union(*(await shard_channels(cluster)).values()):
            assert asyncio.get_running_loop().time() < deadline, "the unsubscribes never reached the nodes"
            await asyncio.sleep(0.02)
        listener.received.clear()
        for c in channels:
            assert await sending.publish(b"again", [c])
        await listener.until("the kept half again", lambda: len(listener.received) >= len(kept))
        # The sender published in order; SPUBLISH to an unsubscribed channel reaches nobody, so by the time the
        # last kept channel's message is in, none of the others came.
        assert sorted(c for c, _ in listener.received) == sorted(kept)


async def test_a_restarted_node_costs_a_reconnect_not_a_message(cluster: RedisCluster) -> None:
    listener = Listener()
    async with buses(cluster.url, listener) as (receiving, sending):
        channels = [f"kt-shard-{uuid.uuid4().hex}" for _ in range(30)]
        await receiving.subscribe(channels)
        held = await until_held(cluster, set(channels))
        victim = next(port for port in cluster.ports if held[port])

        cluster.kill(victim)
        await listener.until("the bus noticing the node is gone", lambda: not receiving.is_up)
        await cluster.restart(victim)
        await listener.until("a reconnect with every channel again", lambda: listener.reconnected >= 1)
        await until_held(cluster, set(channels))
        for c in channels:
            # The sender learns of the restart at its first publish to that node and reconnects; publish again then.
            if not await sending.publish(c.encode(), [c]):
                assert await sending.wait_up(DEADLINE)
                assert await sending.publish(c.encode(), [c])
        await listener.until("every channel's message", lambda: len(listener.received) >= len(channels))
        assert sorted(listener.received) == sorted((c, c.encode()) for c in channels)


async def test_two_instances_over_the_cluster_lose_nothing_when_a_node_restarts(
    templates: Templates, cluster: RedisCluster
) -> None:
    pg_url = await templates.postgres()
    prefix = f"kc{uuid.uuid4().hex[:8]}"
    procs = [KindredProcess(pg_url, cluster.url, prefix) for _ in range(2)]
    await asyncio.gather(*(p.start() for p in procs))
    api_a, api_b = (ApiClient(p.url, p.ws_url) for p in procs)
    try:
        assert (await api_a.http.get("/healthz")).json()["bus"] == "up"
        c = await make_circle(api_a, members=2)
        poster, reader = c.members
        sock = await api_b.ws(reader.token)
        await sock.subscribe(c.room_id)
        await poster.post(c.room_id, "before")
        assert [f["data"]["body"] for f in await sock.events(c.room_id, 1)] == ["before"]

        # Kill the master that owns this room's shard channel; post while it is down (the log has it), restart it.
        router = cluster_client(cluster.url)
        try:
            await router.initialize()
            port = int(router.get_node_from_key(f"{prefix}:room:{c.room_id}").port)
        finally:
            await close_cluster(router)
        cluster.kill(port)
        for i in range(3):
            await poster.post(c.room_id, f"while a node is down {i}")
        await cluster.restart(port)
        await poster.post(c.room_id, "after")
        frames = await sock.events(c.room_id, 4)
        assert [f["seq"] for f in frames] == [2, 3, 4, 5], "in order, none lost, none twice"
        assert [f["data"]["body"] for f in frames][-1] == "after"
    finally:
        await api_a.aclose()
        await api_b.aclose()
        for p in procs:
            p.stop()
