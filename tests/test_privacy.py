"""Pseudonymity, tested the way an attacker would look for a leak.

Sam is in two circles under two aliases. A peer who shares both circles with Sam walks every peer-visible endpoint,
page, websocket frame (replays and live) and notification, and searches everything for Sam's email, name and account
id, and for anything that ties Sam's two memberships together. Then the same walk as the coach of a circle whose
`coach_sees_identity` is off.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from db.tables import MailMessage
from tests.client import PASSWORD, ApiClient, Match, User, WsClient
from tests.conftest import Server
from tests.smtp import MailCatcher, html_of, text_of
from tests.test_email import settings_env, smtp  # noqa: F401 (fixtures: mail goes to a real SMTP server here)

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
        circles.append({"circle": circle, "room": room, "sam": sam_m, "sam_alias": sam_alias, "invite": invite["code"]})
    return {"coach": coach, "sam": sam, "peer": peer, "circles": circles}


async def _activity(world: dict[str, Any]) -> None:
    """Sam does everything a member can, and is on the receiving end of everything a coach can do: a hidden post,
    a pause, a drop-in, a removal (from circle One) and an alias change (in circle Two, Lantern becomes Ember)."""
    coach, sam, peer = world["coach"], world["sam"], world["peer"]
    for c in world["circles"]:
        room = c["room"]["id"]
        # Sam's words never spell an alias, so any alias found below is one the server put there.
        post = await sam.post(room, f"An experiment of mine in {c['circle']['name']}", kind="experiment")
        await sam.post(room, "a reply", parent_id=post["id"])
        peer_post = await peer.post(room, f'Hello @{c["sam_alias"]} <a hx-get="/evil">click</a>')
        await sam.ok("PUT", f"/api/v1/posts/{peer_post['id']}/like")
        await coach.ok("PUT", f"/api/v1/posts/{post['id']}/like")
        await coach.post(room, "What did you notice?", kind="question", parent_id=post["id"])
        await coach.ok("PUT", f"/api/v1/posts/{post['id']}/pin", {"note": "insight"})
        await coach.ok("POST", f"/api/v1/posts/{peer_post['id']}/tags", {"membership_id": c["sam"]["membership_id"]})
        await sam.ok("POST", f"/api/v1/posts/{peer_post['id']}/reports", {"reason": "just testing"})
        await sam.ok(
            "PATCH", f"/api/v1/posts/{post['id']}", {"body": f"An experiment of mine in {c['circle']['name']}, edited"}
        )
        c["sam_post"] = post["id"]
        # Sam's journal: a first reflection, the coach's private reply.
        mine = await sam.ok("GET", f"/api/v1/memberships/{c['sam']['membership_id']}/journal")
        private = await sam.post(mine["id"], "Not ready to say this in the room yet")
        await coach.post(mine["id"], "Thank you for trusting me with it", parent_id=private["id"])
        # The lab: an experiment with its record, tried and debriefed (the coach is told), moved live.
        plan = {
            "assumption": "If I say no, the friendship breaks",
            "belief_before": 75,
            "action": "Say no to the Saturday move, kindly",
            "prediction": "A cold week",
            "safety_behaviours": ["over-explaining"],
        }
        lab = await sam.post(room, "", kind="experiment", experiment=plan)
        await sam.ok("PATCH", f"/api/v1/posts/{lab['id']}/experiment", {"state": "tried", "outcome": "Said it"})
        debrief = {"state": "debriefed", "outcome": "Fine", "matched_prediction": "no", "belief_after": 25}
        await sam.ok("PATCH", f"/api/v1/posts/{lab['id']}/experiment", {**debrief, "learning": "No is allowed"})
        # A small win on the wall, liked by the coach; and a win and an experiment kept in Sam's journal (canaries).
        win = await sam.post(room, "Took my whole lunch break", kind="win")
        await coach.ok("PUT", f"/api/v1/posts/{win['id']}/like")
        await sam.post(mine["id"], "JOURNAL-CANARY win", kind="win")
        # Care: Sam's care check and Sam telling the coach reach nobody else (canaries); a post with a content note
        # and a reply wish reaches the peer (the control).
        cid = c["circle"]["id"]
        await sam.ok("POST", f"/api/v1/circles/{cid}/care-check", {"body": "CARE-CANARY I want to die"}, status=200)
        await sam.ok("POST", f"/api/v1/circles/{cid}/care-concern", {}, status=204)
        await sam.post(room, "CARE-CONTROL a hard week", content_note="CARE-CONTROL note", reply_wish="listen")
        await sam.post(mine["id"], "", kind="experiment", experiment={**plan, "assumption": "JOURNAL-CANARY plan"})
    one, two = world["circles"]
    # The coach carries Sam's post from circle One into circle Two.
    first = (await coach.ok("GET", f"/api/v1/rooms/{one['room']['id']}/posts"))["items"][-1]
    await coach.ok("POST", f"/api/v1/posts/{first['id']}/shares", {"room_id": two["room"]["id"]})

    # A drop-in in circle Two: Sam raises a hand, posts, is spotlighted; it ends with a summary naming Sam.
    starts = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
    dropin = await coach.ok(
        "POST",
        f"/api/v1/circles/{two['circle']['id']}/dropins",
        {"title": "Drop-in", "starts_at": starts, "duration_minutes": 30},
    )
    await coach.ok("POST", f"/api/v1/dropins/{dropin['id']}/start", status=200)
    await sam.ok("PUT", f"/api/v1/dropins/{dropin['id']}/hand", status=200)
    spoken = await sam.post(dropin["room_id"], "What I tried this week", kind="experiment")
    await coach.ok("PUT", f"/api/v1/dropins/{dropin['id']}/spotlight", {"post_id": spoken["id"]}, status=200)
    await coach.ok("PUT", f"/api/v1/posts/{spoken['id']}/pin", {"note": "from the drop-in"})
    await coach.ok("POST", f"/api/v1/dropins/{dropin['id']}/end", status=200)
    world["dropin"] = dropin

    # The coach acts on Sam: hides a post in One, pauses and resumes Sam in Two, removes Sam from One.
    await coach.ok("PUT", f"/api/v1/posts/{one['sam_post']}/hidden", {"reason": "names"})
    path = f"/api/v1/circles/{two['circle']['id']}/members/{two['sam']['membership_id']}/mute"
    await coach.ok("PUT", path, {"minutes": 30, "reason": "cool off"})
    await coach.ok("DELETE", path, status=200)
    await coach.ok("DELETE", f"/api/v1/circles/{one['circle']['id']}/members/{one['sam']['membership_id']}")
    # Sam takes a new alias in circle Two; Lantern must be gone from everything the server sends about Sam.
    await sam.ok("PATCH", f"/api/v1/circles/{two['circle']['id']}/membership", {"alias": "Ember"})
    two["old_alias"], two["sam_alias"] = "Lantern", "Ember"


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
            f"/circles/{cid}/dropins",
            f"/circles/{cid}/experiments?limit=100",
            f"/rooms/{rid}/posts?limit=100",
            # Search (issue 18): every post the viewer may read that has a common word, with its excerpt.
            f"/circles/{cid}/search?q=my&limit=50",
            f"/circles/{cid}/search?q=in%20&limit=50",
        ):
            walk.add(f"GET {path}", await viewer.ok("GET", f"/api/v1{path}"))
        for item in (await viewer.ok("GET", f"/api/v1/rooms/{rid}/posts?limit=100"))["items"]:
            walk.add(f"GET /posts/{item['id']}", await viewer.ok("GET", f"/api/v1/posts/{item['id']}"))
        # Journals: the viewer's own (as a member), and every member's for the coach; each journal's posts too.
        for m in (await viewer.ok("GET", "/api/v1/me"))["memberships"]:
            if m["circle_id"] == cid:
                own = await viewer.ok("GET", f"/api/v1/memberships/{m['membership_id']}/journal")
                walk.add("GET /memberships/{id}/journal", own)
                walk.add("GET journal posts", await viewer.ok("GET", f"/api/v1/rooms/{own['id']}/posts"))
        response = await viewer.call("GET", f"/api/v1/circles/{cid}/journals")
        if response.status_code == 200:
            walk.add("GET /circles/{id}/journals", response.json())
        # The coach's pulse (issue 16): 403 to members; the coach's has aliases only, never identity.
        response = await viewer.call("GET", f"/api/v1/circles/{cid}/pulse?days=365")
        if response.status_code == 200:
            walk.add("GET /circles/{id}/pulse", response.json())
        for path in (f"/circles/{cid}/reports?open=false", f"/circles/{cid}/audit", f"/circles/{cid}/former-members"):
            response = await viewer.call("GET", f"/api/v1{path}")
            if response.status_code == 200:
                walk.add(f"GET {path}", response.json())
    dropin = world["dropin"]
    walk.add("GET /dropins/{id}", await viewer.ok("GET", f"/api/v1/dropins/{dropin['id']}"))
    for item in (await viewer.ok("GET", f"/api/v1/rooms/{dropin['room_id']}/posts?limit=100"))["items"]:
        walk.add("GET drop-in post", await viewer.ok("GET", f"/api/v1/posts/{item['id']}"))
    export = (await viewer.call("GET", "/api/v1/me/export")).json()
    for note in export["notifications"]:
        walk.add("export notification", note)
    walk.add("export posts and memberships", export["posts"] + export["memberships"])


async def _walk_pages(walk: Walk, viewer: User, world: dict[str, Any], api: ApiClient) -> None:
    async with httpx.AsyncClient(base_url=api.base_url, cookies={"kindred_session": viewer.token}) as browser:
        paths = ["/", "/account", "/notifications", "/settings/notifications"]
        dropin = world["dropin"]
        paths += [
            f"/dropins/{dropin['id']}/panel",
            f"/dropins/{dropin['id']}/calendar.ics",
            f"/rooms/{dropin['room_id']}",
        ]
        rooms = [(c["room"]["id"]) for c in world["circles"]] + [dropin["room_id"]]
        for c in world["circles"]:
            cid, rid = c["circle"]["id"], c["room"]["id"]
            paths += [
                f"/circles/{cid}",
                f"/circles/{cid}/insights",
                f"/circles/{cid}/moderation",
                f"/circles/{cid}/care",
                f"/circles/{cid}/about",
                f"/rooms/{rid}",
                f"/rooms/{rid}/threads",
                f"/join/{c['invite']}",
                f"/circles/{cid}?welcome=1",
                f"/circles/{cid}?already=1",
                # The lab and journals (issue 15): the circle's lab, the viewer's own lab, the wins wall, the
                # viewer's journal (a redirect to its room), the coach's list, and the guided composer.
                f"/circles/{cid}/lab",
                f"/circles/{cid}/lab/mine",
                f"/circles/{cid}/wins",
                f"/circles/{cid}/journal",
                f"/circles/{cid}/journals",
                f"/circles/{cid}/pulse?days=365&quiet=1",
                f"/rooms/{rid}/experiments/new",
                f"/circles/{cid}/search?q=my",
            ]
            # Every member's own lab: 404 to peers (not gathered into a profile), the coach's to read.
            for m in await viewer.ok("GET", f"/api/v1/circles/{cid}/members"):
                paths.append(f"/circles/{cid}/lab/members/{m['membership_id']}")
            for m in (await viewer.ok("GET", "/api/v1/me"))["memberships"]:
                if m["circle_id"] == cid:
                    own = await viewer.ok("GET", f"/api/v1/memberships/{m['membership_id']}/journal")
                    rooms.append(own["id"])
                    paths.append(f"/rooms/{own['id']}")
            # The coach reads every member's journal.
            listed = await viewer.call("GET", f"/api/v1/circles/{cid}/journals")
            if listed.status_code == 200:
                for journal in listed.json():
                    rooms.append(journal["id"])
                    paths.append(f"/rooms/{journal['id']}")
        for rid in rooms:
            for item in (await viewer.ok("GET", f"/api/v1/rooms/{rid}/posts"))["items"]:
                pid = item["id"]
                paths += [f"/posts/{pid}", f"/posts/{pid}/share", f"/posts/{pid}/tag", f"/posts/{pid}/reply"]
                paths += [f"/posts/{pid}/edit", f"/posts/{pid}/main"]
                paths += [f"/posts/{pid}/reply?kind=question"]
                paths += [f"/posts/{pid}/form/{which}" for which in ("pin", "hide", "remove", "report")]
                paths += [f"/posts/{pid}/debrief"]
        for path in paths:
            response = await browser.get(path)
            # Sharing or tagging a hidden post is refused (404 to peers, 409 to its author and the coach); the
            # refusal is walked like any page.
            refusals: tuple[int, ...] = (404, 409) if path.endswith(("/share", "/tag")) else ()
            # An invite to a circle the viewer is already in sends them to it ("You're already here as ...").
            if path.startswith("/join/") or path.endswith("/journal"):
                refusals = (303,)
            # Someone else's lab; the debrief of a post without a record; a debrief by someone else is a 403.
            if "/lab/members/" in path or path.endswith("/debrief"):
                refusals = (404,)
            assert response.status_code in (200, 403, *refusals), (path, response.status_code)
            text = response.text
            # User HTML only ever sits inside an hx-disable container, and never carries hx-* attributes of its own.
            assert text.count('<div class="body"') == text.count('<div class="body" hx-disable>'), path
            assert not re.search(r'<[^>]*hx-get="/evil"', text), path
            # The viewer's own name appears in their own page header; that is theirs to see.
            walk.add(f"page {path}", text.replace(viewer.name, "<viewer>"))
        rendered = (await browser.get(f"/rooms/{world['circles'][1]['room']['id']}")).text
        assert rendered.count('<div class="body" hx-disable>') >= 3, "posts are rendered, inside hx-disable"


async def _walk_frames(walk: Walk, viewer: User, world: dict[str, Any], api: ApiClient) -> None:
    """Every frame a socket gets: replays of every room, presence, live posts and the viewer's own notifications."""
    import websockets

    sam, coach = world["sam"], world["coach"]
    two = world["circles"][1]
    room = two["room"]["id"]
    for variant in ("", "?format=html"):
        conn = await websockets.connect(
            api.ws_url + variant, additional_headers={"Authorization": f"Bearer {viewer.token}"}
        )
        ws = WsClient(conn)
        for rid in [c["room"]["id"] for c in world["circles"]] + [world["dropin"]["room_id"]]:
            await ws.send({"op": "subscribe", "room_id": rid, "since": 0})
            await ws.recv_until(acknowledged(rid))
        # Live traffic too: Sam in the room (presence), a new post, and notifications for the viewer.
        sam_ws = await sam.ws()
        await sam_ws.subscribe(room)
        mine = await viewer.post(room, "a post of the viewer's")
        post = await sam.post(room, "live post")
        # Posting over the socket (issue 20): the viewer's own answer frame, and Sam's post fanned out from Sam's.
        await ws.send({"op": "post", "room_id": room, "body": "the viewer, by socket", "client_id": f"v{variant}"})
        await sam_ws.send({"op": "post", "room_id": room, "body": "Sam, by socket", "client_id": "sam-socket"})
        await sam_ws.recv_until(lambda f: f.get("type") == "posted")
        await sam.post(room, "a live reply to you", parent_id=mine["id"])
        await coach.post(
            room, "a question for you", kind="question", parent_id=mine["id"]
        ) if viewer is not coach else None
        await sam_ws.close()
        first = await ws.recv_until(lambda f: f.get("type") == "notification")
        walk.add("frame notification", first)
        walk.add("frame posted", await ws.recv_until(lambda f: f.get("type") == "posted"))
        walk.add("frame event by socket", await ws.recv_until(lambda f: "Sam, by socket" in json.dumps(f)))
        for frame in await ws.quiet(0.8):
            walk.add(f"frame {frame.get('type')} {frame.get('event', '')}", frame)
        for frame in ws.backlog:
            walk.add("frame", frame)
        assert post["author"]["alias"] == "Ember"
        seen = [text for where, text in walk.seen if where.startswith("frame")]
        assert any('"type": "posted"' in text and "the viewer, by socket" in text for text in seen), variant
        assert any("Sam, by socket" in text for text in seen), variant
        await ws.close()


async def _walk_mail(
    walk: Walk,
    viewer: User,
    world: dict[str, Any],
    api: ApiClient,
    smtp: MailCatcher,  # noqa: F811
) -> list[str]:
    """Every kind of mail, as the viewer receives it, and the pages its links open: a password reset, an address
    change (the notice to the old address, the link to the new one, the notice that it changed), and an address
    change to Sam's address (the viewer is told the same as for any address). Returns what Sam's inbox got meanwhile
    (it is told its address is already in use), for the caller to search for the viewer's identity."""
    sam = world["sam"]
    new = f"moved-{viewer.email}"
    before = len(smtp.messages)
    await api.http.post("/api/v1/auth/reset", json={"email": viewer.email})
    await viewer.ok("POST", "/api/v1/me/email", {"email": sam.email, "password": PASSWORD}, status=202)
    await viewer.ok("POST", "/api/v1/me/email", {"email": new, "password": PASSWORD}, status=202)
    # The reset, two notices to the viewer, the "already in use" mail to Sam, the link to the new address.
    await smtp.wait_for(before + 5)
    link = re.compile(r"https?://[^/\s]+(/(reset|email/confirm)/([A-Za-z0-9_-]+))")
    found = {m[2]: m for message in smtp.messages[before:] if (m := link.search(text_of(message)))}
    assert set(found) == {"reset", "email/confirm"}, [m["Subject"] for m in smtp.messages[before:]]
    async with httpx.AsyncClient(base_url=api.base_url, cookies={"kindred_session": viewer.token}) as browser:
        for path in ("/reset", "/account", found["reset"][1], found["email/confirm"][1]):
            response = await browser.get(path)
            assert response.status_code == 200, (path, response.status_code)
            walk.add(f"page {path[:14]}", response.text.replace(viewer.name, "<viewer>"))
    done = await api.http.post("/api/v1/me/email/confirm", json={"token": found["email/confirm"][3]})
    assert done.status_code == 200, done.text
    await smtp.wait_for(before + 6)
    subjects, to_sam = set(), []
    for message in smtp.messages[before:]:
        parts = [message["Subject"], message["From"], text_of(message), html_of(message)]
        if message["To"] == sam.email:
            to_sam += parts
            continue
        assert message["To"] in (viewer.email, new), message["To"]
        subjects.add(message["Subject"])
        for part in parts:
            walk.add(f"mail {message['Subject']}", part)
    assert len(subjects) == 4 and len(to_sam) == 4, subjects
    return to_sam


async def _walk_digests(walk: Walk, viewer: User, server: Server) -> None:
    """The viewer's digest and coach's digest (docs/email.md), written now at the viewer's hour; every mail the
    viewer was sent joins the walk."""
    from app.services import coach_digest, digests

    at = datetime.now(UTC)
    prefs = await viewer.ok("GET", "/api/v1/notifications/preferences")
    prefs["timezone"] = "UTC"
    prefs["mail"] = {**prefs["mail"], "digest": "daily", "digest_hour": at.hour, "coach_digest_hour": at.hour}
    await viewer.ok("PUT", "/api/v1/notifications/preferences", prefs)
    live, settings = server.app.state["live"], server.settings
    await digests.send_digests(live, settings, at)
    working = at
    while working.weekday() >= 5:
        working += timedelta(days=1)
    await coach_digest.send_coach_digests(live, settings, working)
    for row in await MailMessage.select().where(MailMessage.to_addr == viewer.email):
        walk.add(f"mail {row['kind']}", f"{row['subject']}\n{row['body_text']}\n{row['body_html']}")


def _assert_no_old_alias(walk: Walk, old: str) -> None:
    """The old alias survives only as words people wrote (an @mention), never where the server names a member."""
    for where, text in walk.seen:
        assert old not in text.replace(f"@{old}", ""), f"the old alias {old!r} is still in {where}"


def acknowledged(room_id: str) -> Match:
    return lambda f: f.get("type") in ("subscribed", "resync") and f.get("room_id") == room_id


async def test_a_peer_never_learns_who_is_behind_an_alias(api: ApiClient, server: Server, smtp: MailCatcher) -> None:  # noqa: F811
    world = await _setup(api)
    await _activity(world)
    sam, peer = world["sam"], world["peer"]
    walk = Walk()
    await _walk_digests(walk, peer, server)  # before the pages: a visit since would hold the digest back
    assert any(where == "mail digest" and "Took my whole lunch break" in t for where, t in walk.seen), "a digest"
    await _walk_api(walk, peer, world)
    await _walk_pages(walk, peer, world, api)
    await _walk_frames(walk, peer, world, api)
    peer_email, peer_name = peer.email, peer.name
    to_sam = await _walk_mail(walk, peer, world, api, smtp)
    # Sam's inbox was told its address is in use: never by whom.
    for text in to_sam:
        assert peer_email not in text and peer_name not in text and "PatOne" not in text, text
    assert len(walk.seen) > 100, "the walk covered the surface"
    assert any("frame notification" in where for where, _ in walk.seen), "live notifications were captured"
    assert any(where.startswith("page /dropins/") for where, _ in walk.seen)
    walk.assert_absent(sam.email, sam.name, sam.id, "Hidden-Name")
    # Sam's journal (a win and an experiment in it) never reaches a peer: not on the wins wall, the lab, any page,
    # list or frame. The control: the win Sam shared in the room is on the peer's wins wall.
    walk.assert_absent("JOURNAL-CANARY")
    # Care: no peer learns of a care check or of the coach being told; the content-noted post did arrive.
    # ("care.concern" itself is on everyone's notification settings page, as a kind coaches receive.)
    walk.assert_absent("CARE-CANARY", "having a hard time", '"kind":"care.concern"', '"kind": "care.concern"')
    assert any("CARE-CONTROL note" in text for where, text in walk.seen if where.startswith("page /rooms/"))
    assert any("CARE-CONTROL note" in text for where, text in walk.seen if "frame" in where)
    assert any(where.endswith("/wins") and "Took my whole lunch break" in text for where, text in walk.seen)
    # Sam's debrief is on the circle's lab page for the peer (what members learned), by alias.
    assert any(where.endswith("/lab") and "No is allowed" in text for where, text in walk.seen)
    # Sam's post in circle One was shared into Two by the coach, then hidden: its words are gone for the peer from
    # the copy too, in the API, the pages and every replay (issue 12, class 3). Control: the peer did see it.
    assert any("An experiment of mine in Two" in text for _, text in walk.seen), "Sam's other post is visible"
    walk.assert_absent("An experiment of mine in One")
    one, two = world["circles"]
    # Nobody can pass as Sam: a look-alike of Sam's alias (Cyrillic Е) is refused with a reason (class 5).
    look_alike = await peer.call("PATCH", f"/api/v1/circles/{two['circle']['id']}/membership", {"alias": "\u0415mber"})
    assert look_alike.status_code == 409 and "looks too much like" in look_alike.json()["detail"], look_alike.text
    walk.assert_never_together(one["sam"]["membership_id"], two["sam"]["membership_id"])
    walk.assert_never_together(f'"{one["sam_alias"]}"', f'"{two["sam_alias"]}"')
    walk.assert_never_together(f'"{one["sam_alias"]}"', f'"{two["old_alias"]}"')
    _assert_no_old_alias(walk, two["old_alias"])
    # The cross-circle share carries neither Sam's alias from circle One nor that membership's id.
    shared = [
        p for p in (await peer.ok("GET", f"/api/v1/rooms/{two['room']['id']}/posts"))["items"] if p["shared_from"]
    ]
    assert shared and shared[0]["shared_from"]["author"] is None
    assert one["sam"]["membership_id"] not in json.dumps(shared) and one["sam_alias"] not in json.dumps(
        shared[0]["shared_from"]
    )


async def test_coach_without_identity_sees_aliases_only(api: ApiClient, server: Server, smtp: MailCatcher) -> None:  # noqa: F811
    world = await _setup(api)
    coach = world["coach"]
    for c in world["circles"]:
        await coach.ok("PATCH", f"/api/v1/circles/{c['circle']['id']}", {"coach_sees_identity": False})
    await _activity(world)
    walk = Walk()
    await _walk_digests(walk, coach, server)
    assert any(where == "mail coach_digest" for where, _ in walk.seen), "the coach's digest was captured"
    await _walk_api(walk, coach, world)
    await _walk_pages(walk, coach, world, api)
    await _walk_frames(walk, coach, world, api)
    await _walk_mail(walk, coach, world, api, smtp)
    assert any("frame notification" in where for where, _ in walk.seen), "live notifications were captured"
    sam = world["sam"]
    walk.assert_absent(sam.email, sam.name, sam.id, "Hidden-Name", world["peer"].email, world["peer"].name)
    _assert_no_old_alias(walk, world["circles"][1]["old_alias"])
    # The journal canary is the coach's to read: the walk that must not find it for a peer does find it here.
    assert any("JOURNAL-CANARY" in text for where, text in walk.seen if where.startswith("page /rooms/"))
    # Turning identities on reaches only people who join afterwards: Sam and Pat joined while it was on, then it
    # was switched off, which withdrew it; switched on again, they stay aliases.
    two = world["circles"][1]["circle"]["id"]
    await coach.ok("PATCH", f"/api/v1/circles/{two}", {"coach_sees_identity": True})
    members = await coach.ok("GET", f"/api/v1/circles/{two}/members")
    assert sam.email not in json.dumps(members) and world["peer"].email not in json.dumps(members)
    newcomer = await api.signup("New Comer")
    await newcomer.ok("POST", f"/api/v1/invites/{world['circles'][1]['invite']}/join", {"alias": "Newcomer"})
    members = await coach.ok("GET", f"/api/v1/circles/{two}/members")
    assert newcomer.email in json.dumps(members) and sam.email not in json.dumps(members)
    login = await api.http.post("/api/v1/auth/login", json={"email": sam.email, "password": PASSWORD})
    assert login.status_code == 200
