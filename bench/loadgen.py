"""The load generator as the scenarios see it: several worker processes (`bench.worker`) driven as one.

Sockets are dealt round robin to the processes, and so are posts (by post number), so no single process carries a
scenario. Every command goes to every worker at once; their answers are merged here. Each answer carries the worker's
own CPU use over the command, and the busiest worker's figure is reported: near 1.0 the load generator, not the
server, may be what limits the result, and the report says so.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import time
from multiprocessing.connection import Connection
from typing import Any

from bench import stats, worker
from bench.worker import ARRIVAL_BUCKET, PostPlan, SocketPlan

# A worker's CPU seconds per wall second above which the load generator counts as saturated.
SATURATED_CPU = 0.9
# Post keys of one phase are drawn from their own block, so keys stay unique in the run.
KEY_BLOCK = 10**9
# Seconds to wait for a worker's answer before declaring it stuck (a connect storm of 10,000 sockets is the longest).
ANSWER_TIMEOUT = 300.0


def default_processes() -> int:
    """One per core, at least two: more cannot run at once, fewer would let one process cap the measurement."""
    return max(2, min(4, os.cpu_count() or 2))


class LoadGen:
    def __init__(
        self,
        sockets: list[SocketPlan],
        posts: PostPlan | None,
        *,
        ordered: bool,
        processes: int,
        answer_timeout: float = ANSWER_TIMEOUT,
    ) -> None:
        self._answer_timeout = answer_timeout
        ctx = mp.get_context("spawn")
        self._pipes: list[Connection] = []
        self._procs: list[Any] = []
        self._next_key = KEY_BLOCK
        for i in range(processes):
            parent, child = ctx.Pipe()
            args = (i, processes, sockets[i::processes], posts, ordered)
            proc = ctx.Process(target=worker.main, args=(child, *args), daemon=True, name=f"bench-loadgen-{i}")
            proc.start()
            self._pipes.append(parent)
            self._procs.append(proc)

    async def __aenter__(self) -> LoadGen:
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await asyncio.wait_for(self._call_all("stop", [{}] * len(self._pipes)), 30)
        except Exception:  # a worker that cannot stop cleanly is killed below
            pass
        for proc in self._procs:
            await asyncio.to_thread(proc.join, 5)
            if proc.is_alive():
                proc.kill()

    @property
    def processes(self) -> int:
        return len(self._pipes)

    async def _answer(self, i: int) -> Any:
        try:
            status, answer = await asyncio.wait_for(asyncio.to_thread(self._pipes[i].recv), self._answer_timeout)
        except EOFError:
            raise RuntimeError(f"load generator worker {i} died (exit code {self._procs[i].exitcode})") from None
        if status != "ok":
            raise RuntimeError(f"load generator worker {i} failed:\n{answer}")
        return answer

    async def _call_all(self, name: str, kwargs: list[dict[str, Any]]) -> list[Any]:
        for pipe, kw in zip(self._pipes, kwargs, strict=True):
            pipe.send((name, kw))
        return await asyncio.gather(*(self._answer(i) for i in range(len(self._pipes))))

    async def _call(self, name: str, **kwargs: Any) -> list[Any]:
        return await self._call_all(name, [kwargs] * len(self._pipes))

    def _keys(self) -> int:
        base, self._next_key = self._next_key, self._next_key + KEY_BLOCK
        return base

    # --- commands --------------------------------------------------------------------------------------------------

    async def connect(self, concurrency: int = 200, since_last: bool = False) -> dict[str, Any]:
        """Open and subscribe every socket, `concurrency` at a time per worker; returns when all are acked."""
        answers = await self._call("connect", concurrency=concurrency, since_last=since_last)
        sockets = sum(a["sockets"] for a in answers)
        seconds = max(a["seconds"] for a in answers)
        acks = [t * 1000.0 for a in answers for t in a["ack_seconds"]]
        return {
            "sockets": sockets,
            "failures": sum(a["failures"] for a in answers),
            "seconds": seconds,
            "connects_per_s": sockets / max(seconds, 1e-9),
            "ack_ms": stats.summary(acks),
            "replayed": sum(a["replayed"] for a in answers),
            "loadgen_cpu": max(a["cpu"] for a in answers),
        }

    async def warm_posters(self, per_url: int) -> int:
        """Open posting sockets ahead of the posts (posts over websockets only; otherwise nothing)."""
        return sum(a["posters"] for a in await self._call("warm_posters", per_url=per_url))

    async def churn(
        self, rooms: list[str], concurrency: int = 200, *, leave: bool = True, join: bool = True
    ) -> dict[str, Any]:
        """Each socket reading one of `rooms` unsubscribes from it and subscribes again (see Worker.churn)."""
        answers = await self._call("churn", rooms=rooms, concurrency=concurrency, leave=leave, join=join)
        return {
            "pairs": sum(a["pairs"] for a in answers),
            "failed": sum(a["failed"] for a in answers),
            "seconds": max(a["seconds"] for a in answers),
            "loadgen_cpu": max(a["cpu"] for a in answers),
        }

    async def drop(self) -> None:
        await self._call("drop")

    async def post_fixed(self, rate: float, seconds: float, phase: str) -> dict[str, Any]:
        """`rate` posts a second for `seconds`, on schedule (open loop), spread over the workers."""
        start_at = time.time() + 0.2  # every worker reads the command before the first post is due
        answers = await self._call(
            "post_fixed", rate=rate, seconds=seconds, start_at=start_at, key_base=self._keys(), phase=phase
        )
        return _posted(answers, seconds)

    async def saturate(self, concurrency: int, seconds: float, phase: str) -> dict[str, Any]:
        """Posts as fast as the system answers, `concurrency` in flight in all (closed loop)."""
        share, extra = divmod(concurrency, self.processes)
        key_base = self._keys()
        kwargs = [
            {"concurrency": share + (1 if i < extra else 0), "seconds": seconds, "key_base": key_base, "phase": phase}
            for i in range(self.processes)
        ]
        answers = await self._call_all("saturate", kwargs)
        return _posted(answers, max(a["seconds"] for a in answers))

    async def report(self, phases: list[str] | None = None) -> dict[str, Any]:
        """Deliveries per phase (latencies, first and last arrival), and the order checks, from every worker."""
        answers = await self._call("report", phases=phases)
        merged: dict[str, dict[str, Any]] = {}
        arrivals: dict[int, int] = {}
        for answer in answers:
            for bucket, n in answer["arrivals"].items():
                arrivals[bucket] = arrivals.get(bucket, 0) + n
            for name, phase in answer["phases"].items():
                into = merged.setdefault(name, {"latencies_ms": [], "first": phase["first"], "last": phase["last"]})
                into["latencies_ms"].extend(phase["latencies_ms"])
                into["first"] = min(into["first"], phase["first"])
                into["last"] = max(into["last"], phase["last"])
        return {
            "phases": merged,
            "arrivals": arrivals,
            "gaps": sum(a["gaps"] for a in answers),
            "repeats": sum(a["repeats"] for a in answers),
        }

    @staticmethod
    def delivered_since(report: dict[str, Any], since: float) -> tuple[int, float]:
        """Deliveries of any phase that arrived at or after `since` (time.time()), and the last arrival's time."""
        first = int(since // ARRIVAL_BUCKET)
        buckets = [(b, n) for b, n in report["arrivals"].items() if b >= first]
        if not buckets:
            return 0, since
        return sum(n for _, n in buckets), (max(b for b, _ in buckets) + 1) * ARRIVAL_BUCKET

    async def counts(self) -> dict[str, int]:
        """Deliveries so far per phase: cheap enough to poll while waiting for the last ones."""
        merged: dict[str, int] = {}
        for answer in await self._call("counts"):
            for name, n in answer.items():
                merged[name] = merged.get(name, 0) + n
        return merged

    async def reset(self) -> None:
        await self._call("reset")


def _posted(answers: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    post_ms = [ms for a in answers for ms in a["post_ms"]]
    accepted = sum(a["accepted"] for a in answers)
    rejections: dict[str, int] = {}
    for a in answers:
        for outcome, n in a["rejections"].items():
            rejections[outcome] = rejections.get(outcome, 0) + n
    return {
        "accepted": accepted,
        "rejected": sum(a["rejected"] for a in answers),
        "rejections": rejections,  # HTTP status or exception -> count
        "seconds": seconds,
        "posts_per_s": accepted / max(seconds, 1e-9),
        "post_ms": stats.summary(post_ms),
        "loadgen_cpu": max(a["cpu"] for a in answers),
    }
