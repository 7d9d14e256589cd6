"""Coach gestures through the API and the websocket, on both backends: like, probing question, share, tag,
mention, pin as key insight, and the notifications each one creates."""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import quote

import pytest

from tests.client import ApiClient, Match, User, make_circle

pytestmark = pytest.mark.anyio


def is_event(room_id: str, name: str | None = None) -> Match:
    return lambda f: f.get("type") == "event" and f["room_id"] == room_id and (name is None or f["event"] == name)


def is_note(kind: str) -> Match:
    return lambda f: f.get("type") == "notification" and f["data"]["kind"] == kind


async def membership_id(user: User, circle_id: str) -> str:
    me = await user.ok("GET", "/api/v1/me")
    return str(next(m["membership_id"] for m in me["memberships"] if m["circle_id"] == circle_id))


def assert_no_identity(payload: object, *people: User) -> None:
    """No email, account id or (for members) name. A coach appears under their own name by default, since clients
    know their coach (contract: `coach_alias`), so only a coach's email and account id are secrets."""
    text = json.dumps(payload)
    for person in people:
        secrets = [person.email, person.id]
        if not person.name.startswith("Coach"):
            secrets.append(person.name)
        for secret in secrets:
            assert secret not in text, f"{secret!r} leaked in {text[:300]}"


async def test_likes_are_idempotent_live_and_the_coach_like_is_marked(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    post = await a.post(c.room_id, "I tried it")
    ws = await a.ws()
    await ws.subscribe(c.room_id)

    first = await b.ok("PUT", f"/api/v1/posts/{post['id']}/like")
    assert first == {"like_count": 1, "liked_by_coach": False, "liked_by_me": True}
    assert await b.ok("PUT", f"/api/v1/posts/{post['id']}/like") == first
    frame = await ws.recv_until(is_event(c.room_id, "like.changed"))
    assert frame["data"] == {"post_id": post["id"], "like_count": 1, "liked_by_coach": False}
    assert (await ws.recv_until(is_note("like")))["data"]["actor"]["alias"] == "Member2"

    coach = await c.coach.ok("PUT", f"/api/v1/posts/{post['id']}/like")
    assert coach == {"like_count": 2, "liked_by_coach": True, "liked_by_me": True}
    frame = await ws.recv_until(is_event(c.room_id, "like.changed"))
    assert frame["seq"] == 3 and frame["data"]["liked_by_coach"] is True, "the repeated like consumed no seq"
    note = await ws.recv_until(is_note("coach_like"))
    assert note["data"]["actor"] == {
        "membership_id": await membership_id(c.coach, c.id),
        "alias": "Coach Dana",
        "role": "coach",
    }
    assert_no_identity(note, c.coach)

    assert await c.coach.ok("DELETE", f"/api/v1/posts/{post['id']}/like", status=200) == {
        "like_count": 1,
        "liked_by_coach": False,
        "liked_by_me": False,
    }
    assert await c.coach.ok("DELETE", f"/api/v1/posts/{post['id']}/like", status=200) == {
        "like_count": 1,
        "liked_by_coach": False,
        "liked_by_me": False,
    }
    listed = await a.ok("GET", f"/api/v1/posts/{post['id']}")
    assert (listed["like_count"], listed["liked_by_coach"]) == (1, False)
    outsider = await api.signup()
    assert (await outsider.call("PUT", f"/api/v1/posts/{post['id']}/like")).status_code == 404


async def test_probing_question_and_replies_notify_the_author(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    post = await a.post(c.room_id, "I said no")
    ws = await a.ws()
    question = await c.coach.post(c.room_id, "What did you fear would happen?", kind="question", parent_id=post["id"])
    note = await ws.recv_until(is_note("question"))
    assert note["data"]["post_id"] == question["id"] and note["data"]["room_id"] == c.room_id
    assert note["data"]["circle_id"] == c.id and note["data"]["read"] is False
    await b.post(c.room_id, "Same here", parent_id=post["id"])
    reply = await ws.recv_until(is_note("reply"))
    assert reply["data"]["actor"]["alias"] == "Member2"
    # A member's question-kind reply is an ordinary reply, not a coach's probe.
    await b.post(c.room_id, "Why?", kind="question", parent_id=post["id"])
    assert (await ws.recv_until(is_note("reply")))["data"]["actor"]["role"] == "member"
    feed = await a.ok("GET", "/api/v1/notifications")
    assert [n["kind"] for n in feed] == ["reply", "reply", "question"]
    assert_no_identity(feed, c.coach, b)


async def test_mentions_notify_once_including_on_edit(api: ApiClient) -> None:
    c = await make_circle(api, members=3)
    a, b, d = c.members
    post = await a.post(c.room_id, "Thanks @Member2 for the idea")
    assert [n["kind"] for n in await b.ok("GET", "/api/v1/notifications")] == ["mention"]
    await a.ok("PATCH", f"/api/v1/posts/{post['id']}", {"body": "Thanks @Member2 and @member3!"})
    assert [n["kind"] for n in await b.ok("GET", "/api/v1/notifications")] == ["mention"]
    notes = await d.ok("GET", "/api/v1/notifications")
    assert [(n["kind"], n["post_id"]) for n in notes] == [("mention", post["id"])]


async def test_share_within_a_circle_and_across_circles(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    other_room = await c.coach.ok("POST", f"/api/v1/circles/{c.id}/rooms", {"name": "Wins"})
    post = await a.post(c.room_id, "A small **win**", kind="win")
    ws = await a.ws()
    watcher = await b.ws()
    await watcher.subscribe(other_room["id"])

    shared = await b.ok("POST", f"/api/v1/posts/{post['id']}/shares", {"room_id": other_room["id"], "note": "Look!"})
    assert shared["room_id"] == other_room["id"] and shared["kind"] == "win" and shared["body"] == post["body"]
    assert shared["author"]["alias"] == "Member2"
    assert shared["shared_from"] == {
        "post_id": post["id"],
        "room_id": c.room_id,
        "author": post["author"],
        "note": "Look!",
    }
    frame = await watcher.recv_until(is_event(other_room["id"], "post.created"))
    assert frame["data"] == shared
    note = await ws.recv_until(is_note("share"))
    assert note["data"]["post_id"] == shared["id"] and note["data"]["room_id"] == other_room["id"]

    # The coach also runs a second circle; only the coach can carry the post there, and without its author.
    second = await c.coach.ok("POST", "/api/v1/circles", {"name": "Growth", "commonality": "Fixed to growth"})
    second_room = (await c.coach.ok("GET", f"/api/v1/circles/{second['id']}/rooms"))[0]
    across = await c.coach.ok("POST", f"/api/v1/posts/{post['id']}/shares", {"room_id": second_room["id"]})
    assert across["shared_from"] == {"post_id": None, "room_id": None, "author": None, "note": None}
    assert across["room_id"] == second_room["id"]
    assert "Member1" not in json.dumps(across) and post["author"]["membership_id"] not in json.dumps(across)
    note = await ws.recv_until(is_note("share"))
    assert note["data"]["post_id"] == post["id"], "across circles the author is pointed at their own post"

    # A member cannot share across circles, and nobody can share into a room they cannot see.
    invite = await c.coach.ok("POST", f"/api/v1/circles/{second['id']}/invites", {})
    await b.ok("POST", f"/api/v1/invites/{invite['code']}/join", {"alias": "B-elsewhere"})
    refused = await b.call("POST", f"/api/v1/posts/{post['id']}/shares", {"room_id": second_room["id"]})
    assert refused.status_code == 403 and "coach" in refused.json()["detail"]
    stranger_rooms = await c.coach.call(
        "POST", f"/api/v1/posts/{post['id']}/shares", {"room_id": "00000000-0000-0000-0000-000000000000"}
    )
    assert stranger_rooms.status_code == 404
    same = await b.call("POST", f"/api/v1/posts/{post['id']}/shares", {"room_id": c.room_id})
    assert same.status_code == 400


async def test_tags_draw_a_member_in_once(api: ApiClient) -> None:
    c = await make_circle(api, members=3)
    a, b, d = c.members
    post = await a.post(c.room_id, "Who else has tried this?")
    target = await membership_id(d, c.id)
    ws = await d.ws()
    tagged = await c.coach.ok("POST", f"/api/v1/posts/{post['id']}/tags", {"membership_id": target})
    assert tagged == {
        "post_id": post["id"],
        "membership": {"membership_id": target, "alias": "Member3", "role": "member"},
    }
    note = await ws.recv_until(is_note("tag"))
    assert note["data"]["post_id"] == post["id"] and note["data"]["actor"]["role"] == "coach"
    await c.coach.ok("POST", f"/api/v1/posts/{post['id']}/tags", {"membership_id": target})
    await b.ok("POST", f"/api/v1/posts/{post['id']}/tags", {"membership_id": target})
    kinds = [n["kind"] for n in await d.ok("GET", "/api/v1/notifications")]
    assert kinds == ["tag"], "a member is drawn into a thread once, however often or by whom they are tagged"
    assert (await a.call("POST", f"/api/v1/posts/{post['id']}/tags", {"membership_id": "nope"})).status_code == 400
    me = await membership_id(a, c.id)
    assert (await a.call("POST", f"/api/v1/posts/{post['id']}/tags", {"membership_id": me})).status_code == 400
    outsider = await api.signup()
    assert (
        await outsider.call("POST", f"/api/v1/posts/{post['id']}/tags", {"membership_id": target})
    ).status_code == 404


async def test_pins_make_the_key_insights_board(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    one = await a.post(c.room_id, "Saying no is saying yes to something else")
    two = await b.post(c.room_id, "The fear was bigger than the reaction")
    ws = await a.ws()
    await ws.subscribe(c.room_id)

    assert (await b.call("PUT", f"/api/v1/posts/{one['id']}/pin", {})).status_code == 403
    pinned = await c.coach.ok("PUT", f"/api/v1/posts/{one['id']}/pin", {"note": "Reframe"})
    assert pinned["pinned"] is True and pinned["note"] == "Reframe" and pinned["post_id"] == one["id"]
    frame = await ws.recv_until(is_event(c.room_id, "pin.changed"))
    assert frame["data"] == {"post_id": one["id"], "pinned": True, "note": "Reframe"}
    assert (await ws.recv_until(is_note("pin")))["data"]["post_id"] == one["id"]
    await c.coach.ok("PUT", f"/api/v1/posts/{two['id']}/pin")
    assert (await ws.recv_until(is_event(c.room_id, "pin.changed")))["data"]["post_id"] == two["id"]
    board = await b.ok("GET", f"/api/v1/circles/{c.id}/insights")
    assert [(p["id"], p["pin_note"]) for p in board] == [(two["id"], None), (one["id"], "Reframe")]
    assert all(p["pinned"] for p in board)

    unpinned = await c.coach.ok("DELETE", f"/api/v1/posts/{one['id']}/pin", status=200)
    assert unpinned["pinned"] is False
    frame = await ws.recv_until(is_event(c.room_id, "pin.changed"))
    assert frame["data"] == {"post_id": one["id"], "pinned": False, "note": None}
    assert [p["id"] for p in await b.ok("GET", f"/api/v1/circles/{c.id}/insights")] == [two["id"]]
    outsider = await api.signup()
    assert (await outsider.call("GET", f"/api/v1/circles/{c.id}/insights")).status_code == 404


async def test_notifications_reach_every_socket_and_can_be_read(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    post = await a.post(c.room_id, "hello")
    tab1, tab2 = await a.ws(), await a.ws()
    await b.post(c.room_id, "reply one", parent_id=post["id"])
    await b.post(c.room_id, "reply two", parent_id=post["id"])
    for tab in (tab1, tab2):
        got = [await tab.recv_until(is_note("reply")) for _ in range(2)]
        assert len({n["data"]["id"] for n in got}) == 2
    unread = await a.ok("GET", "/api/v1/notifications?unread=true")
    assert len(unread) == 2
    await a.ok("POST", "/api/v1/notifications/read", {"ids": [unread[0]["id"]]}, status=204)
    assert [n["id"] for n in await a.ok("GET", "/api/v1/notifications?unread=true")] == [unread[1]["id"]]
    await a.ok("POST", "/api/v1/notifications/read", {"all": True}, status=204)
    assert await a.ok("GET", "/api/v1/notifications?unread=true") == []
    everything = await a.ok("GET", "/api/v1/notifications?limit=1")
    assert len(everything) == 1 and everything[0]["read"] is True
    older = await a.ok("GET", f"/api/v1/notifications?before={everything[0]['id']}")
    assert [n["id"] for n in older] == [unread[1]["id"]]
    assert (await a.call("POST", "/api/v1/notifications/read", {})).status_code == 400
    # Nobody reads or marks anyone else's notifications.
    await b.ok("POST", "/api/v1/notifications/read", {"all": True}, status=204)
    assert len(await a.ok("GET", "/api/v1/notifications")) == 2
    assert_no_identity(await a.ok("GET", "/api/v1/notifications"), b, c.coach)


async def last_seq(user: User, circle_id: str, room_id: str) -> int:
    rooms = await user.ok("GET", f"/api/v1/circles/{circle_id}/rooms")
    return int(next(r["last_seq"] for r in rooms if r["id"] == room_id))


async def test_outsiders_cannot_gesture_and_members_cannot_unpin(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    post = await a.post(c.room_id, "Mine to share")
    other_room = await c.coach.ok("POST", f"/api/v1/circles/{c.id}/rooms", {"name": "Wins"})
    await c.coach.ok("PUT", f"/api/v1/posts/{post['id']}/pin", {"note": "Keep"})
    outsider = await api.signup()
    # The outsider coaches a circle of their own, so a share has somewhere of theirs to go.
    theirs = await outsider.ok("POST", "/api/v1/circles", {"name": "Elsewhere", "commonality": "Other things"})
    their_room = (await outsider.ok("GET", f"/api/v1/circles/{theirs['id']}/rooms"))[0]
    target = await membership_id(b, c.id)
    before = await last_seq(a, c.id, c.room_id)
    attempts = [
        ("PUT", f"/api/v1/posts/{post['id']}/like", None),
        ("DELETE", f"/api/v1/posts/{post['id']}/like", None),
        ("PUT", f"/api/v1/posts/{post['id']}/pin", {"note": "Mine now"}),
        ("DELETE", f"/api/v1/posts/{post['id']}/pin", None),
        ("POST", f"/api/v1/posts/{post['id']}/shares", {"room_id": their_room["id"]}),
        ("POST", f"/api/v1/posts/{post['id']}/shares", {"room_id": other_room["id"]}),
        ("POST", f"/api/v1/posts/{post['id']}/tags", {"membership_id": target}),
        ("GET", f"/api/v1/circles/{c.id}/insights", None),
    ]
    for method, path, body in attempts:
        refused = await outsider.call(method, path, body)
        assert refused.status_code == 404, f"{method} {path}: {refused.status_code} {refused.text}"
        assert refused.json()["detail"] in ("post not found", "circle not found")
    unpin = await b.call("DELETE", f"/api/v1/posts/{post['id']}/pin")
    assert unpin.status_code == 403 and "coach" in unpin.json()["detail"]
    assert await last_seq(a, c.id, c.room_id) == before, "nothing refused changed the room"
    assert [p["id"] for p in await a.ok("GET", f"/api/v1/circles/{c.id}/insights")] == [post["id"]]
    assert await b.ok("GET", "/api/v1/notifications") == []


async def test_pinning_again_with_the_same_note_changes_nothing(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    a = c.members[0]
    post = await a.post(c.room_id, "Asking for time is allowed")
    ws = await a.ws()
    await ws.subscribe(c.room_id)
    first = await c.coach.ok("PUT", f"/api/v1/posts/{post['id']}/pin", {"note": "Time is a tool"})
    frame = await ws.recv_until(is_event(c.room_id, "pin.changed"))
    seq = await last_seq(a, c.id, c.room_id)
    assert frame["seq"] == seq

    again = await c.coach.ok("PUT", f"/api/v1/posts/{post['id']}/pin", {"note": " Time is a tool "})
    assert again == first, "the same answer, pinned_at included"
    assert await last_seq(a, c.id, c.room_id) == seq, "a repeated pin consumes no seq"

    # A different note is a change; so is taking the note away; taking it away twice is not.
    changed = await c.coach.ok("PUT", f"/api/v1/posts/{post['id']}/pin", {"note": "Time is a kind of no"})
    assert changed["note"] == "Time is a kind of no" and changed["pinned_at"] == first["pinned_at"]
    # The repeat sent no event: the next event the socket gets at all is this change's, at seq + 1.
    nxt = await ws.recv_until(lambda f: f.get("type") == "event")
    assert (nxt["event"], nxt["seq"], nxt["data"]["note"]) == ("pin.changed", seq + 1, "Time is a kind of no")
    await c.coach.ok("PUT", f"/api/v1/posts/{post['id']}/pin")
    assert (await ws.recv_until(is_event(c.room_id, "pin.changed")))["data"]["note"] is None
    bare = await c.coach.ok("PUT", f"/api/v1/posts/{post['id']}/pin", {})
    assert bare["note"] is None and await last_seq(a, c.id, c.room_id) == seq + 2
    assert [n["kind"] for n in await a.ok("GET", "/api/v1/notifications")] == ["pin"], "the author heard once"


async def test_hidden_posts_are_not_shared_pinned_or_tagged(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    other_room = await c.coach.ok("POST", f"/api/v1/circles/{c.id}/rooms", {"name": "Wins"})
    post = await a.post(c.room_id, "My manager, Jo Smith at Acme, is impossible")
    await c.coach.ok("PUT", f"/api/v1/posts/{post['id']}/hidden", {"reason": "Please leave names out"})
    before = await last_seq(a, c.id, other_room["id"])
    share = {"room_id": other_room["id"], "note": "Look"}

    # A peer cannot see it: for them it is not there, on the API and on the page's share and tag forms.
    for method, path, body in [
        ("POST", f"/api/v1/posts/{post['id']}/shares", share),
        ("POST", f"/api/v1/posts/{post['id']}/tags", {"membership_id": await membership_id(c.coach, c.id)}),
        ("GET", f"/posts/{post['id']}/share", None),
        ("GET", f"/posts/{post['id']}/tag", None),
    ]:
        refused = await b.call(method, path, body)
        assert refused.status_code == 404, f"{method} {path}: {refused.status_code}"
    # Its author and the coach still read it, and are told why not.
    by_author = await a.call("POST", f"/api/v1/posts/{post['id']}/shares", share)
    assert by_author.status_code == 409 and "hidden" in by_author.json()["detail"]
    assert (await a.call("GET", f"/posts/{post['id']}/share")).status_code == 409
    for method, path, body in [
        ("POST", f"/api/v1/posts/{post['id']}/shares", share),
        ("PUT", f"/api/v1/posts/{post['id']}/pin", {"note": "Insight"}),
        ("POST", f"/api/v1/posts/{post['id']}/tags", {"membership_id": await membership_id(b, c.id)}),
    ]:
        refused = await c.coach.call(method, path, body)
        assert refused.status_code == 409, f"{method} {path}: {refused.status_code}"
        assert "show it again" in refused.json()["detail"]
    assert await last_seq(a, c.id, other_room["id"]) == before
    listed = await b.ok("GET", f"/api/v1/rooms/{other_room['id']}/posts")
    assert listed["items"] == [] and "Acme" not in json.dumps(listed)
    assert [n["kind"] for n in await b.ok("GET", "/api/v1/notifications")] == []

    # Shown again, it can be shared like any post.
    await c.coach.ok("DELETE", f"/api/v1/posts/{post['id']}/hidden", status=200)
    assert (await b.ok("POST", f"/api/v1/posts/{post['id']}/shares", share))["body"] == post["body"]


async def test_key_insights_leave_out_hidden_and_deleted_posts(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    kept = await a.post(c.room_id, "Saying no is saying yes to something else")
    hidden = await b.post(c.room_id, "Jo Smith at Acme taught me this")
    gone = await a.post(c.room_id, "I will take this back")
    for post in (kept, hidden, gone):
        await c.coach.ok("PUT", f"/api/v1/posts/{post['id']}/pin", {"note": "Insight"})
    await c.coach.ok("PUT", f"/api/v1/posts/{hidden['id']}/hidden", {"reason": "No names, please"})
    await a.ok("DELETE", f"/api/v1/posts/{gone['id']}")

    for member in (a, b):
        board = await member.ok("GET", f"/api/v1/circles/{c.id}/insights")
        assert [p["id"] for p in board] == [kept["id"]], "no blank cards: hidden and deleted pins are left out"
        assert "Acme" not in json.dumps(board)
    board = await c.coach.ok("GET", f"/api/v1/circles/{c.id}/insights")
    assert [(p["id"], p["hidden"]) for p in board] == [(hidden["id"], True), (kept["id"], False)]
    assert board[0]["body"] == hidden["body"] and board[0]["moderation_reason"] == "No names, please"
    page = await c.coach.call("GET", f"/circles/{c.id}/insights")
    assert page.status_code == 200 and "Hidden from the circle: No names, please" in page.text
    page = await b.call("GET", f"/circles/{c.id}/insights")
    assert page.text.count('class="card insight-card"') == 1 and "Acme" not in page.text


async def test_a_share_across_circles_mentions_nobody_there(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    post = await a.post(c.room_id, "Thanks @Member2 and @Coach Dana! Code: `@Member2`, mail me@example.org")
    assert post["html"].count('class="mention"') == 2
    second = await c.coach.ok("POST", "/api/v1/circles", {"name": "Growth", "commonality": "Fixed to growth"})
    second_room = (await c.coach.ok("GET", f"/api/v1/circles/{second['id']}/rooms"))[0]
    invite = await c.coach.ok("POST", f"/api/v1/circles/{second['id']}/invites", {})
    # Someone else entirely goes by the same alias in the other circle.
    namesake = await api.signup()
    await namesake.ok("POST", f"/api/v1/invites/{invite['code']}/join", {"alias": "Member2"})
    ws = await namesake.ws()

    across = await c.coach.ok("POST", f"/api/v1/posts/{post['id']}/shares", {"room_id": second_room["id"]})
    assert "mention" not in across["html"] and "data-membership" not in across["html"]
    assert "Thanks @Member2 and @Coach Dana!" in across["html"], "the text still reads the same"
    assert "<code>@Member2</code>" in across["html"] and "mailto:me@example.org" in across["html"]
    # A share shows its original's words: the sharer cannot change them; the copy follows the author's edit, and
    # across circles the edit's @alias still names nobody there.
    refused = await c.coach.call("PATCH", f"/api/v1/posts/{across['id']}", {"body": "words put in a mouth"})
    assert refused.status_code == 409 and "share" in refused.json()["detail"]
    await a.ok("PATCH", f"/api/v1/posts/{post['id']}", {"body": post["body"] + " Again, @Member2."})
    followed = await namesake.ok("GET", f"/api/v1/posts/{across['id']}")
    assert "Again, @Member2." in followed["html"] and "mention" not in followed["html"]
    # Control: a mention in the second circle does reach the namesake, and it is the only notification they have.
    await c.coach.post(second_room["id"], "Welcome, @Member2")
    note = await ws.recv_until(lambda f: f.get("type") == "notification")
    assert note["data"]["kind"] == "mention"
    assert [n["kind"] for n in await namesake.ok("GET", "/api/v1/notifications")] == ["mention"]

    # Within the circle, mentions stay mentions of the same members.
    room = await c.coach.ok("POST", f"/api/v1/circles/{c.id}/rooms", {"name": "Wins"})
    within = await b.ok("POST", f"/api/v1/posts/{post['id']}/shares", {"room_id": room["id"]})
    assert within["html"].count('class="mention"') == 3 and within["body"] == post["body"] + " Again, @Member2."


async def test_page_prompts_arrive_as_typed(api: ApiClient) -> None:
    """htmx percent-encodes a prompt's answer beyond Latin-1 and says so; every prompt the pages read decodes it."""
    c = await make_circle(api, members=2)
    a, b = c.members
    post = await a.post(c.room_id, "Jo at Acme again")
    typed = "“Names” — leave them out ✓"
    encoded: dict[str, str | bytes] = {
        "HX-Request": "true",
        "HX-Prompt": quote(typed, safe=""),
        "HX-Prompt-URI-AutoEncoded": "true",
    }

    async def page_call(user: User, method: str, path: str, headers: Mapping[str, str | bytes]) -> None:
        sent = {k.encode(): v if isinstance(v, bytes) else v.encode() for k, v in {**user.headers, **headers}.items()}
        response = await api.http.request(method, path, headers=sent)
        assert response.status_code == 200, f"{method} {path}: {response.status_code} {response.text}"

    await page_call(c.coach, "PUT", f"/posts/{post['id']}/pin", encoded)
    assert (await a.ok("GET", f"/api/v1/circles/{c.id}/insights"))[0]["pin_note"] == typed
    # Latin-1 text travels as it is, and a literal % in it is not taken for an escape.
    plain = "50% café"
    latin1: dict[str, str | bytes] = {"HX-Request": "true", "HX-Prompt": plain.encode("latin-1")}
    await page_call(c.coach, "PUT", f"/posts/{post['id']}/pin", latin1)
    assert (await a.ok("GET", f"/api/v1/circles/{c.id}/insights"))[0]["pin_note"] == plain
    await page_call(b, "POST", f"/posts/{post['id']}/report", encoded)
    reports = await c.coach.ok("GET", f"/api/v1/circles/{c.id}/reports")
    assert reports[0]["reason"] == typed
    await page_call(c.coach, "PUT", f"/posts/{post['id']}/hidden", encoded)
    assert (await a.ok("GET", f"/api/v1/posts/{post['id']}"))["moderation_reason"] == typed
