"""One consumer per socket, as Channels is meant to be used."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from forum.models import Token


class ForumConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        headers = dict(self.scope["headers"])
        key = headers.get(b"authorization", b"").decode().removeprefix("Bearer ")
        if not await Token.objects.filter(key=key).aexists():
            await self.close(code=4401)
            return
        self.rooms: list[str] = []
        await self.accept()

    async def receive_json(self, content: dict, **kwargs: object) -> None:
        if content.get("op") == "subscribe":
            room = str(content["room_id"])
            await self.channel_layer.group_add(f"room_{room}", self.channel_name)
            self.rooms.append(room)
            await self.send_json({"type": "subscribed", "room_id": room, "last_seq": 0})
        elif content.get("op") == "ping":
            await self.send_json({"type": "pong"})

    async def disconnect(self, code: int) -> None:
        for room in getattr(self, "rooms", []):
            await self.channel_layer.group_discard(f"room_{room}", self.channel_name)

    async def room_event(self, message: dict) -> None:
        await self.send_json(message["frame"])
