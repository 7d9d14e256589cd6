"""Processes the multi-instance tests start and stop themselves: `kindred serve` instances and a private Redis."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from tests.conftest import SECRET, TEST_SERVER, free_port

ROOT = Path(__file__).resolve().parent.parent


class KindredProcess:
    def __init__(
        self, database_url: str, redis_url: str | None, prefix: str, server: str = TEST_SERVER, **env: str
    ) -> None:
        self.server = server
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/api/v1/ws"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url or "",
            "KINDRED_SECRET": SECRET,
            "KINDRED_REDIS_PREFIX": prefix,
            "KINDRED_DATA_DIR": tempfile.mkdtemp(prefix="kindred-proc-"),
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(self.env["KINDRED_DATA_DIR"]) / "serve.log"

    async def start(self) -> None:
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "app.cli",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--server",
                    self.server,
                ],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        async with httpx.AsyncClient(timeout=2) as client:
            deadline = asyncio.get_running_loop().time() + 120
            while asyncio.get_running_loop().time() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"kindred exited: {self.log.read_text()}")
                try:
                    if (await client.get(f"{self.url}/healthz")).status_code in (200, 503):
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        log = self.log.read_text()
        self.stop()  # the caller's cleanup never runs for a start that raised: don't leave the server behind
        raise RuntimeError(f"kindred did not become ready: {log}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if os.environ.get("KINDRED_KEEP_LOGS") is None:
            shutil.rmtree(self.env["KINDRED_DATA_DIR"], ignore_errors=True)


class RedisProcess:
    """A throwaway redis-server on a spare port, so a test can stop and restart it without touching anyone else's."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        from redis.asyncio import Redis

        deadline = asyncio.get_running_loop().time() + 60
        while asyncio.get_running_loop().time() < deadline:
            client = Redis.from_url(self.url, socket_connect_timeout=0.5)
            try:
                await client.ping()
                return
            except Exception:
                await asyncio.sleep(0.05)
            finally:
                await client.aclose()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None
