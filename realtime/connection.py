"""One websocket: a reader that turns client frames into hub calls, and a writer that drains a bounded queue.

The hub never awaits a socket: it appends an already-encoded frame to this connection's queue and moves on. A
client that cannot keep up (queue full) is disconnected with 1013 and recovers by reconnecting with `since`; the
server never buffers without bound for it. An idle socket's writer waits on a bare future (not an `asyncio.Event`
with its deque of waiters) and its queue is dropped while empty (bench S3: what an idle socket costs).

A `post` op (an extension, docs/realtime.md "Posting over the socket") is handed to the application's `Poster` in
a task of its own, so the reader goes on reading (pings, subscribes) while the post is written. A socket's posts are
written one after another, in the order they were sent; at most `MAX_PENDING_POSTS` wait, and more are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from typing import Any, Protocol

import msgspec

from realtime.events import ErrorFrame, OpError, Pong, encoder
from realtime.protocol import FloodGuard, FrameError, Ping, PostOp, Subscribe, Unsubscribe, parse_client_frame
from realtime.types import (
    CLOSE_GOING_AWAY,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    CLOSE_TRY_AGAIN,
    Access,
    HubPort,
    SocketLimits,
    Variant,
)

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_NORMAL",
    "CLOSE_POLICY",
    "CLOSE_TOO_BIG",
    "CLOSE_TRY_AGAIN",
    "Access",
    "Connection",
    "Poster",
    "SocketLimits",
    "Variant",
    "post_refused",
]

log = logging.getLogger("kindred.ws")

# Seconds a closing socket gets to flush its close frame. A client that has stopped reading keeps our writer blocked
# in send() forever; after this the socket's tasks are cancelled so it stops holding anything of ours.
CLOSE_GRACE = 2.0
# Posts a socket may have waiting to be written; a client that sends more before the answers come is told to wait.
MAX_PENDING_POSTS = 32


class Poster(Protocol):
    """What the application does with a `post` op: write it, as the HTTP API would, and say what to answer."""

    async def post(self, conn: Connection, op: PostOp) -> msgspec.Struct | None:
        """The frame that answers the op (`posted`, or an `error` frame), or None when the poster closed the socket
        instead. Never raises."""
        ...


class Connection:
    __slots__ = (
        "_bytes",
        "_closing",
        "_drained",
        "_ending",
        "_flood",
        "_hub",
        "_limit",
        "_low_water",
        "_max_bytes",
        "_max_frame",
        "_post_task",
        "_poster",
        "_posts",
        "_queue",
        "_reader",
        "_reading",
        "_socket",
        "_wake",
        "_writer",
        "account_id",
        "key",
        "rooms",
        "token_id",
        "variant",
    )

    def __init__(
        self,
        socket: Any,
        hub: HubPort,
        *,
        account_id: str,
        token_id: str | None,
        variant: Variant,
        poster: Poster | None = None,
    ) -> None:
        # Random per socket: the presence entry key, and never derived from the account.
        self.key = uuid.uuid4().hex
        self.account_id = account_id
        # The sign-in token this socket was opened with, so revoking that token closes exactly its sockets.
        self.token_id = token_id
        self.variant: Variant = variant
        # room id -> access; the hub keeps this in step with its own indexes.
        self.rooms: dict[str, Access] = {}
        self._socket = socket
        self._hub = hub
        # Made when a frame is queued and dropped when the writer has sent everything (an empty deque is 760 bytes).
        self._queue: deque[str] | None = None
        limits = hub.limits
        self._limit = limits.send_queue_frames
        # Every queued character counts, whatever queued it: live frames, replay, acks, errors, pongs.
        self._bytes = 0
        self._max_bytes = limits.send_queue_bytes
        self._low_water = limits.send_queue_bytes // 4
        # Made only when a replay has to wait for the client (an idle socket carries no extra Event).
        self._drained: asyncio.Event | None = None
        self._closing: tuple[int, str] | None = None
        self._flood = FloodGuard(limits.frames_per_second, limits.frames_per_second * 2, time.monotonic())
        self._max_frame = limits.max_frame_bytes
        # What the idle writer awaits; queueing a frame (or closing) resolves it.
        self._wake: asyncio.Future[None] | None = None
        # The reader's task (the ASGI handler's) and the writer's, while `run` runs; and whether `_end` cancelled them.
        self._reader: asyncio.Task[Any] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._ending = False
        self._reading = True
        # Posting over the socket: made on the first post, so a socket that only reads carries none of it.
        self._poster = poster
        self._posts: deque[PostOp] | None = None
        self._post_task: asyncio.Task[None] | None = None

    # --- called by the hub (synchronous, never blocks) ---------------------------------------------------------------

    def push(self, frame: str) -> None:
        """Queue a live frame; a full queue means the client is too slow, and it is cut off to recover by replay."""
        if self._closing is not None:
            return
        queue = self._queue
        if queue is not None and len(queue) >= self._limit:
            self._too_slow()
            return
        self._enqueue(frame)

    def push_reply(self, frame: str) -> None:
        """Queue a frame the client asked for (replay, acks, errors). It counts against the same byte bound as live
        frames: a client that asks and never reads is closed, not buffered for. Replays wait for `drained` first."""
        if self._closing is None:
            self._enqueue(frame)

    def _enqueue(self, frame: str) -> None:
        size = len(frame)
        if self._bytes + size > self._max_bytes:
            self._too_slow()
            return
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        queue.append(frame)
        self._bytes += size
        self._wake_writer()

    def _wake_writer(self) -> None:
        wake = self._wake
        if wake is not None:
            self._wake = None
            if not wake.done():
                wake.set_result(None)

    def _too_slow(self) -> None:
        self._hub.stats["slow_closed"] += 1
        self.close_soon(CLOSE_TRY_AGAIN, "too slow to keep up; reconnect with since")

    async def drained(self) -> bool:
        """Wait until the queue holds at most a quarter of its byte bound (or the socket is closing). A replay awaits
        this before each frame, so it is read from the log as the client reads, never built whole. True when the
        socket is still open."""
        while self._closing is None and self._bytes > self._low_water:
            if self._drained is None:
                self._drained = asyncio.Event()
            self._drained.clear()
            await self._drained.wait()
        return self._closing is None

    def reply(self, message: msgspec.Struct) -> None:
        self.push_reply(encoder.encode(message).decode())

    def close_soon(self, code: int, reason: str) -> None:
        if self._closing is None:
            self._closing = (code, reason)
            self._queue = None
            self._bytes = 0
            if self._drained is not None:
                self._drained.set()  # a replay waiting to stream wakes, sees the socket closing, and stops
            self._wake_writer()  # it sends the close frame
            asyncio.get_running_loop().call_later(CLOSE_GRACE, self._abandon)

    def _abandon(self) -> None:
        self._end()

    def _end(self) -> None:
        """Stop both loops (the socket closed, or it is being abandoned); `run` then detaches it from the hub."""
        reader = self._reader
        if reader is not None and not self._ending:
            self._ending = True
            current = asyncio.current_task()
            if self._reading and reader is not current:
                reader.cancel()
            writer = self._writer
            if writer is not None and writer is not current:
                writer.cancel()

    @property
    def closing(self) -> bool:
        return self._closing is not None

    @property
    def queued(self) -> int:
        return len(self._queue) if self._queue is not None else 0

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    # --- the socket's two loops ----------------------------------------------------------------------------------------

    async def run(self) -> None:
        # Plain asyncio rather than an anyio task group: one task group per socket was a tenth of an idle socket's
        # memory (bench S3). The reader runs in the caller's task, the writer in its own; either ending ends both.
        reader = asyncio.current_task()
        assert reader is not None
        self._reader = reader
        writer = self._writer = asyncio.ensure_future(self._write())
        try:
            await self._read()
        except asyncio.CancelledError:
            if not self._ending:
                raise  # cancelled from outside (the server shutting down): not ours to swallow
            reader.uncancel()
        finally:
            self._reading = False
            if self._closing is None:
                self._end()  # the client went away: nothing more to send
            # Otherwise the writer sends the close frame itself; `_abandon` cancels it if it cannot within the grace.
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            await self._hub.detach(self)
            await self._posts_done()

    def _pop(self, queue: deque[str]) -> str:
        # Not inlined in `_write`: a local of the writer would keep the deque alive while the socket idles.
        frame = queue.popleft()
        self._bytes -= len(frame)
        if self._drained is not None and self._bytes <= self._low_water:
            self._drained.set()
        return frame

    async def _write(self) -> None:
        send = self._socket.send
        loop = asyncio.get_running_loop()
        abandoned = False
        try:
            while True:
                if not self._queue:
                    if self._closing is not None:
                        break
                    self._queue = None  # all sent: an idle socket keeps no deque
                    wake = self._wake = loop.create_future()
                    await wake
                    continue
                if self._closing is not None:
                    break
                await send({"type": "websocket.send", "text": self._pop(self._queue)})
        except asyncio.CancelledError:
            # Abandoned (or the reader ended): a cancelled send is not retried, nor is a close sent to a client that
            # stopped reading; asyncio's cancellation is one-shot, so that send would block for good.
            abandoned = True
            raise
        except Exception:  # the client went away mid-send; the reader sees the disconnect
            log.debug("send failed", exc_info=True)
        finally:
            if self._closing is not None and not abandoned:
                code, reason = self._closing
                with contextlib.suppress(Exception):
                    await send({"type": "websocket.close", "code": code, "reason": reason})
            self._end()

    async def _read(self) -> None:
        receive = self._socket.receive
        while self._closing is None:
            try:
                message = await receive()
            except Exception:
                return
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            # The size limit in bytes, as the contract counts it (uvicorn enforces it before us; Granian has no such
            # option, so under Granian this is the check). A text frame is encoded only when it could be over.
            size = len(data)
            if size > self._max_frame or (
                size * 4 > self._max_frame and isinstance(data, str) and len(data.encode()) > self._max_frame
            ):
                self.close_soon(CLOSE_TOO_BIG, "frame too large")
                return
            if not self._flood.allow(time.monotonic()):
                self.close_soon(CLOSE_POLICY, "too many frames")
                return
            frame = parse_client_frame(data)
            if isinstance(frame, FrameError):
                if frame.op == "post":
                    self.reply(
                        OpError(code=frame.code, detail=frame.detail, op="post", status=400, client_id=frame.client_id)
                    )
                else:
                    self.reply(ErrorFrame(code=frame.code, detail=frame.detail))
            elif isinstance(frame, PostOp):
                self._queue_post(frame)
            elif isinstance(frame, Ping):
                self.reply(Pong())
            elif isinstance(frame, Subscribe):
                await self._hub.subscribe(self, frame.room_id, frame.since)
            elif isinstance(frame, Unsubscribe):
                await self._hub.unsubscribe(self, frame.room_id)

    # --- posting over the socket -------------------------------------------------------------------------------------

    def _queue_post(self, op: PostOp) -> None:
        if self._poster is None:
            self.reply(post_refused(op, "bad_frame", "this socket does not take posts", 400))
            return
        pending = self._posts
        if pending is None:
            pending = self._posts = deque()
        if len(pending) >= MAX_PENDING_POSTS:
            detail = f"{MAX_PENDING_POSTS} posts are already waiting on this socket; wait for their answers"
            self.reply(post_refused(op, "rate_limited", detail, 429, retry_after=1))
            return
        pending.append(op)
        if self._post_task is None:
            self._post_task = asyncio.ensure_future(self._write_posts(pending, self._poster))

    async def _write_posts(self, pending: deque[PostOp], poster: Poster) -> None:
        """Write the waiting posts one at a time, in the order sent; ends when none is left (a later post starts it
        again). A socket that is closing writes nothing more: its client retries with the same client_id."""
        try:
            while pending and self._closing is None:
                op = pending.popleft()
                try:
                    answer = await poster.post(self, op)
                except Exception:  # the poster answers every refusal itself; this is a bug, not the client's
                    log.exception("posting over the socket failed")
                    answer = post_refused(op, "internal", "something went wrong on our side; it has been logged", 500)
                if answer is not None:
                    self.reply(answer)
        finally:
            self._post_task = None

    async def _posts_done(self) -> None:
        """The socket has ended: posts not yet started are dropped; the one being written is let finish (its write
        commits or rolls back as a whole either way, and its client retries with the same client_id)."""
        if self._posts is not None:
            self._posts.clear()
        task = self._post_task
        if task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task


def post_refused(op: PostOp, code: str, detail: str, status: int, retry_after: int | None = None) -> OpError:
    """The `error` frame that answers a post op."""
    return OpError(
        code=code,
        detail=detail,
        op="post",
        status=status,
        client_id=op.client_id,
        room_id=op.room_id,
        retry_after=retry_after,
    )
