"""The doorbell between instances: a `litestar.channels` backend under a supervisor.

We use Litestar's channel backends (memory, Redis pub/sub) but not its `ChannelsPlugin` fan-out, because that
gives every subscriber its own queue of raw bytes (one decode per socket), its bounded strategies drop silently,
and its subscriber task dies without notice when Redis goes away. Here one consumer per instance reads the backend
and hands each message to the hub, which decodes it once. When the backend fails, the supervisor reconnects with
backoff, re-subscribes every channel in use, and tells the hub, which then catches its sockets up from the room
log: Redis pub/sub is at-most-once, so what was said during the outage is read back from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable

from litestar.channels.backends.base import ChannelsBackend
from litestar.channels.backends.memory import MemoryChannelsBackend

log = logging.getLogger("kindred.bus")

OnMessage = Callable[[str, bytes], None]
OnReconnect = Callable[[], Awaitable[None]]

# Seconds between reconnect attempts: quick at first, never slower than the cap.
RECONNECT_INITIAL = 0.2
RECONNECT_CAP = 2.0
# A connection that failed sooner than this after it came up does not earn a quick retry: each reconnect subscribes
# every channel again and catches every socket up from the log, so a starved instance that keeps timing out must not
# do that five times a second (docs/scaling.md, S8).
RECONNECT_STABLE_AFTER = 10.0
# Seconds a publish may take before Redis counts as down. Publishing happens inside the request that made the change
# (after commit): a Redis that hangs must cost a writer at most this, and the event is safe in the log regardless.
PUBLISH_TIMEOUT = 0.5


def reconnect_delay(previous: float, up_for: float) -> float:
    """The wait before the first attempt after a connection that lasted `up_for` seconds: quick again after a stable
    connection, doubled (to the cap) after a short-lived one."""
    if up_for >= RECONNECT_STABLE_AFTER:
        return RECONNECT_INITIAL
    return min(RECONNECT_CAP, previous * 2)


class Bus:
    """Subscribe to channels, publish to them, and deliver what arrives to one callback."""

    def __init__(
        self,
        make_backend: Callable[..., ChannelsBackend],
        on_message: OnMessage,
        on_reconnect: OnReconnect,
        *,
        name: str = "memory",
    ) -> None:
        self._make_backend = make_backend
        self._on_message = on_message
        self._on_reconnect = on_reconnect
        self.name = name
        # Channels this instance needs; re-subscribed as a whole after every reconnect.
        self._channels: set[str] = set()
        self._backend: ChannelsBackend | None = None
        self._publisher: ChannelsBackend | None = None
        self._task: asyncio.Task[None] | None = None
        self._up = asyncio.Event()
        # Set by whoever first sees the backend fail (a publish, a subscribe, the reader), to wake the supervisor.
        self._failed = asyncio.Event()
        # One subscription change at a time. redis-py's PubSub opens its connection lazily and unguarded: two first
        # subscribes at once each take a connection, the second replaces the first, and whatever the first subscribed
        # arrives on a connection nobody reads (seen under a connect storm: every event came late via the tail check).
        self._subscribing = asyncio.Lock()
        self.reconnects = 0
        # Which connection this is: bumped each time the backend is (re)connected. What was learnt under an earlier
        # connection may have been invalidated while nobody listened (app/auth/cache.py).
        self.epoch = 0

    @property
    def is_up(self) -> bool:
        return self._up.is_set()

    @property
    def is_local(self) -> bool:
        """True when every subscriber is in this process (memory backend), so local delivery is the delivery."""
        return isinstance(self._backend, MemoryChannelsBackend)

    async def start(self) -> None:
        try:
            await self._connect()
        except Exception as exc:
            # Serving without the bus is degraded, not broken: writes still land in the log, and the supervisor
            # keeps trying to connect.
            log.warning("channels backend %s unreachable at start (%s); will keep trying", self.name, exc)
            await self._close()
        self._task = asyncio.create_task(self._supervise(), name="kindred-bus")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close()

    async def wait_up(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._up.wait(), timeout)
        return self._up.is_set()

    async def subscribe(self, channels: Iterable[str]) -> None:
        new = [c for c in channels if c not in self._channels]
        if not new:
            return
        self._channels.update(new)
        async with self._subscribing:
            backend = self._backend
            if backend is not None and self._up.is_set():
                try:
                    await backend.subscribe(new)
                except Exception as exc:  # the supervisor re-subscribes everything once the backend is back
                    self._fail(exc)

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        gone = [c for c in channels if c in self._channels]
        if not gone:
            return
        self._channels.difference_update(gone)
        async with self._subscribing:
            backend = self._backend
            if backend is not None and self._up.is_set():
                try:
                    await backend.unsubscribe(gone)
                except Exception as exc:
                    self._fail(exc)

    async def publish(self, data: bytes, channels: list[str]) -> bool:
        """Send `data`; False when the backend is unreachable (the caller's data is already safe in the log)."""
        publisher = self._publisher
        if publisher is None or not self._up.is_set():
            return False
        try:
            await publisher.publish(data, channels)
        except Exception as exc:
            self._fail(exc)
            return False
        return True

    # --- supervision -----------------------------------------------------------------------------------------------

    def _fail(self, exc: BaseException) -> None:
        if self._up.is_set():
            log.warning("channels backend %s failed (%s); reconnecting", self.name, exc)
        self._up.clear()
        self._failed.set()

    async def _connect(self) -> None:
        backend = self._make_backend()
        publisher: ChannelsBackend | None = None
        try:
            await backend.on_startup()
            subscribed = set(self._channels)
            if subscribed:
                await backend.subscribe(subscribed)
            # Memory backends are one object for both directions; Redis ones get a second client for publishing so
            # a slow pub/sub read never delays a publish.
            publisher = backend if isinstance(backend, MemoryChannelsBackend) else self._make_backend(publisher=True)
            if publisher is not backend:
                await publisher.on_startup()
            # Channels asked for while we were connecting (no await between here and `_up.set()`: later callers see
            # the bus up and subscribe themselves).
            late = self._channels - subscribed
            if late:
                await backend.subscribe(late)
        except BaseException:
            # A failed attempt closes what it opened: each attempt makes new clients (and their connections).
            for opened in {id(b): b for b in (backend, publisher) if b is not None}.values():
                with contextlib.suppress(Exception):
                    await opened.on_shutdown()
            raise
        self._backend, self._publisher = backend, publisher
        self._failed.clear()
        self.epoch += 1
        self._up.set()

    async def _close(self) -> None:
        self._up.clear()
        for backend in {id(b): b for b in (self._backend, self._publisher) if b is not None}.values():
            with contextlib.suppress(Exception):
                await backend.on_shutdown()
        self._backend = self._publisher = None

    async def _consume(self, backend: ChannelsBackend) -> None:
        try:
            async for channel, payload in backend.stream_events():
                self._on_message(channel, payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(exc)

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        delay = RECONNECT_INITIAL
        up_since: float | None = loop.time() if self._up.is_set() else None
        while True:
            backend = self._backend
            if backend is not None and self._up.is_set():
                reader = asyncio.create_task(self._consume(backend))
                failed = asyncio.create_task(self._failed.wait())
                try:
                    await asyncio.wait({reader, failed}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in (reader, failed):
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
            if up_since is not None:
                delay = reconnect_delay(delay, loop.time() - up_since)
                up_since = None
            await self._close()
            while True:
                await asyncio.sleep(delay)
                try:
                    await self._connect()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.debug("channels backend %s still down: %s", self.name, exc)
                    await self._close()
                    delay = min(RECONNECT_CAP, delay * 2)
                    continue
                up_since = loop.time()
                self.reconnects += 1
                log.warning("channels backend %s is back; catching up from the room log", self.name)
                try:
                    await self._on_reconnect()
                except Exception:
                    log.exception("catch-up after reconnect failed")
                break


def memory_backend() -> ChannelsBackend:
    return MemoryChannelsBackend()


def redis_backend_factory(url: str) -> Callable[..., ChannelsBackend]:
    from litestar.channels.backends.redis import RedisChannelsPubSubBackend
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    def make(publisher: bool = False) -> ChannelsBackend:
        # No silent retries: a dropped connection must surface, so that we know to catch up from the log. Only the
        # publisher has a read timeout: the subscriber's connection waits for messages as long as there are none.
        client = Redis.from_url(
            url,
            socket_connect_timeout=2,
            socket_timeout=PUBLISH_TIMEOUT if publisher else None,
            socket_keepalive=True,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=10,
        )
        return _OwningRedisBackend(redis=client)

    class _OwningRedisBackend(RedisChannelsPubSubBackend):
        """Litestar's backend closes its pub/sub but not the client it was given; this one owns its client."""

        async def on_shutdown(self) -> None:
            try:
                await super().on_shutdown()
            finally:
                await self._redis.aclose()

    return make
