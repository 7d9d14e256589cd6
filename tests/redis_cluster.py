"""A real Redis Cluster of three masters on spare loopback ports, started and stopped by the test that needs it.

Each node keeps its `nodes.conf` in its own folder, so a node killed and started again rejoins with its identity
and its slots, as a restarted production node does."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

from tests.client import DEADLINE

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def spare_ports(count: int) -> list[int]:
    """`count` ports below the ephemeral range whose cluster-bus ports (+10000) are free too. The scan starts at a
    place that depends on the process, so two test workers rarely even try the same ports."""
    ports: list[int] = []
    start = 20000 + (os.getpid() % 900) * 10
    for port in [*range(start, 29990), *range(20000, start)]:
        if _free(port) and _free(port + 10000):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError("no spare ports for a Redis Cluster")


class RedisCluster:
    def __init__(self, root: Path, masters: int = 3) -> None:
        self.root = root
        self.ports = spare_ports(masters)
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def _spawn(self, port: int) -> None:
        folder = self.root / str(port)
        folder.mkdir(parents=True, exist_ok=True)
        self.procs[port] = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def _cli(self, *args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            REDIS_CLI, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await proc.communicate()
        return out.decode()

    async def _until(self, check: str, *args: str) -> None:
        deadline = asyncio.get_running_loop().time() + DEADLINE
        while check not in (out := await self._cli(*args)):
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"redis cluster: {check!r} never came from {args}: {out}")
            await asyncio.sleep(0.05)

    async def start(self) -> None:
        for port in self.ports:
            self._spawn(port)
        for port in self.ports:
            await self._until("PONG", "-p", str(port), "ping")
        nodes = [f"127.0.0.1:{p}" for p in self.ports]
        out = await self._cli("--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes")
        if "[OK] All 16384 slots covered" not in out:
            raise RuntimeError(f"redis-cli --cluster create failed: {out}")
        await self.wait_ok()

    async def wait_ok(self) -> None:
        """Until every node says the cluster is ok and knows every other node."""
        for port in self.ports:
            await self._until("cluster_state:ok", "-p", str(port), "cluster", "info")
            await self._until(f"cluster_known_nodes:{len(self.ports)}", "-p", str(port), "cluster", "info")

    def kill(self, port: int) -> None:
        proc = self.procs.pop(port)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    async def restart(self, port: int) -> None:
        self._spawn(port)
        await self._until("PONG", "-p", str(port), "ping")
        await self.wait_ok()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs.clear()
