"""Processes the benchmark starts: spawning with a log file, stopping by PID, and what they cost (CPU, memory)."""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.env import raise_fd_limit

# Seconds a stopped process gets to exit after SIGTERM before it is killed.
STOP_GRACE = 10.0


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]  # what was added to the environment it was started with
    dumps: int = 0  # answers asked of it so far (bench.instrumented)

    @property
    def pids(self) -> list[int]:
        """The process and its descendants (uvicorn's workers, `uv run`'s child)."""
        try:
            parent = psutil.Process(self.popen.pid)
            return [parent.pid, *(c.pid for c in parent.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        """SIGTERM to the process (which stops its own workers), SIGKILL to whatever of it is left after the grace."""
        family = self.pids
        if self.running:
            self.popen.terminate()
            try:
                self.popen.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        for pid in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                child = psutil.Process(pid)
                child.wait(STOP_GRACE)
        for pid in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()


def spawn(name: str, args: list[str], log: Path, cwd: Path, env: dict[str, str]) -> Proc:
    with open(log, "wb") as out:
        popen = subprocess.Popen(
            args, cwd=cwd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, preexec_fn=raise_fd_limit
        )
    return Proc(name, popen, log, env)


def postgres_backends(database: str) -> list[int]:
    """Postgres's server processes for one database (their titles read "postgres: user database host ...")."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if len(cmdline) == 1 and cmdline[0].startswith("postgres: ") and f" {database} " in cmdline[0]:
            found.append(proc.pid)
    return found


class CpuMeter:
    """CPU seconds used by a changing set of processes between start() and stop(): pids are looked up again at
    stop(), and a process that appeared meanwhile counts from zero (a pool that opened a connection)."""

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        self._pids = pids
        self._start: dict[int, float] = {}

    def start(self) -> None:
        self._start = {pid: cpu_seconds([pid]) for pid in self._pids()}

    def stop(self) -> float:
        return sum(cpu_seconds([pid]) - self._start.get(pid, 0.0) for pid in self._pids())


class Window:
    """One phase's CPU: of the servers under test, of the services they lean on (Redis, Postgres), and how busy the
    whole box was (everything shares its cores: servers, services, load generator, other work)."""

    def __init__(self, servers: Callable[[], list[int]], infra: Callable[[], list[int]]) -> None:
        self._servers = CpuMeter(servers)
        self._infra = CpuMeter(infra)
        self.started = 0.0
        self._box: Any = None

    def start(self) -> None:
        self.started = time.time()
        self._servers.start()
        self._infra.start()
        self._box = psutil.cpu_times()

    def box_busy(self) -> float:
        """Fraction of the box's CPU time in use since start()."""
        now = psutil.cpu_times()
        total = sum(now) - sum(self._box)
        idle = (now.idle + getattr(now, "iowait", 0.0)) - (self._box.idle + getattr(self._box, "iowait", 0.0))
        return 1.0 - idle / total if total > 0 else math.nan

    def stop(self) -> dict[str, float]:
        return {"server_cpu_s": self._servers.stop(), "infra_cpu_s": self._infra.stop()}


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += psutil.Process(pid).memory_info().rss
    return total


def server_pids(procs: list[Proc]) -> list[int]:
    """The processes that serve: uvicorn's workers when it has any (its supervisor only forwards signals), and not
    the `uv run` wrapper of a peer."""
    found = []
    for proc in procs:
        family = proc.pids
        leaves = [pid for pid in family if not _has_children(pid)]
        found.extend(leaves or family)
    return found


def _has_children(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).children())
    except psutil.NoSuchProcess:
        return False
