"""`python -m bench.instrumented serve ...`: the `kindred` command, with observers that change nothing it does.

The harness starts Kindred through this so it can ask a running instance two things py-spy cannot tell:

- how long the garbage collector stopped the world, per generation (`gc.callbacks`; costs nothing measurable);
- with BENCH_TRACEMALLOC=1, what its memory is made of, by allocation site (`tracemalloc`; slows allocation, so
  only S3's memory breakdown pass turns it on).

On SIGUSR1 the process writes what it has seen since the previous signal to `$BENCH_INSTRUMENT_OUT.<n>.json` (and a
tracemalloc snapshot beside it), then starts counting afresh. With `--workers` above 1 only the supervisor is
instrumented, and it serves nothing: the harness uses this with one worker per instance.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import time
import tracemalloc
from pathlib import Path
from types import FrameType
from typing import Any


class GcPauses:
    """Collections and their durations since the last reset, per generation."""

    def __init__(self) -> None:
        self._started = 0.0
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._started)

    def take(self) -> dict[str, dict[str, float]]:
        taken = {
            f"gen{gen}": {"count": len(p), "total_ms": sum(p) * 1000, "max_ms": max(p, default=0.0) * 1000}
            for gen, p in self.pauses.items()
        }
        self.pauses = {0: [], 1: [], 2: []}
        return taken


def main() -> int:
    out = Path(os.environ["BENCH_INSTRUMENT_OUT"])
    if os.environ.get("BENCH_TRACEMALLOC"):
        tracemalloc.start()
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    dumps = 0

    def dump(signum: int, frame: FrameType | None) -> None:
        nonlocal dumps
        dumps += 1
        report: dict[str, Any] = {"gc": pauses.take(), "objects": len(gc.get_objects())}
        if tracemalloc.is_tracing():
            snapshot = out.with_name(f"{out.name}.{dumps}.snapshot")
            tracemalloc.take_snapshot().dump(str(snapshot))
            report["snapshot"] = str(snapshot)
        # Written whole, then renamed, so the harness never reads half a file.
        partial = out.with_name(f"{out.name}.{dumps}.partial")
        partial.write_text(json.dumps(report))
        partial.rename(out.with_name(f"{out.name}.{dumps}.json"))

    signal.signal(signal.SIGUSR1, dump)
    from app.cli import main as kindred

    return kindred(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
