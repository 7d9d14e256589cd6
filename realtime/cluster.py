"""The bus past one Redis: Redis Cluster's sharded pub/sub (`SSUBSCRIBE` / `SPUBLISH`, Redis 7).

Classic `PUBLISH` on a cluster is broadcast to every node, so adding nodes adds no fan-out capacity. A shard
channel lives on the node that owns its hash slot: a publish goes to that node only, and a subscriber holds one
connection per node that owns a channel it wants. Each room's channel hashes to its own slot, so rooms spread over
the cluster's masters.

`ShardedClusterBackend` is a `litestar.channels` backend for `realtime.bus.Bus`: the bus supervises it as it does
the single-Redis backend. Any failure (a node gone, a slot moved: `MOVED`, a connection dropped) ends the backend;
the supervisor builds a new one from the cluster's current slot map, subscribes every channel again and catches
every socket up from the room log, which is the record. So a moved slot or a failover costs a catch-up, never an
event.

`REDIS_URL=redis+cluster://host:port[,host:port...]` (or `rediss+cluster://`) selects it; the hosts are startup
nodes (any of the cluster's nodes; one is enough, several survive one being down at start).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

from litestar.channels.backends.base import ChannelsBackend

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
# Seconds a reader waits for a message before looking again whether it should stop (it is woken by data at once).
READ_POLL = 1.0


class ClusterUrl:
    """`redis+cluster://[user:password@]host:port[,host:port...][/?…]` parsed into startup nodes."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in CLUSTER_SCHEMES:
            raise ValueError(f"{url!r} is not a redis+cluster:// or rediss+cluster:// URL")
        self.tls = CLUSTER_SCHEMES[parts.scheme] == "rediss"
        netloc = parts.netloc
        self.username: str | None = None
        self.password: str | None = None
        if "@" in netloc:
            auth, netloc = netloc.rsplit("@", 1)
            user, _, password = auth.partition(":")
            self.username, self.password = unquote(user) or None, unquote(password) or None
        self.nodes: list[tuple[str, int]] = []
        for item in netloc.split(","):
            host, sep, port = item.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"cluster node {item!r} in REDIS_URL must be host:port")
            self.nodes.append((host.strip("[]"), int(port)))
        if parts.path not in ("", "/"):
            raise ValueError("a Redis Cluster has one database: REDIS_URL must not name one (drop the /N)")


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def cluster_client(url: str, **options: Any) -> Any:
    """A `redis.asyncio.RedisCluster` for the URL's startup nodes (rate limits and presence use it as they use a
    single Redis: one key per command, pipelines without transactions)."""
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    parsed = ClusterUrl(url)
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in parsed.nodes],
        username=parsed.username,
        password=parsed.password,
        ssl=parsed.tls,
        **options,
    )


async def close_cluster(cluster: Any) -> None:
    """Close every node connection of a `RedisCluster`. Its own `aclose()` does nothing once a failed command has
    marked it for re-initialisation (redis-py 8), which is exactly when the bus throws a client away."""
    with contextlib.suppress(Exception):
        await cluster.aclose()
    for nodes in ("nodes_cache", "startup_nodes"):
        with contextlib.suppress(Exception):
            await cluster.nodes_manager.aclose(nodes)


def _no_retry() -> Any:
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return Retry(NoBackoff(), 0)


class _End(Exception):
    """Handed from a reader to the stream: this node's connection failed with the wrapped error."""


class ShardedClusterBackend(ChannelsBackend):
    """One pub/sub connection per master that owns a subscribed channel, each read by its own task into one queue;
    publishes are `SPUBLISH`, routed by the cluster client to the channel's owner."""

    def __init__(self, url: str, *, publisher: bool, timeout: float) -> None:
        self._url = url
        self._publisher = publisher
        self._timeout = timeout
        self._cluster: Any = None
        # node name ("host:port") -> its PubSub, and the task reading it
        self._pubsubs: dict[str, Any] = {}
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._clients: list[Any] = []
        self._queue: asyncio.Queue[tuple[str, bytes] | BaseException] = asyncio.Queue()
        self._channels: set[str] = set()

    async def on_startup(self) -> None:
        self._cluster = cluster_client(
            self._url,
            socket_connect_timeout=2,
            socket_timeout=self._timeout if self._publisher else None,
            socket_keepalive=True,
            # No silent retries behind our back: a failure must surface, so that the bus reconnects and catches up
            # from the log.
            retry=_no_retry(),
        )
        await self._cluster.initialize()

    async def on_shutdown(self) -> None:
        for task in self._readers.values():
            task.cancel()
        for task in self._readers.values():
            with contextlib.suppress(BaseException):
                await task
        for pubsub in self._pubsubs.values():
            with contextlib.suppress(Exception):
                await pubsub.aclose()
        for client in self._clients:
            with contextlib.suppress(Exception):
                await client.aclose()
        self._clients.clear()
        self._readers.clear()
        self._pubsubs.clear()
        if self._cluster is not None:
            cluster, self._cluster = self._cluster, None
            await close_cluster(cluster)

    def _by_slot(self, channels: Iterable[str]) -> dict[tuple[str, int], list[str]]:
        """Channels grouped by (owning node, slot): one SSUBSCRIBE may only name channels of one slot."""
        groups: dict[tuple[str, int], list[str]] = defaultdict(list)
        for channel in channels:
            slot = self._cluster.keyslot(channel)
            node = self._cluster.get_node_from_key(channel)
            if node is None:
                raise ConnectionError(f"no node owns slot {slot} (channel {channel!r})")
            groups[(node.name, slot)].append(channel)
        return groups

    def _pubsub_for(self, node_name: str) -> Any:
        pubsub = self._pubsubs.get(node_name)
        if pubsub is None:
            from redis.asyncio import Redis

            node = self._cluster.get_node(node_name=node_name)
            parsed = ClusterUrl(self._url)
            client = Redis(
                host=node.host,
                port=node.port,
                username=parsed.username,
                password=parsed.password,
                ssl=parsed.tls,
                socket_connect_timeout=2,
                socket_keepalive=True,
                retry=_no_retry(),
                health_check_interval=10,
            )
            self._clients.append(client)
            pubsub = client.pubsub()
            self._pubsubs[node_name] = pubsub
        return pubsub

    def _read_soon(self, node_name: str) -> None:
        if node_name not in self._readers:
            self._readers[node_name] = asyncio.create_task(
                self._read(node_name, self._pubsubs[node_name]), name=f"kindred-shard-{node_name}"
            )

    async def _read(self, node_name: str, pubsub: Any) -> None:
        try:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=READ_POLL)
                if message is None or message.get("type") != "smessage":
                    continue
                channel = message["channel"]
                channel = channel.decode() if isinstance(channel, bytes) else str(channel)
                if channel in self._channels:  # an unsubscribe is answered later than it is asked
                    self._queue.put_nowait((channel, message["data"]))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._queue.put_nowait(_End(f"shard node {node_name}: {exc!r}"))

    async def subscribe(self, channels: Iterable[str]) -> None:
        new = [c for c in channels if c not in self._channels]
        self._channels.update(new)
        for (node_name, _slot), group in self._by_slot(new).items():
            pubsub = self._pubsub_for(node_name)
            await pubsub.ssubscribe(*group)
            self._read_soon(node_name)

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        gone = [c for c in channels if c in self._channels]
        self._channels.difference_update(gone)
        for (node_name, _slot), group in self._by_slot(gone).items():
            pubsub = self._pubsubs.get(node_name)
            if pubsub is not None:
                await pubsub.sunsubscribe(*group)

    async def publish(self, data: bytes, channels: Iterable[str]) -> None:
        for channel in channels:
            await self._cluster.spublish(channel, data)

    async def stream_events(self) -> AsyncGenerator[tuple[str, Any], None]:
        while True:
            item = await self._queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    async def get_history(self, channel: str, limit: int | None = None) -> list[bytes]:
        raise NotImplementedError("shard channels keep no history: the room log is the history")

    # For operators and tests: where this backend's subscriptions are held.
    def subscriptions_by_node(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name, pubsub in self._pubsubs.items():
            counts[name] = len(pubsub.shard_channels)
        return counts


def cluster_backend_factory(url: str, timeout: float) -> Callable[..., ChannelsBackend]:
    ClusterUrl(url)  # a malformed URL fails at start, not at the first connect

    def make(publisher: bool = False) -> ChannelsBackend:
        return ShardedClusterBackend(url, publisher=publisher, timeout=timeout)

    return make
