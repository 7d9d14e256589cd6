"""Care on both backends (docs/care.md): care resources, the care check, telling the coach, content notes, reply
wishes, collapsed themes and safe-alias warnings, through the JSON API and the socket."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.client import ApiClient, make_circle, page_client

pytestmark = pytest.mark.anyio

RISK = "I can't go on. I want to kill myself."


async def test_care_api(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    jo, peer = c.members
    outsider = await api.signup()
    base = f"/api/v1/circles/{c.id}"

    # Care resources: a default that points to emergency services and helpline directories; the coach edits it.
    circle = await jo.ok("GET", base)
    assert "findahelpline.com" in circle["care_resources"] and "iasp.info" in circle["care_resources_html"]
    assert "emergency" in circle["care_resources"]
    r = await jo.call("PATCH", base, {"care_resources": "mine"})
    assert r.status_code == 403
    r = await c.coach.call("PATCH", base, {"care_resources": "x" * 4001})
    assert r.status_code == 400 and "care_resources" in r.text
    edited = await c.coach.ok("PATCH", base, {"care_resources": "Call **Samaritans-like** line <script>x</script>"})
    assert edited["care_resources"].startswith("Call") and "<strong>" in edited["care_resources_html"]
    assert "<script" not in edited["care_resources_html"]
    assert edited["name"] == "Saying No", "other fields stay as they were"

    # The care check: members only, both directions, validated, nobody else learns of it.
    listening = await peer.ws()
    await listening.subscribe(c.room_id)
    answer = await jo.ok("POST", f"{base}/care-check", {"body": RISK}, status=200)
    assert answer["concern"] is True and "Samaritans-like" in answer["resources_html"]
    calm = await jo.ok("POST", f"{base}/care-check", {"body": "this deadline is killing me"}, status=200)
    assert calm["concern"] is False and calm["resources_html"] == answer["resources_html"]
    assert (await outsider.call("POST", f"{base}/care-check", {"body": RISK})).status_code == 404
    assert (await jo.call("POST", "/api/v1/circles/nope/care-check", {"body": RISK})).status_code == 404
    for bad in ({}, {"body": 5}, {"body": "x" * 20_001}):
        r = await jo.call("POST", f"{base}/care-check", bad)
        assert r.status_code == 400 and "body" in r.text, (bad, r.text)
    assert RISK not in r.text

    # Back to the default.
    reset = await c.coach.ok("PATCH", base, {"care_resources": None})
    assert "findahelpline.com" in reset["care_resources"]

    # Content notes and reply wishes: optional, always present, validated, in answers and frames, editable.
    plain = await jo.post(c.room_id, "an ordinary post")
    assert plain["content_note"] is None and plain["reply_wish"] is None
    noted = await jo.post(c.room_id, "my father died in spring", content_note="  grief  ", reply_wish="listen")
    assert (noted["content_note"], noted["reply_wish"]) == ("grief", "listen")
    frames = await listening.events(c.room_id, 2)
    by_id = {f["data"]["id"]: f["data"] for f in frames}
    assert by_id[plain["id"]]["content_note"] is None and by_id[noted["id"]]["reply_wish"] == "listen"
    assert by_id[noted["id"]]["content_note"] == "grief"
    for bad_field in ({"content_note": "x" * 81}, {"reply_wish": "advice"}, {"content_note": 3}):
        r = await jo.call("POST", f"/api/v1/rooms/{c.room_id}/posts", {"body": "b", **bad_field})
        field = next(iter(bad_field))
        assert r.status_code == 400 and field in r.text, r.text
    listed = await peer.ok("GET", f"/api/v1/rooms/{c.room_id}/posts")
    assert {p["id"]: p["content_note"] for p in listed["items"]}[noted["id"]] == "grief"
    thread = await peer.ok("GET", f"/api/v1/posts/{noted['id']}")
    assert thread["reply_wish"] == "listen"
    same = await jo.ok("PATCH", f"/api/v1/posts/{noted['id']}", {"body": "my father died in the spring"})
    assert (same["content_note"], same["reply_wish"]) == ("grief", "listen"), "absent fields stay"
    changed = await jo.ok(
        "PATCH", f"/api/v1/posts/{noted['id']}", {"body": "b", "content_note": "", "reply_wish": "ideas"}
    )
    assert (changed["content_note"], changed["reply_wish"]) == (None, "ideas")
    updated = await listening.recv_until(lambda f: f.get("type") == "event" and f["data"].get("body") == "b")
    assert updated["data"]["content_note"] is None and updated["data"]["reply_wish"] == "ideas"
    reply = await peer.post(c.room_id, "a reply", parent_id=noted["id"], reply_wish="questions")
    assert reply["reply_wish"] == "questions"

    # Telling the coach: the coach alone hears of it (the control: the peer's reply reached Jo).
    r = await jo.call("POST", f"{base}/care-concern", {})
    assert r.status_code == 204, r.text
    assert (await outsider.call("POST", f"{base}/care-concern", {})).status_code == 404
    coach_kinds = [n["kind"] for n in await c.coach.ok("GET", "/api/v1/notifications")]
    assert coach_kinds.count("care.concern") == 1
    concern = next(n for n in await c.coach.ok("GET", "/api/v1/notifications") if n["kind"] == "care.concern")
    journal = await c.coach.ok("GET", f"/api/v1/memberships/{concern['actor']['membership_id']}/journal")
    assert concern["room_id"] == journal["id"]
    assert "reply" in [n["kind"] for n in await jo.ok("GET", "/api/v1/notifications")], "the control arrived"
    seen: list[Any] = [await peer.ok("GET", "/api/v1/notifications"), await listening.quiet(0.2), listening.backlog]
    assert "care" not in json.dumps(seen) and RISK not in json.dumps(seen)

    # Themes collapsed always: per membership, cleaned.
    assert await jo.ok("GET", f"{base}/collapsed-themes") == {"themes": []}
    saved = await jo.ok("PUT", f"{base}/collapsed-themes", {"themes": [" Eating ", "eating", "self  harm"]})
    assert saved == {"themes": ["eating", "self harm"]}
    assert await jo.ok("GET", f"{base}/collapsed-themes") == saved
    assert await peer.ok("GET", f"{base}/collapsed-themes") == {"themes": []}
    r = await jo.call("PUT", f"{base}/collapsed-themes", {"themes": ["x" * 41]})
    assert r.status_code == 400 and "themes" in r.text

    # Safe aliases: a warning, never a block.
    newcomer = await api.signup()
    joined = await newcomer.ok("POST", f"/api/v1/invites/{c.invite}/join", {"alias": "Maria Lopez"})
    assert joined["alias"] == "Maria Lopez" and any("first and last name" in w for w in joined["warnings"])
    changed_alias = await newcomer.ok("PATCH", f"{base}/membership", {"alias": "maria 07700900123"})
    assert any("phone" in w for w in changed_alias["warnings"])
    fine = await newcomer.ok("PATCH", f"{base}/membership", {"alias": "Quiet Heron"})
    assert fine["warnings"] == []


async def test_care_pages_without_javascript(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    jo, peer = c.members
    async with page_client(api, jo) as browser:
        plain = {"_csrf_token": browser.headers["x-csrftoken"]}
        room = await browser.get(f"/rooms/{c.room_id}")
        assert room.status_code == 200 and f'href="/circles/{c.id}/care"' in room.text
        assert 'name="content_note"' in room.text and 'value="listen"' in room.text
        # A concern: the interstitial page, holding the draft, before anything is posted.
        del browser.headers["x-csrftoken"]
        r = await browser.post(f"/rooms/{c.room_id}/posts", data={**plain, "body": RISK, "content_note": "hard"})
        assert r.status_code == 200 and "Before this goes out" in r.text and "findahelpline.com" in r.text
        assert 'value="hard"' in r.text and "kill myself" in r.text
        assert (await peer.ok("GET", f"/api/v1/rooms/{c.room_id}/posts"))["items"] == []
        # Let my coach know: told, and the interstitial again; then post anyway.
        r = await browser.post(f"/rooms/{c.room_id}/posts", data={**plain, "body": RISK, "care": "coach"})
        assert r.status_code == 200 and "Your coach knows" in r.text
        r = await browser.post(f"/rooms/{c.room_id}/posts", data={**plain, "body": RISK, "care": "post"})
        assert r.status_code == 303
        # Move to my journal.
        r = await browser.post(f"/rooms/{c.room_id}/posts", data={**plain, "body": RISK + " j", "care": "journal"})
        assert r.status_code == 303
        # An ordinary post goes straight out.
        r = await browser.post(f"/rooms/{c.room_id}/posts", data={**plain, "body": "a calm day", "reply_wish": "ideas"})
        assert r.status_code == 303
        items = (await peer.ok("GET", f"/api/v1/rooms/{c.room_id}/posts"))["items"]
        assert [(p["body"], p["reply_wish"]) for p in items] == [("a calm day", "ideas"), (RISK, None)]
        assert [n["kind"] for n in await c.coach.ok("GET", "/api/v1/notifications")].count("care.concern") == 1
        assert all(n["kind"] != "care.concern" for n in await peer.ok("GET", "/api/v1/notifications"))
        # The care page, the about page (onboarding again), collapsed themes, alias warnings at join.
        care_page = await browser.get(f"/circles/{c.id}/care")
        assert care_page.status_code == 200 and "iasp.info" in care_page.text and "care_resources" not in care_page.text
        r = await browser.post(f"/circles/{c.id}/collapsed-themes", data={**plain, "themes": "calm, Grief"})
        assert r.status_code == 200 and "Saved." in r.text
        room = await browser.get(f"/rooms/{c.room_id}")
        assert "A theme you collapse" in room.text and "details" in room.text
        about = await browser.get(f"/circles/{c.id}/about")
        assert "Who sees what" in about.text and "findahelpline.com" in about.text
    async with page_client(api, c.coach) as coach:
        plain = {"_csrf_token": coach.headers["x-csrftoken"]}
        del coach.headers["x-csrftoken"]
        page = await coach.get(f"/circles/{c.id}/care")
        assert 'name="care_resources"' in page.text
        r = await coach.post(f"/circles/{c.id}/care", data={**plain, "care_resources": "Ring **our line**"})
        assert r.status_code == 200 and "<strong>our line</strong>" in r.text
    newcomer = await api.signup()
    await newcomer.ok("POST", f"/api/v1/invites/{c.invite}/join", {"alias": "Jo Bloggs"})
    async with page_client(api, newcomer) as browser:
        circle = await browser.get(f"/circles/{c.id}")
        assert "first and last name" in circle.text and "Who sees what" in circle.text and "our line" in circle.text


async def test_openapi_describes_care(api: ApiClient) -> None:
    doc = (await api.http.get("/schema/openapi.json")).json()
    assert "/api/v1/circles/{circle_id}/care-check" in doc["paths"]
    assert "/api/v1/circles/{circle_id}/care-concern" in doc["paths"]
    text = json.dumps(doc["components"]["schemas"])
    for name in ("content_note", "reply_wish", "care_resources", "resources_html", "concern", "warnings"):
        assert f'"{name}"' in text, name


async def test_care_gate_on_replies_and_edits(api: ApiClient) -> None:
    """A reply or an edit that raises a concern answers with the interstitial under the post (htmx), holding the
    draft; its choices send it the same way, and nothing goes out before the member chooses."""
    c = await make_circle(api, members=2)
    jo, peer = c.members
    root = await peer.ok("POST", f"/api/v1/rooms/{c.room_id}/posts", {"body": "How was your week?"})
    mine = await jo.ok("POST", f"/api/v1/rooms/{c.room_id}/posts", {"body": "A calm note"})
    async with page_client(api, jo) as browser:
        browser.headers["hx-request"] = "true"
        reply = {"body": RISK, "parent_id": root["id"]}
        r = await browser.post(f"/rooms/{c.room_id}/posts", data=reply)
        assert r.status_code == 200 and "Before this goes out" in r.text, r.text
        assert r.headers["hx-retarget"] == f"#reply-slot-{root['id']}"
        assert f'hx-target="#replies-{root["id"]}"' in r.text and f'value="{root["id"]}"' in r.text
        assert (await peer.ok("GET", f"/api/v1/posts/{root['id']}"))["replies"] == []
        # An ordinary reply goes straight out (the control).
        r = await browser.post(f"/rooms/{c.room_id}/posts", data={"body": "Good, thanks", "parent_id": root["id"]})
        assert r.status_code == 200 and "Before this goes out" not in r.text
        # Move the reply to my journal: an entry of its own there, nothing in the thread.
        r = await browser.post(f"/rooms/{c.room_id}/posts", data={**reply, "care": "journal"})
        assert r.status_code == 200 and "Sent to your journal" in r.text
        assert r.headers["hx-retarget"] == f"#reply-slot-{root['id']}"
        # Post it anyway: the reply goes into the thread.
        r = await browser.post(f"/rooms/{c.room_id}/posts", data={**reply, "care": "post"})
        assert r.status_code == 200 and "article" in r.text
        thread = await peer.ok("GET", f"/api/v1/posts/{root['id']}")
        assert [p["body"] for p in thread["replies"]] == ["Good, thanks", RISK]
        journal = await jo.ok("GET", f"/api/v1/memberships/{mine['author']['membership_id']}/journal")
        entries = (await c.coach.ok("GET", f"/api/v1/rooms/{journal['id']}/posts"))["items"]
        assert [(p["body"], p["parent_id"]) for p in entries] == [(RISK, None)]

        # An edit: the interstitial under the post while the edit form stays; the post is unchanged meanwhile.
        r = await browser.patch(f"/posts/{mine['id']}", data={"body": RISK + " (edited)"})
        assert r.status_code == 200 and "Before this goes out" in r.text and "Save it anyway" in r.text
        assert r.headers["hx-retarget"] == f"#reply-slot-{mine['id']}"
        assert f'hx-patch="/posts/{mine["id"]}"' in r.text
        assert (await peer.ok("GET", f"/api/v1/posts/{mine['id']}"))["body"] == "A calm note"
        # Put this version in my journal: the post stays as it was, its edit form closes.
        r = await browser.patch(f"/posts/{mine['id']}", data={"body": RISK + " (v2)", "care": "journal"})
        assert r.status_code == 200 and "Your post here is unchanged" in r.text and "hx-swap-oob" in r.text
        assert (await peer.ok("GET", f"/api/v1/posts/{mine['id']}"))["body"] == "A calm note"
        # Let my coach know, then save it anyway.
        r = await browser.patch(f"/posts/{mine['id']}", data={"body": RISK + " (edited)", "care": "coach"})
        assert r.status_code == 200 and "Your coach knows" in r.text
        r = await browser.patch(f"/posts/{mine['id']}", data={"body": RISK + " (edited)", "care": "post"})
        assert r.status_code == 200 and "(edited)" in r.text
        assert (await peer.ok("GET", f"/api/v1/posts/{mine['id']}"))["body"] == RISK + " (edited)"
        # Saving it again unchanged (a content note added) is not checked again.
        r = await browser.patch(f"/posts/{mine['id']}", data={"body": RISK + " (edited)", "content_note": "low"})
        assert r.status_code == 200 and "Before this goes out" not in r.text
        # A choice the gate does not know: a 400 that names it.
        r = await browser.patch(f"/posts/{mine['id']}", data={"body": "x", "care": "maybe"})
        assert r.status_code == 400 and "care is one of" in r.text
        entries = (await c.coach.ok("GET", f"/api/v1/rooms/{journal['id']}/posts"))["items"]
        assert sorted(p["body"] for p in entries) == sorted([RISK, RISK + " (v2)"])
    assert [n["kind"] for n in await c.coach.ok("GET", "/api/v1/notifications")].count("care.concern") == 1
    assert all(n["kind"] != "care.concern" for n in await peer.ok("GET", "/api/v1/notifications"))
