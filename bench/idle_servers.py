"""`uv run --group bench python -m bench.idle_servers --sockets 1000 --rounds 2`: S3's question, small and quick, for
each ASGI server: the serving process's RSS per idle subscribed socket, uvicorn and Granian alternated (ABAB).

One `kindred serve --server X` on its own SQLite file with the bench's raised limits; one member, one room, and
`--sockets` websockets of that member subscribed to it. What the full S3 (`python -m bench --only S3`) makes with 200
accounts and 100 rooms takes minutes of password hashing on a loaded box; this is the same memory question with one
account. Prints one line per run, with `uptime`'s load at its start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import websockets

from bench.env import KINDRED_BENCH_ENV, free_port
from bench.procs import raise_fd_limit

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "a long enough passphrase 42"


def _serving_pid(pid: int) -> int:
    """The process that serves: Granian's worker under its supervisor, else the process itself."""
    children = psutil.Process(pid).children(recursive=True)
    return children[-1].pid if children else pid


async def one(server: str, sockets: int) -> dict[str, object]:
    load = os.getloadavg()
    data = tempfile.mkdtemp(prefix="kindred-idle-")
    port = free_port()
    env = {**os.environ, **KINDRED_BENCH_ENV, "KINDRED_DATA_DIR": data, "DATABASE_URL": "", "REDIS_URL": ""}
    env.pop("DATABASE_URL")
    env.pop("REDIS_URL")
    args = [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--server", server]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: ASYNC220
    url = f"http://127.0.0.1:{port}"
    conns: list[websockets.ClientConnection] = []
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            for _ in range(1800):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
            r = await http.post("/api/v1/accounts", json={"email": "i@bench.test", "password": PASSWORD, "name": "I"})
            token = (
                await http.post("/api/v1/auth/login", json={"email": "i@bench.test", "password": PASSWORD})
            ).json()["token"]
            auth = {"Authorization": f"Bearer {token}"}
            # 100 sockets to a room, as in S3: every join is a presence frame to each socket already there.
            rooms = []
            for n in range((sockets + 99) // 100):
                body = {"name": f"Idle {n}", "commonality": "Holding sockets open", "norms": "Be kind."}
                circle = (await http.post("/api/v1/circles", json=body, headers=auth)).json()
                rooms.append((await http.get(f"/api/v1/circles/{circle['id']}/rooms", headers=auth)).json()[0]["id"])
            assert r.status_code == 201, r.text
        pid = _serving_pid(proc.pid)
        await asyncio.sleep(2.0)
        baseline = psutil.Process(pid).memory_info().rss
        started = time.perf_counter()
        for n in range(sockets):
            ws = await websockets.connect(f"ws://127.0.0.1:{port}/api/v1/ws", additional_headers=auth)
            await ws.send(json.dumps({"op": "subscribe", "room_id": rooms[n // 100]}))
            while json.loads(await ws.recv()).get("type") != "subscribed":
                pass
            conns.append(ws)
        connect_s = time.perf_counter() - started
        await asyncio.sleep(3.0)
        held = psutil.Process(pid).memory_info().rss
        return {
            "server": server,
            "load_at_start": [round(x, 2) for x in load],
            "sockets": len(conns),
            "connect_s": round(connect_s, 1),
            "rss_baseline_mb": round(baseline / 2**20, 1),
            "rss_held_mb": round(held / 2**20, 1),
            "kb_per_socket": round((held - baseline) / len(conns) / 1000, 1),
        }
    finally:
        for ws in conns:
            await ws.close()
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(data, ignore_errors=True)


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.idle_servers", description=__doc__)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    raise_fd_limit()
    for _ in range(args.rounds):
        for server in ("uvicorn", "granian"):
            print(json.dumps(await one(server, args.sockets)), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
