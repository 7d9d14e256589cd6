"""Pseudonymity, tested the way an attacker would look for a leak.

Sam is in two circles under two aliases. A peer who shares both circles with Sam walks every peer-visible endpoint,
page, websocket frame (replays and live) and notification, and searches everything for Sam's email, name and account
id, and for anything that ties Sam's two memberships together. Then the same walk as the coach of a circle whose
`coach_sees_identity` is off.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.client import PASSWORD, ApiClient, User, WsClient

pytestmark = pytest.mark.anyio


class Walk:
    """Everything one viewer was shown, each item labelled by where it came from."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def add(self, where: str, payload: Any) -> None:
        self.seen.append((where, payload if isinstance(payload, str) else json.dumps(payload)))

    def assert_absent(self, *secrets: str) -> None:
        for where, text in self.seen:
            for secret in secrets:
                assert secret not in text, (
                    f"{secret!r} leaked in {where}: …{text[max(0, text.find(secret) - 80) :][:200]}…"
                )

    def assert_never_together(self, one: str, other: str) -> None:
        for where, text in self.seen:
            assert not (one in text and other in text), f"{where} ties {one!r} to {other!r}"


async def _setup(api: ApiClient) -> dict[str, Any]:
    coach = await api.signup("Coach Dana")
    sam = await api.signup("Samuel Hidden-Name")
    peer = await api.signup("Pat Peer")
    circles = []
    for name, sam_alias, peer_alias in (("One", "River", "PatOne"), ("Two", "Lantern", "PatTwo")):
        circle = await coach.ok("POST", "/api/v1/circles", {"name": name, "commonality": f"{name} path"})
        room = (await coach.ok("GET", f"/api/v1/circles/{circle['id']}/rooms"))[0]
        invite = await coach.ok("POST", f"/api/v1/circles/{circle['id']}/invites", {})
        sam_m = await sam.ok("POST", f"/api/v1/invites/{invite['code']}/join", {"alias": sam_alias})
        await peer.ok("POST", f"/api/v1/invites/{invite['code']}/join", {"alias": peer_alias})
        circles.append({"circle": circle, "room": room, "sam": sam_m, "sam_alias": sam_alias})
    return {"coach": coach, "sam": sam, "peer": peer, "circles": circles}


async def _activity(world: dict[str, Any]) -> None:
    """Sam does everything a member can, and is on the receiving end of everything a coach can do."""
    coach, sam, peer = world["coach"], world["sam"], world["peer"]
    for c in world["circles"]:
        room = c["room"]["id"]
        post = await sam.post(room, f"An experiment from {c['sam_alias']}", kind="experiment")
        await sam.post(room, "a reply", parent_id=post["id"])
        peer_post = await peer.post(room, f"Hello @{c['sam_alias']}")
        await sam.ok("PUT", f"/api/v1/posts/{peer_post['id']}/like")
        await coach.ok("PUT", f"/api/v1/posts/{post['id']}/like")
        await coach.post(room, "What did you notice?", kind="question", parent_id=post["id"])
        await coach.ok("PUT", f"/api/v1/posts/{post['id']}/pin", {"note": "insight"})
        await coach.ok("POST", f"/api/v1/posts/{peer_post['id']}/tags", {"membership_id": c["sam"]["membership_id"]})
        await sam.ok("POST", f"/api/v1/posts/{peer_post['id']}/reports", {"reason": "just testing"})
        await sam.ok("PATCH", f"/api/v1/posts/{post['id']}", {"body": f"An experiment from {c['sam_alias']}, edited"})
    one, two = world["circles"]
    # The coach carries Sam's post from circle One into circle Two.
    first = (await coach.ok("GET", f"/api/v1/rooms/{one['room']['id']}/posts"))["items"][-1]
    await coach.ok("POST", f"/api/v1/posts/{first['id']}/shares", {"room_id": two["room"]["id"]})


async def _walk_api(walk: Walk, viewer: User, world: dict[str, Any]) -> None:
    walk.add("GET /me", await viewer.ok("GET", "/api/v1/me"))
    # The feed spans circles, so it is judged item by item: no one notification may tie two memberships together.
    for note in await viewer.ok("GET", "/api/v1/notifications?limit=100"):
        walk.add(f"notification {note['kind']}", note)
    for c in world["circles"]:
        cid, rid = c["circle"]["id"], c["room"]["id"]
        for path in (
            f"/circles/{cid}",
            f"/circles/{cid}/members",
            f"/circles/{cid}/rooms",
            f"/circles/{cid}/insights",
            f"/rooms/{rid}/posts?limit=100",
        ):
            walk.add(f"GET {path}", await viewer.ok("GET", f"/api/v1{path}"))
        for item in (await viewer.ok("GET", f"/api/v1/rooms/{rid}/posts?limit=100"))["items"]:
            walk.add(f"GET /posts/{item['id']}", await viewer.ok("GET", f"/api/v1/posts/{item['id']}"))
        for path in (f"/circles/{cid}/reports?open=false", f"/circles/{cid}/audit"):
            response = await viewer.call("GET", f"/api/v1{path}")
            if response.status_code == 200:
                walk.add(f"GET {path}", response.json())
    export = (await viewer.call("GET", "/api/v1/me/export")).json()
    for note in export["notifications"]:
        walk.add("export notification", note)
    walk.add("export posts and memberships", export["posts"] + export["memberships"])


async def _walk_pages(walk: Walk, viewer: User, world: dict[str, Any], api: ApiClient) -> None:
    async with httpx.AsyncClient(base_url=api.base_url, cookies={"kindred_session": viewer.token}) as browser:
        paths = ["/", "/account"]
        for c in world["circles"]:
            cid, rid = c["circle"]["id"], c["room"]["id"]
            paths += [f"/circles/{cid}", f"/circles/{cid}/insights", f"/circles/{cid}/moderation", f"/rooms/{rid}"]
            for item in (await viewer.ok("GET", f"/api/v1/rooms/{rid}/posts"))["items"]:
                paths += [f"/posts/{item['id']}", f"/posts/{item['id']}/share", f"/posts/{item['id']}/tag"]
        for path in paths:
            response = await browser.get(path)
            assert response.status_code in (200, 403), (path, response.status_code)
            # The viewer's own name appears in their own page header; that is theirs to see.
            walk.add(f"page {path}", response.text.replace(viewer.name, "<viewer>"))


async def _walk_frames(walk: Walk, viewer: User, world: dict[str, Any], api: ApiClient) -> None:
    for variant in ("", "?format=html"):
        import websockets

        conn = await websockets.connect(
            api.ws_url + variant, additional_headers={"Authorization": f"Bearer {viewer.token}"}
        )
        ws = WsClient(conn)
        for c in world["circles"]:
            await ws.send({"op": "subscribe", "room_id": c["room"]["id"], "since": 0})
            await ws.recv_until(lambda f: f.get("type") == "subscribed")
        # Live traffic too: presence, a new post, and a notification for the viewer.
        sam, coach = world["sam"], world["coach"]
        room = world["circles"][0]["room"]["id"]
        post = await sam.post(room, "live post")
        viewer_alias = next(
            m["alias"]
            for m in (await viewer.ok("GET", "/api/v1/me"))["memberships"]
            if m["circle_id"] == world["circles"][0]["circle"]["id"]
        )
        await coach.post(room, f"@{viewer_alias} see this", parent_id=post["id"])
        for frame in await ws.quiet(0.8):
            walk.add(f"frame {frame.get('type')} {frame.get('event', '')}", frame)
        for frame in ws.backlog:
            walk.add("frame", frame)
        await ws.close()


async def test_a_peer_never_learns_who_is_behind_an_alias(api: ApiClient) -> None:
    world = await _setup(api)
    await _activity(world)
    sam, peer = world["sam"], world["peer"]
    walk = Walk()
    await _walk_api(walk, peer, world)
    await _walk_pages(walk, peer, world, api)
    await _walk_frames(walk, peer, world, api)
    assert len(walk.seen) > 60, "the walk covered the surface"
    walk.assert_absent(sam.email, sam.name, sam.id, "Hidden-Name")
    one, two = world["circles"]
    walk.assert_never_together(one["sam"]["membership_id"], two["sam"]["membership_id"])
    walk.assert_never_together(f'"{one["sam_alias"]}"', f'"{two["sam_alias"]}"')
    # The cross-circle share carries neither Sam's alias from circle One nor that membership's id.
    shared = [
        p for p in (await peer.ok("GET", f"/api/v1/rooms/{two['room']['id']}/posts"))["items"] if p["shared_from"]
    ]
    assert shared and shared[0]["shared_from"]["author"] is None
    assert one["sam"]["membership_id"] not in json.dumps(shared) and one["sam_alias"] not in json.dumps(
        shared[0]["shared_from"]
    )


async def test_coach_without_identity_sees_aliases_only(api: ApiClient) -> None:
    world = await _setup(api)
    coach = world["coach"]
    for c in world["circles"]:
        await coach.ok("PATCH", f"/api/v1/circles/{c['circle']['id']}", {"coach_sees_identity": False})
    await _activity(world)
    walk = Walk()
    await _walk_api(walk, coach, world)
    await _walk_pages(walk, coach, world, api)
    sam = world["sam"]
    walk.assert_absent(sam.email, sam.name, sam.id, "Hidden-Name", world["peer"].email, world["peer"].name)
    # With identities on, the coach does see them (and only the coach).
    await coach.ok("PATCH", f"/api/v1/circles/{world['circles'][0]['circle']['id']}", {"coach_sees_identity": True})
    members = await coach.ok("GET", f"/api/v1/circles/{world['circles'][0]['circle']['id']}/members")
    assert sam.email in json.dumps(members)
    login = await api.http.post("/api/v1/auth/login", json={"email": sam.email, "password": PASSWORD})
    assert login.status_code == 200
