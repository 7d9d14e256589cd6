"""HTTP: sign in for a token; post into a room (stored with the ORM, then sent to the room's group)."""

import json
import secrets

from channels.layers import get_channel_layer
from django.http import HttpRequest, JsonResponse

from forum.models import Post, Token


async def ready(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ready": True})


async def signin(request: HttpRequest) -> JsonResponse:
    token = await Token.objects.acreate(key=secrets.token_urlsafe(16))
    return JsonResponse({"token": token.key})


async def create_post(request: HttpRequest, room: str) -> JsonResponse:
    key = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if not await Token.objects.filter(key=key).aexists():
        return JsonResponse({"detail": "sign in"}, status=401)
    body = json.loads(request.body)["body"]
    post = await Post.objects.acreate(room=room, body=body)
    data = {
        "id": str(post.pk),
        "room_id": room,
        "body": post.body,
        "created_at": post.created_at.isoformat(),
        "seq": post.pk,
    }
    frame = {"type": "event", "room_id": room, "seq": post.pk, "event": "post.created", "data": data}
    await get_channel_layer().group_send(f"room_{room}", {"type": "room.event", "frame": frame})
    return JsonResponse(data, status=201)
