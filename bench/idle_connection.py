"""`uv run python -m bench.idle_connection`: what Kindred's own part of an idle socket costs, without a server.

N `realtime.connection.Connection`s on a stand-in socket whose `receive` never returns (as an idle client's), each
sent one frame and idle again; then tracemalloc's difference and the objects the garbage collector tracks (what a
full collection walks), per socket. The reader task is counted (in a server it is the ASGI handler's task); uvicorn's
protocol object and Litestar's scope are not (bench S3's traced pass measures the whole server).
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from typing import Any

from realtime.connection import Connection
from realtime.types import SocketLimits

SOCKETS = 2000
SITES = 8


class _Hub:
    def __init__(self) -> None:
        self.limits = SocketLimits(
            frames_per_second=20, send_queue_frames=512, max_frame_bytes=65536, replay_cap=500, sockets_per_account=10
        )
        self.stats = {"slow_closed": 0}

    async def detach(self, conn: Connection) -> None:
        return None


class _IdleSocket:
    __slots__ = ()

    async def receive(self) -> dict[str, Any]:
        await asyncio.get_running_loop().create_future()
        raise AssertionError("unreachable")

    async def send(self, message: dict[str, Any]) -> None:
        return None


async def measure(count: int) -> None:
    hub: Any = _Hub()
    sockets = [_IdleSocket() for _ in range(count)]
    gc.collect()
    tracemalloc.start()
    before, objects_before = tracemalloc.take_snapshot(), len(gc.get_objects())
    conns = [Connection(s, hub, account_id="a", token_id="t", variant="json") for s in sockets]
    tasks = [asyncio.ensure_future(c.run()) for c in conns]
    await asyncio.sleep(0.05)
    for conn in conns:
        conn.push('{"type":"pong"}')
    await asyncio.sleep(0.05)
    gc.collect()
    after, objects_after = tracemalloc.take_snapshot(), len(gc.get_objects())
    diff = [stat for stat in after.compare_to(before, "lineno") if stat.size_diff > 0]
    print(f"bytes per idle socket (Connection and its tasks): {sum(s.size_diff for s in diff) / count:.0f}")
    print(f"gc-tracked objects per idle socket: {(objects_after - objects_before) / count:.1f}")
    for stat in diff[:SITES]:
        frame = stat.traceback[0]
        where = f"{frame.filename.rsplit('/', 2)[-1]}:{frame.lineno}"
        print(f"  {where}  {stat.size_diff / count:.0f} B  {stat.count_diff / count:.1f} objects")
    for conn in conns:
        conn.close_soon(1001, "bye")
    await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(measure(SOCKETS))
