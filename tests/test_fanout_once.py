"""Fan-out makes each live frame once per instance: one JSON frame and one HTML frame per event, however many sockets
of either variant are in the room (the hub's `frames` and `rendered` counters, which /healthz shows operators)."""

from __future__ import annotations

import pytest
import websockets

from tests.client import ApiClient, Match, WsClient, make_circle
from tests.conftest import Server

pytestmark = pytest.mark.anyio


def is_event(room_id: str) -> Match:
    return lambda f: f.get("type") == "event" and f.get("room_id") == room_id


async def test_each_event_is_encoded_once_per_variant_whatever_the_sockets(api: ApiClient, server: Server) -> None:
    c = await make_circle(api, members=3)
    json_sockets = [await member.ws() for member in c.members for _ in range(2)]
    html_sockets = []
    for member in c.members:
        conn = await websockets.connect(
            server.ws_url + "?format=html", additional_headers={"Authorization": f"Bearer {member.token}"}
        )
        html_sockets.append(WsClient(conn))
    for ws in [*json_sockets, *html_sockets]:
        await ws.subscribe(c.room_id)

    stats = server.hub.stats
    frames_before, rendered_before, delivered_before = stats["frames"], stats["rendered"], stats["delivered"]
    post = await c.members[0].post(c.room_id, "to *every* socket")
    reply = await c.members[1].post(c.room_id, "and a reply", parent_id=post["id"])
    json_frames = [await ws.events(c.room_id, 2) for ws in json_sockets]
    html_frames = [await ws.events(c.room_id, 2) for ws in html_sockets]

    assert [f["data"]["id"] for f in json_frames[0]] == [post["id"], reply["id"]]
    assert all(frames == json_frames[0] for frames in json_frames)
    assert [f["post_id"] for f in html_frames[0]] == [post["id"], reply["id"]]
    assert all(frames == html_frames[0] for frames in html_frames)
    # Two events, two variants in the room: four frames made and two renders, for six JSON and three HTML sockets.
    assert stats["delivered"] - delivered_before == 2 * 9
    assert stats["frames"] - frames_before == 2 * 2
    assert stats["rendered"] - rendered_before == 2
    for ws in html_sockets:
        await ws.close()
