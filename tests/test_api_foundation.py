"""The contract's account, circle, invite, member, room and post endpoints, on both backends."""

from __future__ import annotations

import asyncio

import pytest

from tests.client import PASSWORD, ApiClient, make_circle
from tests.html import parse_elements

pytestmark = pytest.mark.anyio


async def test_register_login_me_logout(api: ApiClient) -> None:
    r = await api.http.post("/api/v1/accounts", json={"email": "Ann@Example.org", "password": PASSWORD, "name": "Ann"})
    assert r.status_code == 201
    body = r.json()
    assert body["email"] == "ann@example.org" and body["name"] == "Ann" and body["id"]

    again = await api.http.post(
        "/api/v1/accounts", json={"email": "ann@example.org", "password": PASSWORD, "name": "A"}
    )
    assert again.status_code == 409
    assert "already exists" in again.json()["detail"]

    bad = await api.http.post("/api/v1/auth/login", json={"email": "ann@example.org", "password": "wrong password!"})
    assert bad.status_code == 401
    unknown = await api.http.post("/api/v1/auth/login", json={"email": "nobody@example.org", "password": PASSWORD})
    assert unknown.status_code == 401 and unknown.json()["detail"] == bad.json()["detail"]

    login = await api.http.post("/api/v1/auth/login", json={"email": "ann@example.org", "password": PASSWORD})
    assert login.status_code == 200
    token = login.json()["token"]
    cookie = login.headers["set-cookie"]
    assert "kindred_session=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()

    me = await api.http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json() == {"id": body["id"], "email": "ann@example.org", "name": "Ann", "memberships": []}

    out = await api.http.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert out.status_code == 204
    after = await api.http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert after.status_code == 401


async def test_registration_rejects_bad_input_with_reasons(api: ApiClient) -> None:
    cases = [
        ({"email": "not-an-email", "password": PASSWORD, "name": "A"}, "valid email"),
        ({"email": "a@example.org", "password": "short", "name": "A"}, "at least 10"),
        ({"email": "a@example.org", "password": "password123", "name": "A"}, "breach"),
        ({"email": "a@example.org", "password": PASSWORD, "name": "   "}, "name"),
    ]
    for payload, reason in cases:
        r = await api.http.post("/api/v1/accounts", json=payload)
        assert r.status_code == 400, (payload, r.text)
        assert reason in r.json()["detail"], r.json()
    r = await api.http.post("/api/v1/accounts", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    r = await api.http.post("/api/v1/accounts", json={"email": "a@example.org"})
    assert r.status_code == 400


async def test_unauthenticated_and_bad_tokens(api: ApiClient) -> None:
    assert (await api.http.get("/api/v1/me")).status_code == 401
    r = await api.http.get("/api/v1/me", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    assert "sign in" in r.json()["detail"]


async def test_circle_invite_join_members_rooms(api: ApiClient) -> None:
    coach = await api.signup("Dana Whitfield")
    circle = await coach.ok(
        "POST", "/api/v1/circles", {"name": "Growth", "commonality": "Trading a fixed mindset for a growth one"}
    )
    assert circle["coach_sees_identity"] is True and circle["norms"] == ""
    cid = circle["id"]
    assert (await coach.ok("GET", f"/api/v1/circles/{cid}")) == circle

    invite = await coach.ok("POST", f"/api/v1/circles/{cid}/invites", {"max_uses": 2, "expires_in_hours": 24})
    assert invite["url"].endswith(f"/join/{invite['code']}")

    sam = await api.signup("Samuel Private")
    outsider = await api.signup("Olivia Outsider")
    # Outsiders cannot tell the circle exists.
    assert (await outsider.call("GET", f"/api/v1/circles/{cid}")).status_code == 404
    assert (await outsider.call("GET", f"/api/v1/circles/{cid}/members")).status_code == 404
    assert (await outsider.call("GET", "/api/v1/circles/not-a-uuid")).status_code == 404

    joined = await sam.ok("POST", f"/api/v1/invites/{invite['code']}/join", {"alias": "Quiet River"})
    assert joined == {
        "membership_id": joined["membership_id"],
        "circle_id": cid,
        "alias": "Quiet River",
        "role": "member",
        "warnings": [],  # care: safe-alias advice (docs/care.md)
    }
    # Already a member; alias taken (ignoring case); bad alias.
    assert (await sam.call("POST", f"/api/v1/invites/{invite['code']}/join", {"alias": "Other"})).status_code == 409
    taken = await outsider.call("POST", f"/api/v1/invites/{invite['code']}/join", {"alias": "quiet river"})
    assert taken.status_code == 409 and "alias" in taken.json()["detail"]
    bad = await outsider.call("POST", f"/api/v1/invites/{invite['code']}/join", {"alias": "@x"})
    assert bad.status_code == 400
    # Unknown code; then the second (last) use, then spent.
    assert (await outsider.call("POST", "/api/v1/invites/nope/join", {"alias": "Olive"})).status_code == 404
    await outsider.ok("POST", f"/api/v1/invites/{invite['code']}/join", {"alias": "Olive"})
    late = await api.signup()
    spent = await late.call("POST", f"/api/v1/invites/{invite['code']}/join", {"alias": "Late"})
    assert spent.status_code == 410

    # Peers see aliases only; the coach sees identities while coach_sees_identity holds.
    peer_view = await sam.ok("GET", f"/api/v1/circles/{cid}/members")
    assert {m["alias"] for m in peer_view} == {"Dana Whitfield", "Quiet River", "Olive"}
    assert all(set(m) == {"membership_id", "alias", "role"} for m in peer_view)
    coach_view = await coach.ok("GET", f"/api/v1/circles/{cid}/members")
    assert {m["email"] for m in coach_view} >= {sam.email, outsider.email}
    await coach.ok("PATCH", f"/api/v1/circles/{cid}", {"coach_sees_identity": False})
    hidden = await coach.ok("GET", f"/api/v1/circles/{cid}/members")
    assert all(set(m) == {"membership_id", "alias", "role"} for m in hidden)

    # Rooms: coach only creates, members list.
    room = await coach.ok("POST", f"/api/v1/circles/{cid}/rooms", {"name": "Experiments", "topic": "Log them"})
    assert room["last_seq"] == 0 and room["circle_id"] == cid
    assert (await sam.call("POST", f"/api/v1/circles/{cid}/rooms", {"name": "Mine"})).status_code == 403
    assert (await sam.call("POST", f"/api/v1/circles/{cid}/invites", {})).status_code == 403
    names = [r["name"] for r in await sam.ok("GET", f"/api/v1/circles/{cid}/rooms")]
    assert names == ["General", "Experiments"]

    me = await sam.ok("GET", "/api/v1/me")
    assert me["memberships"] == [joined]


async def test_expired_invite_is_gone(api: ApiClient, settings: object) -> None:
    circle = await make_circle(api, members=0)
    from datetime import UTC, datetime, timedelta

    from db.tables import Invite

    await Invite.update({Invite.expires_at: datetime.now(UTC) - timedelta(minutes=1)}).where(
        Invite.code == circle.invite
    )
    user = await api.signup()
    r = await user.call("POST", f"/api/v1/invites/{circle.invite}/join", {"alias": "Too Late"})
    assert r.status_code == 410 and "expired" in r.json()["detail"]


async def test_posts_threads_edit_delete_and_paging(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    room = c.room_id

    first = await a.post(room, "I said **no** to a meeting today", kind="win")
    assert first["kind"] == "win" and first["seq"] == 1 and first["parent_id"] is None
    assert "<strong>no</strong>" in first["html"] and first["author"]["alias"] == "Member1"
    assert set(first["author"]) == {"membership_id", "alias", "role"}

    reply = await b.post(room, "How did it feel?", parent_id=first["id"])
    nested = await a.post(room, "Scary, then fine", parent_id=reply["id"])
    assert (reply["seq"], nested["seq"]) == (2, 3)

    thread = await b.ok("GET", f"/api/v1/posts/{first['id']}")
    assert [r["id"] for r in thread["replies"]] == [reply["id"]]
    assert [r["id"] for r in thread["replies"][0]["replies"]] == [nested["id"]]

    listing = await b.ok("GET", f"/api/v1/rooms/{room}/posts")
    assert [p["id"] for p in listing["items"]] == [first["id"]]
    assert listing["items"][0]["reply_count"] == 2 and listing["next_before"] is None

    edited = await a.ok("PATCH", f"/api/v1/posts/{first['id']}", {"body": "I said no. Twice."})
    assert edited["edited_at"] and edited["body"] == "I said no. Twice." and edited["seq"] == 1
    assert (await b.call("PATCH", f"/api/v1/posts/{first['id']}", {"body": "hijack"})).status_code == 403
    assert (await b.call("DELETE", f"/api/v1/posts/{first['id']}")).status_code == 403

    await b.ok("DELETE", f"/api/v1/posts/{nested['id']}", status=403) if False else None
    await a.ok("DELETE", f"/api/v1/posts/{nested['id']}")
    assert (await a.call("DELETE", f"/api/v1/posts/{nested['id']}")).status_code == 404
    listing = await b.ok("GET", f"/api/v1/rooms/{room}/posts")
    assert listing["items"][0]["reply_count"] == 1
    # The coach may delete anyone's post.
    await c.coach.ok("DELETE", f"/api/v1/posts/{reply['id']}")

    # Paging: 25 more top-level posts, newest first, `before` exclusive.
    ids = [(await a.post(room, f"post {i}"))["id"] for i in range(25)]
    page1 = await b.ok("GET", f"/api/v1/rooms/{room}/posts?limit=10")
    assert [p["id"] for p in page1["items"]] == ids[::-1][:10]
    page2 = await b.ok("GET", f"/api/v1/rooms/{room}/posts?limit=10&before={page1['next_before']}")
    assert [p["id"] for p in page2["items"]] == ids[::-1][10:20]
    page3 = await b.ok("GET", f"/api/v1/rooms/{room}/posts?limit=10&before={page2['next_before']}")
    assert [p["id"] for p in page3["items"]] == [*ids[::-1][20:], first["id"]]
    assert page3["next_before"] is None
    assert (await b.call("GET", f"/api/v1/rooms/{room}/posts?before=nope")).status_code == 400
    assert (await b.call("GET", f"/api/v1/rooms/{room}/posts?limit=0")).status_code == 400


async def test_post_validation_and_outsiders(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    a = c.members[0]
    outsider = await api.signup()
    assert (await outsider.call("POST", f"/api/v1/rooms/{c.room_id}/posts", {"body": "hi"})).status_code == 404
    assert (await outsider.call("GET", f"/api/v1/rooms/{c.room_id}/posts")).status_code == 404
    post = await a.post(c.room_id, "hello")
    assert (await outsider.call("GET", f"/api/v1/posts/{post['id']}")).status_code == 404

    empty = await a.call("POST", f"/api/v1/rooms/{c.room_id}/posts", {"body": "   "})
    assert empty.status_code == 400 and "empty" in empty.json()["detail"]
    long = await a.call("POST", f"/api/v1/rooms/{c.room_id}/posts", {"body": "x" * 20_001})
    assert long.status_code == 400 and "20,000" in long.json()["detail"]
    assert (await a.call("POST", f"/api/v1/rooms/{c.room_id}/posts", {"body": "x" * 20_000})).status_code == 201
    kind = await a.call("POST", f"/api/v1/rooms/{c.room_id}/posts", {"body": "x", "kind": "rant"})
    assert kind.status_code == 400
    parent = await a.call("POST", f"/api/v1/rooms/{c.room_id}/posts", {"body": "x", "parent_id": "nope"})
    assert parent.status_code == 400 and "parent_id" in parent.json()["detail"]
    huge = await a.call("POST", f"/api/v1/rooms/{c.room_id}/posts", {"body": "x" * 300_000})
    assert huge.status_code == 413


async def test_client_id_is_idempotent_even_when_racing(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    a = c.members[0]
    one = await a.post(c.room_id, "once", client_id="abc-1")
    two = await a.post(c.room_id, "once", client_id="abc-1")
    assert one["id"] == two["id"]
    raced = await asyncio.gather(*(a.post(c.room_id, "race", client_id="race-1") for _ in range(5)))
    assert len({p["id"] for p in raced}) == 1
    listing = await a.ok("GET", f"/api/v1/rooms/{c.room_id}/posts")
    assert len(listing["items"]) == 2
    room = (await a.ok("GET", f"/api/v1/circles/{c.id}/rooms"))[0]
    assert room["last_seq"] == 2, "a duplicate must not consume a seq"


async def test_markdown_is_sanitised_and_mentions_link(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    post = await a.post(
        c.room_id,
        'Thanks @member2! <script>alert(1)</script> <img src=x onerror=alert(1)> <div hx-get="/x">x</div> '
        "[a](javascript:alert(1))",
    )
    html = post["html"]
    elements = parse_elements(html)
    assert {tag for tag, _ in elements} <= {"p", "span", "a"}, elements
    for _, attrs in elements:
        assert not any(name.startswith(("hx-", "data-hx-", "on")) for name in attrs), attrs
        assert not attrs.get("href", "").startswith("javascript")
    assert f'data-membership="{(await b.ok("GET", "/api/v1/me"))["memberships"][0]["membership_id"]}"' in html


async def test_openapi_describes_the_contract(api: ApiClient) -> None:
    r = await api.http.get("/schema/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path in [
        "/api/v1/accounts",
        "/api/v1/auth/login",
        "/api/v1/auth/logout",
        "/api/v1/me",
        "/api/v1/circles",
        "/api/v1/circles/{circle_id}",
        "/api/v1/circles/{circle_id}/invites",
        "/api/v1/invites/{code}/join",
        "/api/v1/circles/{circle_id}/members",
        "/api/v1/circles/{circle_id}/rooms",
        "/api/v1/rooms/{room_id}/posts",
        "/api/v1/posts/{post_id}",
        "/api/v1/ws",
    ]:
        assert path in paths, path
    # Every operation says how it can fail, not only how it succeeds.
    assert {"101", "403", "426"} <= set(paths["/api/v1/ws"]["get"]["responses"])
    join = paths["/api/v1/invites/{code}/join"]["post"]["responses"]
    assert {"201", "400", "401", "404", "409", "410"} <= set(join)
    posting = paths["/api/v1/rooms/{room_id}/posts"]["post"]["responses"]
    assert {"201", "400", "401", "403", "404", "413", "429", "503"} <= set(posting)
    signup = paths["/api/v1/accounts"]["post"]["responses"]
    assert "401" not in signup and "409" in signup


async def test_cookie_sessions_need_csrf_and_bearer_does_not(api: ApiClient) -> None:
    user = await api.signup()
    # A browser-style client: the session cookie from sign-in, and the CSRF cookie from a page it loaded.
    browser = api.http
    r = await browser.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert r.status_code == 200
    page = await browser.get("/")
    csrf = page.cookies.get("kindred_csrf") or browser.cookies.get("kindred_csrf")
    assert csrf
    assert (await browser.get("/api/v1/me")).status_code == 200, "cookie auth works for safe requests"
    body = {"name": "Cookie circle", "commonality": "c"}
    refused = await browser.post("/api/v1/circles", json=body)
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    allowed = await browser.post("/api/v1/circles", json=body, headers={"x-csrftoken": csrf})
    assert allowed.status_code == 201
    # Bearer requests need no CSRF token even when cookies ride along, because the bearer alone authenticates.
    bearer = await browser.post("/api/v1/circles", json=body, headers=user.headers)
    assert bearer.status_code == 201
    # A cross-site page cannot sign anyone in (login CSRF): a foreign Origin is refused.
    browser.cookies.clear()
    foreign = await browser.post(
        "/api/v1/auth/login",
        json={"email": user.email, "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403


async def test_unknown_host_header_is_refused(api: ApiClient) -> None:
    r = await api.http.get("/api/v1/me", headers={"Host": "evil.example"})
    assert r.status_code == 400 and "Host" in r.json()["detail"]


async def test_security_headers_on_pages(api: ApiClient) -> None:
    r = await api.http.get("/")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"


async def test_nul_characters_are_refused_everywhere(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    a = c.members[0]
    bad = [
        await a.call("POST", f"/api/v1/rooms/{c.room_id}/posts", {"body": "a\u0000b"}),
        await a.call("POST", "/api/v1/circles", {"name": "x\u0000", "commonality": "y"}),
        await api.http.post("/api/v1/auth/login", json={"email": "a\u0000@b.c", "password": "x"}),
        await a.call("POST", "/api/v1/invites/%00/join", {"alias": "Someone"}),
        await a.call("GET", f"/api/v1/rooms/{c.room_id}/posts?before=%00"),
    ]
    for response in bad:
        assert response.status_code == 400, response.text
        assert "NUL" in response.json()["detail"]
    # Text that merely spells out the escape is fine.
    literal = await a.post(c.room_id, "the JSON escape \\u0000 is written like this")
    assert "\\u0000" in literal["body"]


async def test_the_coach_alias_defaults_to_a_usable_form_of_their_name(api: ApiClient) -> None:
    for name, alias in [
        ("Siobhán O'Brien", "Siobhán OBrien"),
        ("X", "Coach"),
        ("Dr. Ana-María Ruiz", "Dr. Ana-María Ruiz"),
    ]:
        coach = await api.signup(name)
        circle = await coach.ok("POST", "/api/v1/circles", {"name": "Saying No", "commonality": "Saying no kindly"})
        members = await coach.ok("GET", f"/api/v1/circles/{circle['id']}/members")
        assert [m["alias"] for m in members] == [alias]


async def test_page_forms_past_the_columns_get_400_not_500(api: ApiClient) -> None:
    """The pages reach the services without the API's msgspec limits; the services hold the line themselves."""
    http = api.http
    await http.get("/signup")
    csrf = http.cookies.get("kindred_csrf")
    assert csrf
    form = {"_csrf_token": csrf, "email": "long@example.org", "password": "a long enough passphrase 42"}
    r = await http.post("/signup", data={**form, "name": "N" * 81})
    assert r.status_code == 400 and "80 characters" in r.text
    r = await http.post("/signup", data={**form, "name": "Fine", "email": "e" * 320 + "@example.org"})
    assert r.status_code == 400 and "valid email" in r.text
    c = await make_circle(api, members=1)
    member = c.members[0]
    http.cookies.clear()
    http.cookies.set("kindred_session", member.token)
    await http.get("/")
    csrf = http.cookies.get("kindred_csrf")
    r = await http.post(
        f"/rooms/{c.room_id}/posts",
        data={"_csrf_token": csrf, "body": "hello", "client_id": "c" * 65},
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 400 and "client_id" in r.text
    http.cookies.clear()
