"""Everything a run starts, and stops: its own Redis, its own databases, and the servers under test.

Every process is started here and stopped here, by PID. Postgres is the machine's: the run creates its own databases
in it (one for Kindred, one for the Django peer) and drops them at the end. Redis is the run's own `redis-server` on
a spare port, flushed between systems so no system sees another's keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis

from bench.env import KINDRED_BENCH_ENV, free_port
from bench.procs import Proc, postgres_backends, spawn

ROOT = Path(__file__).resolve().parent.parent
DJANGO_DIR = ROOT / "bench" / "peers" / "django_channels"
PG_ADMIN = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
# Seconds a started server gets to answer; a traced one (S3 memory) on a box loaded by other work needed over 60.
START_TIMEOUT = 300.0


@dataclass
class Services:
    logs: Path
    procs: list[Proc] = field(default_factory=list)
    redis_url: str = ""
    databases: list[str] = field(default_factory=list)
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    _kindred_db: str | None = None
    _django_db: str | None = None
    _launches: int = 0
    # The ASGI server `kindred serve` runs under (`--kindred-server`).
    kindred_server: str = "uvicorn"

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> Proc:
        proc = spawn(name, args, self.logs / f"{name}.log", cwd, env or {})
        self.procs.append(proc)
        return proc

    def stop(self, procs: list[Proc]) -> None:
        for proc in procs:
            proc.stop()
            if proc in self.procs:
                self.procs.remove(proc)

    # --- Redis and Postgres ----------------------------------------------------------------------------------------

    async def start_redis(self) -> Proc:
        port = free_port()
        binary = shutil.which("redis-server") or "redis-server"
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        proc = self.spawn("redis", [*args, "--maxclients", "10000"])
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        client = Redis.from_url(self.redis_url)
        try:
            for _ in range(100):
                with contextlib.suppress(OSError, ConnectionError, Exception):
                    await client.ping()
                    return proc
                await asyncio.sleep(0.05)
        finally:
            await client.aclose()
        raise RuntimeError(f"redis-server did not start: {proc.log.read_text()[-1000:]}")

    def infra_pids(self, system: str) -> list[int]:
        """The shared services a system leans on: the run's Redis, and Postgres's processes serving its database."""
        redis = [pid for proc in self.procs if proc.name == "redis" for pid in proc.pids]
        url = {"kindred": self._kindred_db, "django_channels": self._django_db}.get(system)
        return redis + (postgres_backends(url.rsplit("/", 1)[1]) if url else [])

    def redis_db(self, n: int) -> str:
        return self.redis_url.rsplit("/", 1)[0] + f"/{n}"

    async def flush_redis(self) -> None:
        client = Redis.from_url(self.redis_url)
        try:
            await client.flushall()
        finally:
            await client.aclose()

    async def redis_commands(self) -> dict[str, int]:
        """Commands the run's Redis has served so far, by name (INFO commandstats)."""
        client = Redis.from_url(self.redis_url)
        try:
            stats = await client.info("commandstats")
        finally:
            await client.aclose()
        return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}

    async def check_postgres(self) -> None:
        try:
            (await asyncpg.connect(PG_ADMIN, timeout=5)).terminate()
        except Exception as exc:
            raise SystemExit(f"bench: Postgres does not answer at {PG_ADMIN} ({exc}); set BENCH_PG") from None

    async def create_database(self, prefix: str) -> str:
        name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
        admin = await asyncpg.connect(PG_ADMIN)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        self.databases.append(name)
        return PG_ADMIN.rsplit("/", 1)[0] + "/" + name

    async def wait_http(self, url: str, proc: Proc) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if not proc.running:
                    raise RuntimeError(f"{proc.name} exited: {proc.log.read_text()[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    await client.get(url)
                    return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{proc.name} did not answer at {url}")

    async def wait_log(self, proc: Proc, line: str) -> None:
        """Wait for a process to print `line`: for servers sharing a port, where a request reaches only one of them."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if not proc.running:
                raise RuntimeError(f"{proc.name} exited: {proc.log.read_text()[-2000:]}")
            if line in proc.log.read_text().splitlines():
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{proc.name} did not print {line!r}")

    # --- the systems under test ------------------------------------------------------------------------------------

    def _kindred_env(self) -> dict[str, str]:
        assert self._kindred_db is not None
        return {
            "DATABASE_URL": self._kindred_db,
            "REDIS_URL": self.redis_db(0),
            "KINDRED_SECRET": self.secret,
            "KINDRED_DATA_DIR": str(self.logs / "kindred-data"),
            **KINDRED_BENCH_ENV,
        }

    async def start_kindred(
        self, instances: int, workers: int, *, trace_memory: bool = False
    ) -> tuple[list[str], list[Proc]]:
        """`instances` × `kindred serve --workers W`, each on its own port, all on the run's one database (made and
        migrated on first use) and its Redis. Each runs under `bench.instrumented` (see there) so that its GC pauses
        and, with `trace_memory`, its allocations can be read while it runs."""
        if self._kindred_db is None:
            self._kindred_db = await self.create_database("kindred_bench")
            await self._run([sys.executable, "-m", "app.cli", "migrate"], ROOT, self._kindred_env())
        await self.flush_redis()
        urls, procs = [], []
        for i in range(instances):
            port = free_port()
            args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
            args += ["--server", self.kindred_server]
            self._launches += 1
            env = {**self._kindred_env(), "BENCH_INSTRUMENT_OUT": str(self.logs / f"instrument-{self._launches}")}
            if trace_memory:
                env["BENCH_TRACEMALLOC"] = "1"
            procs.append(self.spawn(f"kindred-{i}", [sys.executable, "-m", "bench.instrumented", *args], env))
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs, strict=True):
            await self.wait_http(f"{url}/healthz", proc)
        return urls, procs

    async def instrument(self, proc: Proc) -> dict[str, Any]:
        """Ask a Kindred instance started by start_kindred for what `bench.instrumented` saw since the last ask."""
        base = proc.env["BENCH_INSTRUMENT_OUT"]
        proc.dumps += 1
        answer = Path(f"{base}.{proc.dumps}.json")
        os.kill(proc.popen.pid, signal.SIGUSR1)
        deadline = time.monotonic() + START_TIMEOUT
        while not await asyncio.to_thread(answer.exists):
            if time.monotonic() > deadline or not proc.running:
                raise RuntimeError(f"{proc.name} did not answer SIGUSR1: {proc.log.read_text()[-1000:]}")
            await asyncio.sleep(0.05)
        return dict(json.loads(await asyncio.to_thread(answer.read_text)))

    def _django_env(self) -> dict[str, str]:
        assert self._django_db is not None
        # VIRTUAL_ENV points at Kindred's environment; `uv run --project` must use the peer's own.
        return {"DJANGO_DATABASE_URL": self._django_db, "DJANGO_REDIS_URL": self.redis_db(1), "VIRTUAL_ENV": ""}

    async def start_django(self, processes: int) -> tuple[list[str], list[Proc]]:
        """The Django Channels forum under uvicorn with `processes` workers."""
        uv = shutil.which("uv") or "uv"
        project = [uv, "run", "--quiet", "--frozen", "--project", str(DJANGO_DIR)]
        if self._django_db is None:
            self._django_db = await self.create_database("django_bench")
            await self._run([*project, "python", "-m", "forum.setup"], DJANGO_DIR, self._django_env())
        await self.flush_redis()
        port = free_port()
        # The same server settings as Kindred's: uvloop, httptools, websockets' sans-I/O implementation, no compression.
        server = ["uvicorn", "forum.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
        server += ["--workers", str(processes), "--loop", "uvloop", "--http", "httptools", "--ws", "websockets-sansio"]
        server += ["--ws-per-message-deflate", "false", "--log-level", "warning", "--no-access-log"]
        proc = self.spawn("django", [*project, *server], self._django_env(), cwd=DJANGO_DIR)
        url = f"http://127.0.0.1:{port}"
        await self.wait_http(f"{url}/api/ready", proc)
        return [url], [proc]

    async def start_ceiling(self, processes: int) -> tuple[str, str, list[Proc]]:
        """`processes` raw-websockets servers sharing two ports (SO_REUSEPORT), as uvicorn's workers share one."""
        await self.flush_redis()
        port, http_port = free_port(), free_port()
        args = ["--port", str(port), "--http-port", str(http_port), "--redis", self.redis_db(2)]
        procs = [
            self.spawn(f"ceiling-{i}", [sys.executable, "-m", "bench.peers.websockets_ceiling", *args])
            for i in range(processes)
        ]
        for proc in procs:
            await self.wait_log(proc, "ready")
        return f"http://127.0.0.1:{http_port}", f"ws://127.0.0.1:{port}/ws", procs

    async def _run(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        done = await asyncio.to_thread(
            subprocess.run, args, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")

    async def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()
        if self.databases:
            admin = await asyncpg.connect(PG_ADMIN)
            try:
                for name in self.databases:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()


@contextlib.asynccontextmanager
async def services(logs: Path) -> AsyncIterator[Services]:
    """The run's services; `logs` (an existing folder) receives each process's output."""
    svc = Services(logs)
    await svc.check_postgres()
    try:
        await svc.start_redis()
        yield svc
    finally:
        await svc.close()
