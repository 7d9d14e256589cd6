"""py-spy on the servers while they are saturated, and a summary of where their time went, by file:function.

py-spy samples the running processes from outside (no restart, no instrumentation), `--nonblocking` so the servers
are not paused to be read. The raw output is collapsed stacks ("frame;frame;frame count"), one file per process,
kept beside the results so a flame graph can be drawn from it later (e.g. speedscope, or flamegraph.pl).
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.harness import ROOT

# Samples per second: enough for stable shares over ~10 s, little enough that py-spy's own CPU stays small.
SAMPLE_RATE = 200
# Path prefixes (as py-spy prints them, relative to sys.path) that mark Kindred's own code in a frame.
OWN_CODE = ("app/", "realtime/", "db/", "web/")
# Frames every sample of a server passes through (process start, the server's run loop): they say nothing about
# where the time goes, so the tables leave them out.
ENTRY = (
    "<frozen runpy>",
    "app/cli.py",
    "uvicorn/main.py",
    "uvicorn/server.py",
    "uvicorn/_compat.py",
    "asyncio/runners.py:Runner.run",
    "asyncio/runners.py:run",
    "asyncio/base_events.py",
)
# Rows per table in the summary; hot Kindred functions broken down by what they spend it in.
TOP = 15
BREAKDOWN = 6

_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^:()]+)(?::\d+)?\)$")


async def record(pids: list[int], seconds: float, out: Path) -> list[Path]:
    """Sample every pid for `seconds` at once; returns the raw files written."""
    py_spy = Path(sys.executable).with_name("py-spy")
    files = [out / f"py-spy-{pid}.txt" for pid in pids]
    runs = [
        await asyncio.create_subprocess_exec(
            str(py_spy),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            str(SAMPLE_RATE),
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(path),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        for pid, path in zip(pids, files, strict=True)
    ]
    for run in runs:
        _, err = await run.communicate()
        if run.returncode != 0:
            print(f"[bench] py-spy failed: {err.decode()[-500:]}", file=sys.stderr)
    return [f for f in files if f.exists()]


def short_path(path: str) -> str:
    """A source path as the tables show it: relative to the repository, to site-packages, or to the stdlib."""
    path = path.removeprefix(str(ROOT) + "/")
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1]
    if "/lib/python3" in path:
        return "stdlib/" + path.split("/lib/python3", 1)[1].split("/", 1)[1]
    return path


def _where(frame: str) -> str:
    """`func (path:line)` → `relative/path.py:func`; the line number is dropped so one function is one row."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    return f"{short_path(match['file'])}:{match['func']}"


def summarise(files: list[Path]) -> dict[str, Any]:
    """Shares of samples: by leaf function (self time); by any function on the stack (inclusive); by the innermost
    frame of Kindred's own code (which of our functions the time is spent under); and, for the hottest of those,
    which leaf functions that time is spent in (the library calls to look at)."""
    total = 0
    leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    under: dict[str, Counter[str]] = {}
    for path in files:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            frames = [w for w in (_where(f) for f in stack.split(";") if f.strip()) if not w.startswith(ENTRY)]
            if not frames:
                # Only the run loop itself: uvloop polling and dispatching, in native code.
                frames = ["(event loop: uvloop, native)"]
            total += n
            leaf[frames[-1]] += n
            for where in set(frames):
                inclusive[where] += n
            mine = [f for f in frames if f.startswith(OWN_CODE)]
            key = mine[-1] if mine else "(no Kindred frame: server, event loop, libraries)"
            own[key] += n
            under.setdefault(key, Counter())[frames[-1]] += n

    def share(counter: Counter[str], k: int) -> list[dict[str, Any]]:
        return [{"where": w, "share": v / max(total, 1)} for w, v in counter.most_common(k)]

    return {
        "samples": total,
        "own_code": share(own, TOP),
        "self": share(leaf, TOP),
        "inclusive": share(inclusive, TOP),
        "breakdown": {row["where"]: share(under[row["where"]], BREAKDOWN) for row in share(own, BREAKDOWN)},
    }
