"""Everything the benchmark starts, and stops: its own Redis, its own databases, the servers under test.

Every process is started here and stopped here by its PID. Postgres is the machine's (started with the documented
command if it is not answering); the benchmark creates its own databases in it and drops them afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
DJANGO_DIR = ROOT / "bench" / "peers" / "django_channels"
PG_ADMIN = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

# Limits raised for the run, so the load generator measures fan-out and not Kindred's abuse limits (which have their
# own tests). Stated in docs/performance.md.
KINDRED_BENCH_ENV = {
    "KINDRED_POSTS_PER_MINUTE": "100000000",
    "KINDRED_GESTURES_PER_MINUTE": "100000000",
    "KINDRED_SOCKETS_PER_ACCOUNT": "100000",
    "KINDRED_LOGINS_PER_ADDRESS": "100000000",
    "KINDRED_LOGINS_PER_ACCOUNT": "100000000",
    "KINDRED_SIGNUPS_PER_ADDRESS": "100000000",
    "KINDRED_JOINS_PER_HOUR": "100000000",
    "KINDRED_WS_SEND_QUEUE": "4096",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raise_fd_limit() -> None:
    """Thousands of sockets need thousands of descriptors; the soft limit is often 1024."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pids(self) -> list[int]:
        """The process and its children (uvicorn workers)."""
        try:
            parent = psutil.Process(self.popen.pid)
            return [parent.pid, *(c.pid for c in parent.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


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


@dataclass
class Services:
    """The run's own Redis and databases, and every server process started for it."""

    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kindred-bench-")))
    procs: list[Proc] = field(default_factory=list)
    redis_url: str = ""
    databases: list[str] = field(default_factory=list)
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> Proc:
        log = self.workdir / f"{name}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                args,
                cwd=cwd,
                env={**os.environ, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=raise_fd_limit,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    async def start_redis(self) -> None:
        port = free_port()
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.spawn(
            "redis",
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--maxclients",
                "50000",
            ],
        )
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        for _ in range(100):
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    async def ensure_postgres(self) -> None:
        with contextlib.suppress(Exception):
            (await asyncpg.connect(PG_ADMIN, timeout=3)).terminate()
            return
        version = os.listdir("/etc/postgresql")[0]
        await asyncio.to_thread(
            subprocess.run, ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=True
        )

    async def create_database(self, prefix: str) -> str:
        name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
        admin = await asyncpg.connect(PG_ADMIN)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        self.databases.append(name)
        return PG_ADMIN.rsplit("/", 1)[0] + "/" + name

    async def wait_http(self, url: str, proc: Proc, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if proc.popen.poll() is not None:
                    raise RuntimeError(f"{proc.name} exited: {proc.log.read_text()[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    await client.get(url)
                    return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{proc.name} did not answer at {url}")

    # --- the systems under test ----------------------------------------------------------------------------------

    async def start_kindred(self, instances: int, workers: int = 1) -> tuple[list[str], list[Proc]]:
        database = await self.create_database("kindred_bench")
        env = {
            "DATABASE_URL": database,
            "REDIS_URL": self.redis_url,
            "KINDRED_SECRET": self.secret,
            "KINDRED_DATA_DIR": str(self.workdir / "kindred"),
            **KINDRED_BENCH_ENV,
        }
        await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "app.cli", "migrate"],
            cwd=ROOT,
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )
        urls, procs = [], []
        for i in range(instances):
            port = free_port()
            proc = self.spawn(
                f"kindred-{i}",
                [
                    sys.executable,
                    "-m",
                    "app.cli",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    str(workers),
                ],
                env,
            )
            urls.append(f"http://127.0.0.1:{port}")
            procs.append(proc)
        for url, proc in zip(urls, procs, strict=True):
            await self.wait_http(f"{url}/healthz", proc)
        return urls, procs

    async def start_django(self, processes: int = 2) -> tuple[list[str], list[Proc]]:
        database = await self.create_database("django_bench")
        env = {"DJANGO_DATABASE_URL": database, "DJANGO_REDIS_URL": self.redis_url.rsplit("/", 1)[0] + "/1"}
        uv = shutil.which("uv") or "uv"
        await asyncio.to_thread(
            subprocess.run,
            [uv, "run", "--project", str(DJANGO_DIR), "python", "-m", "forum.setup"],
            cwd=DJANGO_DIR,
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )
        port = free_port()
        proc = self.spawn(
            "django",
            [
                uv,
                "run",
                "--project",
                str(DJANGO_DIR),
                "uvicorn",
                "forum.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(processes),
                "--log-level",
                "warning",
                "--no-access-log",
                "--ws",
                "websockets-sansio",
                "--ws-per-message-deflate",
                "false",
            ],
            env,
            cwd=DJANGO_DIR,
        )
        url = f"http://127.0.0.1:{port}"
        await self.wait_http(f"{url}/api/nothing", proc)
        return [url], [proc]

    async def start_ceiling(self, processes: int = 2) -> tuple[list[str], list[str], list[Proc]]:
        port, http_port = free_port(), free_port()
        procs = [
            self.spawn(
                f"ceiling-{i}",
                [
                    sys.executable,
                    "-m",
                    "bench.peers.websockets_ceiling",
                    "--port",
                    str(port),
                    "--http-port",
                    str(http_port),
                    "--redis",
                    self.redis_url.rsplit("/", 1)[0] + "/2",
                ],
            )
            for i in range(processes)
        ]
        await self.wait_http(f"http://127.0.0.1:{http_port}/api/nothing", procs[0])
        return [f"http://127.0.0.1:{http_port}"], [f"ws://127.0.0.1:{port}/ws"], procs

    def stop(self, procs: list[Proc]) -> None:
        for proc in procs:
            proc.stop()
            if proc in self.procs:
                self.procs.remove(proc)

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
        if os.environ.get("BENCH_KEEP_LOGS"):
            print(f"logs kept in {self.workdir}", file=sys.stderr)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


@contextlib.asynccontextmanager
async def services() -> AsyncIterator[Services]:
    svc = Services()
    await svc.ensure_postgres()
    await svc.start_redis()
    try:
        yield svc
    finally:
        await svc.close()
