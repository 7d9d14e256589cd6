"""The Python ceiling: a raw `websockets` server, one Redis subscription per process, `websockets.broadcast`.

It speaks the same protocol shape as Kindred so the same load generator drives it: POST /api/signin -> {token};
POST /api/rooms/{room}/posts {body} with a bearer token -> 201; websocket /ws with the bearer token,
{"op": "subscribe", "room_id": R} -> {"type": "subscribed"}, then {"type": "event", "room_id", "seq", "event",
"data": {...}} per post. No database, no replay, no order promise (two processes may publish a room's seqs out of
order), no presence: this is the cost of fan-out alone, what Python can do at best on the same box.

    python -m bench.peers.websockets_ceiling --port 9100 --http-port 9101 --redis redis://127.0.0.1:6390/0
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
from collections import defaultdict

import uvloop
from aiohttp import web
from redis.asyncio import Redis
from websockets.asyncio.server import ServerConnection, broadcast, serve

CHANNEL_PREFIX = "ceiling:room:"


class Server:
    def __init__(self, redis_url: str) -> None:
        self.redis = Redis.from_url(redis_url)
        self.rooms: dict[str, set[ServerConnection]] = defaultdict(set)
        self.tokens: set[str] = set()

    async def signin(self, request: web.Request) -> web.Response:
        token = secrets.token_urlsafe(16)
        await self.redis.sadd("ceiling:tokens", token)
        return web.json_response({"token": token})

    async def ready(self, request: web.Request) -> web.Response:
        return web.json_response({"ready": True})

    async def post(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not await self.redis.sismember("ceiling:tokens", token):
            return web.json_response({"detail": "sign in"}, status=401)
        body = (await request.json())["body"]
        room = request.match_info["room"]
        seq = await self.redis.incr(f"ceiling:seq:{room}")
        post = {"id": secrets.token_hex(8), "room_id": room, "body": body, "created_at": time.time(), "seq": seq}
        frame = json.dumps({"type": "event", "room_id": room, "seq": seq, "event": "post.created", "data": post})
        await self.redis.publish(CHANNEL_PREFIX + room, frame)
        return web.json_response(post, status=201)

    async def socket(self, ws: ServerConnection) -> None:
        joined: list[str] = []
        try:
            async for message in ws:
                frame = json.loads(message)
                if frame.get("op") == "subscribe":
                    self.rooms[frame["room_id"]].add(ws)
                    joined.append(frame["room_id"])
                    await ws.send(json.dumps({"type": "subscribed", "room_id": frame["room_id"], "last_seq": 0}))
                elif frame.get("op") == "ping":
                    await ws.send('{"type":"pong"}')
        finally:
            for room in joined:
                self.rooms[room].discard(ws)

    async def listen(self) -> None:
        """One subscription for the whole process; every message is broadcast to that room's local sockets."""
        pubsub = self.redis.pubsub()
        await pubsub.psubscribe(CHANNEL_PREFIX + "*")
        async for message in pubsub.listen():
            if message["type"] != "pmessage":
                continue
            room = message["channel"].decode()[len(CHANNEL_PREFIX) :]
            sockets = self.rooms.get(room)
            if sockets:
                broadcast(sockets, message["data"].decode())


async def main(port: int, http_port: int, redis_url: str) -> None:
    server = Server(redis_url)
    app = web.Application()
    app.router.add_get("/api/ready", server.ready)
    app.router.add_post("/api/signin", server.signin)
    app.router.add_post("/api/rooms/{room}/posts", server.post)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", http_port, reuse_port=True).start()
    listener = asyncio.create_task(server.listen())
    async with serve(server.socket, "127.0.0.1", port, reuse_port=True, compression=None, max_size=2**16):
        print("ready", flush=True)  # the harness waits for this line from every process
        await listener


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--redis", required=True)
    args = parser.parse_args()
    uvloop.run(main(args.port, args.http_port, args.redis))
