"""Notifications on both backends: every kind, preferences and quiet hours honoured, Web Push end to end through a
local push service that checks VAPID and decrypts the payload, expired subscriptions removed, no identity anywhere."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.client import DEADLINE, ApiClient, Circle, User, make_circle
from tests.conftest import Server
from tests.push_service import PushService

pytestmark = pytest.mark.anyio


@pytest.fixture
async def push() -> AsyncIterator[PushService]:
    service = PushService()
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture
def settings_env(push: PushService) -> dict[str, str]:
    # The allow-list points at the local stand-in instead of the browser vendors' push services (and keeps one
    # wildcard entry, so the wildcard rules are checked through the API too).
    return {"KINDRED_PUSH_ALLOWED_ORIGINS": f"{push.origin},https://*.notify.windows.com"}


async def subscribe(user: User, push: PushService, name: str) -> str:
    key = (await user.ok("GET", "/api/v1/push/key"))["public_key"]
    push.server_key = key
    return str((await user.ok("POST", "/api/v1/push/subscriptions", push.browser(name).subscription(push)))["id"])


async def wait_for(predicate: Callable[[], bool], timeout: float = DEADLINE) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)


async def settled(server: Server) -> None:
    """Until the server's notifier has delivered every notification written so far: frames sent, every push answered
    by the push service. What has not been pushed by then never will be."""
    await wait_for(server.app.state["notifier"].idle)


def no_identity(payload: object, *people: User) -> None:
    text = json.dumps(payload)
    for person in people:
        for secret in (person.email, person.id) + (() if person.name.startswith("Coach") else (person.name,)):
            assert secret not in text, f"{secret!r} in {text[:200]}"


async def test_every_kind_lands_in_the_feed_by_alias(api: ApiClient) -> None:
    c = await make_circle(api, members=3)
    a, b, d = c.members
    room = c.room_id
    post = await a.post(room, "my post")
    await b.post(room, "a reply", parent_id=post["id"])
    await c.coach.post(room, "a probe?", kind="question", parent_id=post["id"])
    await b.post(room, "hey @Member1")
    await c.coach.ok(
        "POST",
        f"/api/v1/posts/{post['id']}/tags",
        {"membership_id": (await a.ok("GET", "/api/v1/me"))["memberships"][0]["membership_id"]},
    )
    await b.ok("PUT", f"/api/v1/posts/{post['id']}/like")
    await c.coach.ok("PUT", f"/api/v1/posts/{post['id']}/like")
    await c.coach.ok("PUT", f"/api/v1/posts/{post['id']}/pin")
    other = await c.coach.ok("POST", f"/api/v1/circles/{c.id}/rooms", {"name": "Wins"})
    await b.ok("POST", f"/api/v1/posts/{post['id']}/shares", {"room_id": other["id"]})
    other_post = await b.post(room, "something")
    await a.ok("POST", f"/api/v1/posts/{other_post['id']}/reports", {"reason": "checking"})
    await c.coach.ok("PUT", f"/api/v1/posts/{post['id']}/hidden", {"reason": "just a test"})
    await c.coach.ok("POST", f"/api/v1/circles/{c.id}/close", status=200)

    # Every notification is written in the transaction of the change that caused it: the feed has them all now.
    feed = await a.ok("GET", "/api/v1/notifications?limit=100")
    texts = {n["kind"]: n["text"] for n in feed}
    assert texts == {
        "reply": "Member2 replied to your post",
        "question": "Coach Dana asked you a question about your post",
        "mention": "Member2 mentioned you",
        "tag": "Coach Dana drew you into a thread",
        "like": "Member2 liked your post",
        "coach_like": "Coach Dana appreciated your post",
        "pin": "Coach Dana pinned your post as a key insight",
        "share": "Member2 shared your post",
        "moderation": "Your post was hidden: just a test",
        "circle.closed": texts["circle.closed"],
    }
    assert "Your coach closed this circle" in texts["circle.closed"]
    assert [n["kind"] for n in await c.coach.ok("GET", "/api/v1/notifications")][-1] == "report"
    no_identity(feed, b, d, c.coach)


async def test_preferences_round_trip_and_validation(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    a = c.members[0]
    prefs = await a.ok("GET", "/api/v1/notifications/preferences")
    assert prefs["timezone"] == "UTC" and prefs["quiet_hours"] is None and prefs["muted_circles"] == []
    assert prefs["kinds"]["like"] == {"in_app": True, "browser": False, "push": False, "email": False}
    assert prefs["kinds"]["reply"] == {"in_app": True, "browser": True, "push": True, "email": True}
    prefs["kinds"]["reply"] = {"in_app": True, "browser": False, "push": False, "email": False}
    prefs["timezone"], prefs["quiet_hours"], prefs["muted_circles"] = (
        "Europe/Berlin",
        {"start": "22:00", "end": "07:00"},
        [c.id],
    )
    saved = await a.ok("PUT", "/api/v1/notifications/preferences", prefs)
    assert saved == prefs
    assert await a.ok("GET", "/api/v1/notifications/preferences") == prefs
    bad: dict[str, Any]
    for bad in (
        {"timezone": "Mars/Olympus"},
        {"kinds": {"gossip": {}}},
        {"muted_circles": ["nope"]},
        {"quiet_hours": {"start": "25:00", "end": "07:00"}},
    ):
        r = await a.call("PUT", "/api/v1/notifications/preferences", {**prefs, **bad})
        assert r.status_code == 400, (bad, r.text)


async def test_turning_a_kind_off_and_muting_a_circle(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    post = await a.post(c.room_id, "hello")
    prefs = await a.ok("GET", "/api/v1/notifications/preferences")
    prefs["kinds"]["reply"] = {"in_app": False, "browser": False, "push": False}
    await a.ok("PUT", "/api/v1/notifications/preferences", prefs)
    ws = await a.ws()
    await b.post(c.room_id, "a reply you asked not to hear about", parent_id=post["id"])
    await b.post(c.room_id, "and @Member1 a mention you still want")
    note = await ws.recv_until(lambda f: f.get("type") == "notification")
    assert note["data"]["kind"] == "mention"
    assert [n["kind"] for n in await a.ok("GET", "/api/v1/notifications")] == ["mention"]

    prefs["muted_circles"] = [c.id]
    await a.ok("PUT", "/api/v1/notifications/preferences", prefs)
    await b.post(c.room_id, "@Member1 muted now")
    await b.ok("PUT", f"/api/v1/posts/{post['id']}/like")
    # A coach's gesture still reaches the feed of a member who muted the circle.
    await c.coach.ok("PUT", f"/api/v1/posts/{post['id']}/like")
    note = await ws.recv_until(lambda f: f.get("type") == "notification")
    assert note["data"]["kind"] == "coach_like" and note["alert"] is False
    assert [n["kind"] for n in await a.ok("GET", "/api/v1/notifications")] == ["coach_like", "mention"]


async def test_web_push_reaches_the_browser_encrypted_and_signed(api: ApiClient, push: PushService) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    await subscribe(a, push, "laptop")
    await subscribe(a, push, "phone")
    post = await a.post(c.room_id, "mine")
    await b.post(c.room_id, "replying", parent_id=post["id"])
    await wait_for(lambda: len(push.received) == 2)
    assert {r.browser for r in push.received} == {"laptop", "phone"}
    payload = push.received[0].payload
    note = (await a.ok("GET", "/api/v1/notifications"))[0]
    assert payload == {
        "title": "Saying No",
        "body": "Member2 replied to your post",
        "url": f"/notifications/{note['id']}/open",
        "tag": note["id"],
        "kind": "reply",
        "target": f"/posts/{note['post_id']}",
    }
    assert push.received[0].claims["sub"].startswith("mailto:")
    no_identity([r.payload for r in push.received], a, b, c.coach)

    # Likes from peers do not push by default; a coach's like does.
    await b.ok("PUT", f"/api/v1/posts/{post['id']}/like")
    await c.coach.ok("PUT", f"/api/v1/posts/{post['id']}/like")
    await wait_for(lambda: len(push.received) == 4)
    assert {r.payload["kind"] for r in push.received[2:]} == {"coach_like"}


async def test_expired_subscriptions_are_removed(server: Server, api: ApiClient, push: PushService) -> None:
    from db.tables import PushSubscription

    c = await make_circle(api, members=2)
    a, b = c.members
    gone = await subscribe(a, push, "old-phone")
    await subscribe(a, push, "laptop")
    push.gone.add("old-phone")
    post = await a.post(c.room_id, "mine")
    await b.post(c.room_id, "reply", parent_id=post["id"])
    await wait_for(lambda: len(push.received) == 1)
    await settled(server)  # the push task removes what the push service called gone before it ends
    remaining = await PushSubscription.select(PushSubscription.id).where(PushSubscription.account == a.id)
    assert [str(r["id"]) for r in remaining] != [gone] and len(remaining) == 1


async def test_quiet_hours_hold_back_alerts_and_pushes_but_not_the_feed(
    server: Server, api: ApiClient, push: PushService
) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    await subscribe(a, push, "laptop")
    now = datetime.now(UTC)
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    prefs = await a.ok("GET", "/api/v1/notifications/preferences")
    prefs["quiet_hours"] = {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}
    await a.ok("PUT", "/api/v1/notifications/preferences", prefs)
    ws = await a.ws()
    post = await a.post(c.room_id, "late night thoughts")
    await b.post(c.room_id, "still up?", parent_id=post["id"])
    note = await ws.recv_until(lambda f: f.get("type") == "notification")
    assert note["data"]["kind"] == "reply" and note["alert"] is False
    prefs["quiet_hours"] = None
    await a.ok("PUT", "/api/v1/notifications/preferences", prefs)
    await b.post(c.room_id, "morning!", parent_id=post["id"])
    note = await ws.recv_until(lambda f: f.get("type") == "notification")
    assert note["alert"] is True
    # The control: the morning's push arrives; once the notifier has nothing left in flight, a push for the
    # quiet-hours reply would have come too. Exactly one came.
    await wait_for(lambda: len(push.received) >= 1)
    await settled(server)
    assert len(push.received) == 1


async def test_push_subscriptions_are_checked_and_owned(api: ApiClient, push: PushService) -> None:
    a, b = await api.signup(), await api.signup()
    key = await api.http.get("/api/v1/push/key")
    assert key.status_code == 200 and len(key.json()["public_key"]) == 87, "a base64url P-256 point"
    good = push.browser("tablet").subscription(push)
    evil = {**good, "endpoint": "http://169.254.169.254/latest/meta-data"}
    r = await a.call("POST", "/api/v1/push/subscriptions", evil)
    assert r.status_code == 400 and "push service" in r.json()["detail"]
    r = await a.call("POST", "/api/v1/push/subscriptions", {**good, "keys": {"p256dh": "AAAA", "auth": "AAAA"}})
    assert r.status_code == 400
    first = await a.ok("POST", "/api/v1/push/subscriptions", good)
    again = await a.ok("POST", "/api/v1/push/subscriptions", good)
    assert first == again, "subscribing the same browser twice keeps one subscription"
    assert (await b.call("DELETE", f"/api/v1/push/subscriptions/{first['id']}")).status_code == 404
    await a.ok("DELETE", f"/api/v1/push/subscriptions/{first['id']}")
    assert (await a.call("DELETE", f"/api/v1/push/subscriptions/{first['id']}")).status_code == 404


async def test_a_stalled_push_service_does_not_hold_back_anyone_elses_frames(
    server: Server, api: ApiClient, push: PushService
) -> None:
    c = await make_circle(api, members=3)
    a, b, d = c.members
    await subscribe(a, push, "stuck-phone")
    push.stall.add("stuck-phone")
    ws = await d.ws()
    mine, theirs = await a.post(c.room_id, "mine"), await d.post(c.room_id, "theirs")
    await b.post(c.room_id, "a reply whose push hangs", parent_id=mine["id"])
    await wait_for(lambda: push.stalled == 1)
    # The push to A's phone hangs (until the 15 s timeout, in production); D's frame goes out regardless.
    await b.post(c.room_id, "a reply for someone else", parent_id=theirs["id"])
    note = await ws.recv_until(lambda f: f.get("type") == "notification")
    assert note["data"]["kind"] == "reply" and note["data"]["post_id"] != mine["id"]
    assert not server.app.state["notifier"].idle(), "D's frame came while the push to A's phone was still hanging"
    push.release.set()
    await wait_for(lambda: len(push.received) == 1)


# --- bulk: a drop-in going live to a big circle ------------------------------------------------------------------


async def seed_members(circle_id: str, n: int) -> None:
    """`n` more members of the circle, written straight to the tables: signing up thousands through the API would
    only test the sign-up limits."""
    from db.queries import chunks
    from db.tables import Account, Membership

    now = datetime.now(UTC)
    tag = uuid.uuid4().hex[:6]
    accounts = [
        Account(
            id=uuid.uuid4(),
            email=f"bulk-{tag}-{i}@example.org",
            name=f"Bulk {i}",
            password_hash="not a hash: this account never signs in",
            created_at=now,
            password_changed_at=now,
            timezone="UTC",
        )
        for i in range(n)
    ]
    for part in chunks(accounts, 500):
        await Account.insert(*part)
    members = [
        Membership(
            id=uuid.uuid4(),
            circle=uuid.UUID(circle_id),
            account=account.id,
            alias=f"Bulk{tag}{i}",
            alias_key=f"bulk{tag}{i}",
            alias_skeleton=f"bulk{tag}{i}",
            role="member",
            joined_at=now,
        )
        for i, account in enumerate(accounts)
    ]
    for part in chunks(members, 500):
        await Membership.insert(*part)


async def start_dropin(c: Circle) -> dict[str, Any]:
    starts = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
    body = {"title": "Open door", "starts_at": starts, "duration_minutes": 30}
    dropin = await c.coach.ok("POST", f"/api/v1/circles/{c.id}/dropins", body)
    return await c.coach.ok("POST", f"/api/v1/dropins/{dropin['id']}/start", status=200)  # type: ignore[no-any-return]


async def test_a_drop_in_goes_live_to_four_thousand_members(api: ApiClient) -> None:
    from db.tables import Notification

    c = await make_circle(api, members=1)
    await seed_members(c.id, 4000)
    ws = await c.members[0].ws()
    started = await start_dropin(c)
    assert started["state"] == "live"
    written = await Notification.count().where(
        (Notification.kind == "dropin.live") & (Notification.circle == uuid.UUID(c.id))
    )
    assert written == 4001
    note = await ws.recv_until(lambda f: f.get("type") == "notification")
    assert note["data"]["kind"] == "dropin.live"


@contextmanager
def counting_statements() -> Iterator[list[int]]:
    """Count every statement Piccolo sends to the database while the block runs (the app shares this process)."""
    from db.engine import current_engine

    engine: Any = current_engine()
    cls = type(engine)  # Piccolo's engines have slots: the methods are wrapped on the class, counted for this engine
    count = [0]
    originals = cls.run_querystring, cls.run_ddl

    async def querystring(self: Any, *args: Any, **kwargs: Any) -> Any:
        count[0] += self is engine
        return await originals[0](self, *args, **kwargs)

    async def ddl(self: Any, *args: Any, **kwargs: Any) -> Any:
        count[0] += self is engine
        return await originals[1](self, *args, **kwargs)

    cls.run_querystring, cls.run_ddl = querystring, ddl
    try:
        yield count
    finally:
        cls.run_querystring, cls.run_ddl = originals


async def test_statements_for_a_drop_in_do_not_grow_with_the_circle(
    server: Server, api: ApiClient, push: PushService
) -> None:
    """Going live, writing everyone's notification, sending frames and pushes: the same statements for a circle of
    ten as for a circle of a thousand."""
    counts: dict[int, int] = {}
    for size in (10, 1000):
        c = await make_circle(api, members=2)
        await seed_members(c.id, size - 2)
        for i, member in enumerate(c.members):
            await subscribe(member, push, f"{size}-{i}")
        runs = []
        # Twice, keeping the smaller count: a periodic job that happens to run meanwhile only ever adds statements.
        for _ in range(2):
            target = len(push.received) + 2
            with counting_statements() as count:
                await start_dropin(c)
                await wait_for(lambda: len(push.received) == target)  # noqa: B023 - awaited within this turn
                await settled(server)
            runs.append(count[0])
        counts[size] = min(runs)
    assert counts[10] == counts[1000], counts
    assert counts[10] < 40, counts


def test_push_origins_match_scheme_host_and_port() -> None:
    from app.push import DEFAULT_PUSH_ORIGINS, origin_allowed

    defaults = DEFAULT_PUSH_ORIGINS
    assert origin_allowed("https://db5.notify.windows.com/w/?token=x", defaults)
    assert origin_allowed("https://db5.notify.windows.com:443/w/", defaults)
    assert origin_allowed("https://fcm.googleapis.com/fcm/send/abc", defaults)
    assert origin_allowed("https://fcm.googleapis.com:443/fcm/send/abc", defaults)
    for refused in (
        "https://evil.notify.windows.com:6379/x",  # a wildcard entry means its own port, not any port
        "https://fcm.googleapis.com:8443/fcm/send/abc",
        "http://db5.notify.windows.com/w/",
        "https://notify.windows.com/w/",
        "https://evilnotify.windows.com/w/",
        "https://fcm.googleapis.com.evil.example/x",
        "https://user:pw@fcm.googleapis.com/x",
        "https://fcm.googleapis.com:99999/x",
        "https://fcm.googleapis.com:port/x",
        "https://[::1/x",
        "file:///etc/passwd",
    ):
        assert not origin_allowed(refused, defaults), refused
    local = ("http://127.0.0.1:8123", "https://*.push.example:8443")
    assert origin_allowed("http://127.0.0.1:8123/push/a", local)
    assert not origin_allowed("http://127.0.0.1:8124/push/a", local)
    assert not origin_allowed("http://127.0.0.1/push/a", local)
    assert origin_allowed("https://eu.push.example:8443/a", local)
    assert not origin_allowed("https://eu.push.example/a", local)


async def test_a_wildcard_push_origin_refuses_other_ports(api: ApiClient, push: PushService) -> None:
    a = await api.signup()
    keys = push.browser("tablet").subscription(push)["keys"]
    r = await a.call(
        "POST", "/api/v1/push/subscriptions", {"endpoint": "https://evil.notify.windows.com:6379/x", "keys": keys}
    )
    assert r.status_code == 400 and "push service" in r.json()["detail"]
    r = await a.call(
        "POST", "/api/v1/push/subscriptions", {"endpoint": "https://db5.notify.windows.com:99999/x", "keys": keys}
    )
    assert r.status_code == 400
    await a.ok(
        "POST", "/api/v1/push/subscriptions", {"endpoint": "https://db5.notify.windows.com/w/?t=1", "keys": keys}
    )


async def test_push_never_follows_a_redirect(api: ApiClient, push: PushService) -> None:
    from db.tables import PushSubscription

    c = await make_circle(api, members=2)
    a, b = c.members
    await subscribe(a, push, "laptop")
    push.redirect.add("laptop")
    post = await a.post(c.room_id, "mine")
    await b.post(c.room_id, "reply", parent_id=post["id"])
    await wait_for(lambda: push.redirected == 1)
    # The control: a later notification for a second, ordinary browser arrives; the deliverer works in order, so a
    # followed redirect for the first would have landed by then.
    await subscribe(a, push, "phone")
    await b.post(c.room_id, "another reply", parent_id=post["id"])
    await wait_for(lambda: len(push.received) >= 1 and push.redirected == 2)
    assert push.elsewhere == 0, "no redirect was followed"
    # A redirect is a failure this time, not a sign that the subscription is gone: the laptop's stays.
    assert await PushSubscription.count().where(PushSubscription.account == uuid.UUID(a.id)) == 2


BAD_ZONES = ("America", "Asia", "America/", "zone.tab", "../../etc/passwd", "/etc/localtime", "", "Mars/Olympus")
BAD_TIMES = ("99:xx", "22:00:00", "25:00", "7:00", "24:00", "")


async def test_bad_time_zones_and_quiet_hours_are_refused_by_the_api(api: ApiClient) -> None:
    a = await api.signup()
    prefs = await a.ok("GET", "/api/v1/notifications/preferences")
    for zone in BAD_ZONES:
        r = await a.call("PUT", "/api/v1/notifications/preferences", {**prefs, "timezone": zone})
        assert r.status_code == 400, (zone, r.text)
        assert "time zone" in r.json()["detail"], r.text
    for time in BAD_TIMES:
        for field in ("start", "end"):
            quiet = {"start": "22:00", "end": "07:00", field: time}
            r = await a.call("PUT", "/api/v1/notifications/preferences", {**prefs, "quiet_hours": quiet})
            assert r.status_code == 400, (quiet, r.text)
    assert await a.ok("GET", "/api/v1/notifications/preferences") == prefs, "nothing was saved"


async def test_bad_time_zones_and_quiet_hours_are_refused_by_the_settings_page(api: ApiClient) -> None:
    a = await api.signup()
    before = await a.ok("GET", "/api/v1/notifications/preferences")

    async def save(**fields: str) -> tuple[int, str]:
        form = {"timezone": "Europe/Berlin", "quiet": "on", "quiet_start": "22:00", "quiet_end": "07:00", **fields}
        r = await api.http.post("/settings/notifications", data=form, headers=a.headers)
        return r.status_code, r.text

    for zone in BAD_ZONES[:-2]:
        status, text = await save(timezone=zone)
        assert status == 400 and "unknown time zone" in text, (zone, status)
    for time in BAD_TIMES:
        status, text = await save(quiet_start=time)
        assert status == 400 and "Quiet hours: give the start and the end as HH:MM" in text, (time, status)
        status, text = await save(quiet_end=time)
        assert status == 400, (time, status)
    assert await a.ok("GET", "/api/v1/notifications/preferences") == before, "nothing was saved"
    status, text = await save()
    assert status == 200 and "Saved." in text
    saved = await a.ok("GET", "/api/v1/notifications/preferences")
    assert saved["timezone"] == "Europe/Berlin" and saved["quiet_hours"] == {"start": "22:00", "end": "07:00"}


# --- push subscriptions belong to a sign-in -------------------------------------------------------------------------


async def sign_in_again(api: ApiClient, user: User) -> User:
    """A second sign-in of the same account (another browser), with its own token."""
    from tests.client import PASSWORD

    r = await api.http.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    api.http.cookies.clear()
    return User(api, user.email, user.name, r.json()["token"], user.id, dict(user.aliases))


async def subscribed_browsers(user: User) -> set[str]:
    from db.tables import PushSubscription

    rows = await PushSubscription.select(PushSubscription.endpoint).where(
        PushSubscription.account == uuid.UUID(user.id)
    )
    return {r["endpoint"].rsplit("/", 1)[1] for r in rows}


async def test_a_sign_in_ends_with_its_push_subscriptions(server: Server, api: ApiClient, push: PushService) -> None:
    from tests.client import PASSWORD

    c = await make_circle(api, members=2)
    a, b = c.members
    laptop, phone, tablet = a, await sign_in_again(api, a), await sign_in_again(api, a)
    await subscribe(laptop, push, "laptop")
    await subscribe(phone, push, "phone")
    await subscribe(tablet, push, "tablet")
    assert await subscribed_browsers(a) == {"laptop", "phone", "tablet"}

    # Signing out (API) ends that sign-in's subscription only.
    await phone.ok("POST", "/api/v1/auth/logout", status=204)
    assert await subscribed_browsers(a) == {"laptop", "tablet"}
    post = await a.post(c.room_id, "mine")
    await b.post(c.room_id, "reply", parent_id=post["id"])
    await wait_for(lambda: len(push.received) == 2)
    await settled(server)
    assert {r.browser for r in push.received} == {"laptop", "tablet"}

    # A password change ends every other sign-in, and their subscriptions with them.
    body = {"current_password": PASSWORD, "new_password": "another long passphrase 77"}
    await tablet.ok("POST", "/api/v1/me/password", body, status=204)
    assert await subscribed_browsers(a) == {"tablet"}

    # A sign-in that expired is not pushed to, even before anything removes its row.
    from db.tables import AuthToken

    await AuthToken.update({AuthToken.expires_at: datetime.now(UTC) - timedelta(minutes=1)}).where(
        AuthToken.account == uuid.UUID(a.id)
    )
    from db.tables import Notification

    push.received.clear()
    reply = await b.post(c.room_id, "another reply", parent_id=post["id"])
    await settled(server)
    assert push.received == []
    # The control: the notification was made (it is in A's feed); only its push had nowhere to go.
    made = await Notification.select(Notification.kind).where(Notification.post_id == uuid.UUID(reply["id"]))
    assert made == [{"kind": "reply"}]


async def test_page_sign_out_and_account_deletion_end_push_subscriptions(api: ApiClient, push: PushService) -> None:
    from tests.client import PASSWORD

    a = await api.signup()
    browser = api.http
    r = await browser.post("/api/v1/auth/login", json={"email": a.email, "password": PASSWORD})
    assert r.status_code == 200
    csrf = (await browser.get("/")).cookies.get("kindred_csrf") or browser.cookies.get("kindred_csrf")
    key = (await browser.get("/api/v1/push/key")).json()["public_key"]
    push.server_key = key
    r = await browser.post(
        "/api/v1/push/subscriptions", json=push.browser("home").subscription(push), headers={"x-csrftoken": csrf or ""}
    )
    assert r.status_code == 201, r.text
    assert await subscribed_browsers(a) == {"home"}
    r = await browser.post("/signout", data={"_csrf_token": csrf})
    assert r.status_code == 303
    assert await subscribed_browsers(a) == set(), "the page's sign-out ends the browser's subscription"
    browser.cookies.clear()

    await subscribe(a, push, "work")
    assert await subscribed_browsers(a) == {"work"}
    await a.ok("DELETE", "/api/v1/me", {"password": PASSWORD}, status=204)
    assert await subscribed_browsers(a) == set()


async def test_one_browser_belongs_to_the_account_that_subscribed_it_last(
    server: Server, api: ApiClient, push: PushService
) -> None:
    c = await make_circle(api, members=3)
    a, b, d = c.members
    shared = push.browser("shared").subscription(push)
    push.server_key = (await a.ok("GET", "/api/v1/push/key"))["public_key"]
    first = await a.ok("POST", "/api/v1/push/subscriptions", shared)
    second = await b.ok("POST", "/api/v1/push/subscriptions", shared)
    assert first != second
    assert await subscribed_browsers(a) == set() and await subscribed_browsers(b) == {"shared"}
    assert (await a.call("DELETE", f"/api/v1/push/subscriptions/{first['id']}")).status_code == 404
    post_a, post_b = await a.post(c.room_id, "a's"), await b.post(c.room_id, "b's")
    await d.post(c.room_id, "to a", parent_id=post_a["id"])
    await d.post(c.room_id, "to b", parent_id=post_b["id"])
    await wait_for(lambda: len(push.received) == 1)
    await settled(server)
    assert [r.payload["body"] for r in push.received] == ["Member3 replied to your post"]
    note_b = (await b.ok("GET", "/api/v1/notifications"))[0]
    assert push.received[0].payload["tag"] == note_b["id"], "the shared browser gets B's notification, not A's"


# --- per-circle preferences ----------------------------------------------------------------------------------------


async def test_a_kind_set_for_one_circle_applies_there_and_nowhere_else(
    server: Server, api: ApiClient, push: PushService
) -> None:
    one = await make_circle(api, members=2)
    a, b = one.members
    other = await make_circle(api, members=0, coach_name="Coach Eli")
    await a.ok("POST", f"/api/v1/invites/{other.invite}/join", {"alias": "Wren"})
    await b.ok("POST", f"/api/v1/invites/{other.invite}/join", {"alias": "Moss"})
    other_room = (await a.ok("GET", f"/api/v1/circles/{other.id}/rooms"))[0]["id"]
    await subscribe(a, push, "laptop")
    prefs = await a.ok("GET", "/api/v1/notifications/preferences")
    assert prefs["circles"] == {}
    # In the first circle: no mentions at all, and peers' likes pushed (everywhere else they do not push).
    prefs["circles"] = {
        one.id: {
            "mention": {"in_app": False, "browser": False, "push": False, "email": False},
            "like": {"in_app": True, "browser": True, "push": True, "email": False},
        }
    }
    saved = await a.ok("PUT", "/api/v1/notifications/preferences", prefs)
    assert saved["circles"] == prefs["circles"] and saved["kinds"] == prefs["kinds"]

    await b.post(one.room_id, "hey @Member1, in the first circle")
    await b.post(other_room, "hey @Wren, in the other circle")
    mine_one, mine_other = await a.post(one.room_id, "first"), await a.post(other_room, "other")
    await b.ok("PUT", f"/api/v1/posts/{mine_other['id']}/like")
    await b.ok("PUT", f"/api/v1/posts/{mine_one['id']}/like")
    await wait_for(lambda: len(push.received) == 2)
    await settled(server)
    feed = await a.ok("GET", "/api/v1/notifications")
    assert [(n["kind"], n["circle_id"]) for n in feed] == [("like", one.id), ("like", other.id), ("mention", other.id)]
    # Pushed: the like in the first circle (its own setting) and the mention in the other (as everywhere).
    assert sorted(r.payload["tag"] for r in push.received) == sorted([feed[0]["id"], feed[2]["id"]])

    # Leaving the circle out of a PUT (an older client) keeps the per-circle settings; sending {} clears them.
    del prefs["circles"]
    assert (await a.ok("PUT", "/api/v1/notifications/preferences", prefs))["circles"] != {}
    prefs["circles"] = {}
    assert (await a.ok("PUT", "/api/v1/notifications/preferences", prefs))["circles"] == {}


async def test_per_circle_settings_still_let_the_coach_through(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    a = c.members[0]
    off = {"in_app": False, "browser": False, "push": False}
    prefs = await a.ok("GET", "/api/v1/notifications/preferences")
    prefs["circles"] = {c.id: {"question": off, "coach_like": off, "pin": off}}
    await a.ok("PUT", "/api/v1/notifications/preferences", prefs)
    post = await a.post(c.room_id, "mine")
    await c.coach.post(c.room_id, "what made it hard?", kind="question", parent_id=post["id"])
    await c.coach.ok("PUT", f"/api/v1/posts/{post['id']}/like")
    await c.coach.ok("PUT", f"/api/v1/posts/{post['id']}/pin")
    # Notifications are written in the transaction of their cause: in the feed as soon as the request answered.
    assert sorted(n["kind"] for n in await a.ok("GET", "/api/v1/notifications")) == ["coach_like", "pin", "question"]


async def test_per_circle_settings_are_checked(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    a = c.members[0]
    elsewhere = await make_circle(api, members=0, coach_name="Coach Eli")
    prefs = await a.ok("GET", "/api/v1/notifications/preferences")
    bad: dict[str, Any]
    for bad in ({elsewhere.id: {}}, {"nope": {}}, {c.id: {"gossip": {}}}, {c.id: {"like": {"push": "yes"}}}):
        r = await a.call("PUT", "/api/v1/notifications/preferences", {**prefs, "circles": bad})
        assert r.status_code == 400, (bad, r.text)


async def test_per_circle_settings_from_the_page(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    a = c.members[0]
    page = await api.http.get("/settings/notifications", headers=a.headers)
    assert page.status_code == 200 and f'name="c.{c.id}.mention"' in page.text
    form = {"timezone": "UTC", f"c.{c.id}.mention": "own", f"c.{c.id}.mention.in_app": "on"}
    form.update({f"c.{c.id}.reply": "inherit", f"c.{c.id}.reply.push": "on"})  # ignored: follows "as everywhere"
    r = await api.http.post("/settings/notifications", data=form, headers=a.headers)
    assert r.status_code == 200 and "Saved." in r.text
    prefs = await a.ok("GET", "/api/v1/notifications/preferences")
    assert prefs["circles"] == {c.id: {"mention": {"in_app": True, "browser": False, "push": False, "email": False}}}
    assert 'value="own" selected' in r.text


# --- channels on their own: push only, browser only -----------------------------------------------------------------


async def test_a_push_only_notification_leads_straight_to_the_post(api: ApiClient, push: PushService) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    await subscribe(a, push, "phone")
    prefs = await a.ok("GET", "/api/v1/notifications/preferences")
    prefs["kinds"]["reply"] = {"in_app": False, "browser": False, "push": True}
    prefs["kinds"]["dropin.live"] = {"in_app": False, "browser": False, "push": True}
    await a.ok("PUT", "/api/v1/notifications/preferences", prefs)
    post = await a.post(c.room_id, "mine")
    reply = await b.post(c.room_id, "a reply", parent_id=post["id"])
    await wait_for(lambda: len(push.received) == 1)
    assert await a.ok("GET", "/api/v1/notifications") == [], "nothing in the feed: in-app is off"
    sent = push.received[0].payload
    # No feed entry to open, so the push leads to the thread at the reply itself.
    assert sent["url"] == sent["target"] == f"/posts/{reply['id']}"
    thread = await api.http.get(sent["url"], headers=a.headers)
    assert thread.status_code == 200 and f'data-focus="post-{reply["id"]}"' in thread.text
    # A drop-in has no post: it leads to its room. (The coach started it, so it is in the feed regardless, and the
    # push opens the feed entry.)
    await start_dropin(c)
    await wait_for(lambda: len(push.received) == 2)
    live = push.received[1].payload
    assert live["target"].startswith("/rooms/") and live["url"] == f"/notifications/{live['tag']}/open"


async def test_browser_notifications_work_with_the_feed_off(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    prefs = await a.ok("GET", "/api/v1/notifications/preferences")
    prefs["kinds"]["mention"] = {"in_app": False, "browser": True, "push": False}
    await a.ok("PUT", "/api/v1/notifications/preferences", prefs)
    ws = await a.ws()
    mention = await b.post(c.room_id, "hey @Member1")
    frame = await ws.recv_until(lambda f: f.get("type") == "notification")
    assert frame["alert"] is True and frame["in_feed"] is False
    assert frame["url"] == f"/posts/{mention['id']}"
    assert await a.ok("GET", "/api/v1/notifications") == []
    # With the feed on, the frame's link opens the feed entry (and marks it read).
    post = await a.post(c.room_id, "mine")
    await b.post(c.room_id, "reply", parent_id=post["id"])
    frame = await ws.recv_until(lambda f: f.get("type") == "notification")
    assert frame["in_feed"] is True and frame["url"] == f"/notifications/{frame['data']['id']}/open"


# --- the feed: paging, reading --------------------------------------------------------------------------------------


async def test_paging_does_not_skip_notifications_made_at_the_same_instant(api: ApiClient) -> None:
    from db.tables import Notification

    a = await api.signup()
    same = datetime.now(UTC).replace(microsecond=0)
    rows = [
        Notification(id=uuid.uuid4(), account=uuid.UUID(a.id), kind="dropin.reminder", created_at=same, read_at=None)
        for _ in range(5)
    ]
    rows.append(
        Notification(
            id=uuid.uuid4(),
            account=uuid.UUID(a.id),
            kind="dropin.reminder",
            created_at=same - timedelta(1),
            read_at=None,
        )
    )
    await Notification.insert(*rows)
    seen: list[str] = []
    page = await a.ok("GET", "/api/v1/notifications?limit=2")
    while page:
        seen += [n["id"] for n in page]
        page = await a.ok("GET", f"/api/v1/notifications?limit=2&before={page[-1]['id']}")
    assert len(seen) == len(set(seen)) == 6
    assert seen[-1] == str(rows[-1].id), "newest first; the older one last"
    assert sorted(seen[:5]) == sorted(str(r.id) for r in rows[:5])


async def test_reading_lowers_the_count_on_every_socket(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    assert await a.ok("GET", "/api/v1/notifications/unread") == {"unread": 0}
    post = await a.post(c.room_id, "mine")
    for i in range(3):
        await b.post(c.room_id, f"reply {i}", parent_id=post["id"])
    assert await a.ok("GET", "/api/v1/notifications/unread") == {"unread": 3}
    tab1, tab2 = await a.ws(), await a.ws()
    first = (await a.ok("GET", "/api/v1/notifications"))[0]
    await a.ok("POST", "/api/v1/notifications/read", {"ids": [first["id"]]}, status=204)
    for ws in (tab1, tab2):
        frame = await ws.recv_until(lambda f: f.get("type") == "notifications.read")
        assert frame == {"type": "notifications.read", "unread": 2}
    # Marking it again changes nothing, and says nothing.
    await a.ok("POST", "/api/v1/notifications/read", {"ids": [first["id"]]}, status=204)
    # Opening one from the feed reads it too.
    second = (await a.ok("GET", "/api/v1/notifications?unread=true"))[0]
    r = await api.http.get(f"/notifications/{second['id']}/open", headers=a.headers)
    assert r.status_code == 303 and r.headers["location"] == f"/posts/{second['post_id']}"
    assert (await tab1.recv_until(lambda f: f.get("type") == "notifications.read"))["unread"] == 1
    # One entry, marked read in place on the notifications page (htmx).
    third = (await a.ok("GET", "/api/v1/notifications?unread=true"))[0]
    r = await api.http.post(f"/notifications/{third['id']}/read", headers={**a.headers, "HX-Request": "true"})
    assert r.status_code == 200 and r.text.startswith(f'<li class="notification" id="note-{third["id"]}"')
    assert "Mark read" not in r.text
    assert (await tab1.recv_until(lambda f: f.get("type") == "notifications.read"))["unread"] == 0
    assert await a.ok("GET", "/api/v1/notifications/unread") == {"unread": 0}
    other = await b.ok("GET", "/api/v1/notifications")
    r = await api.http.post(f"/notifications/{third['id']}/read", headers={**b.headers, "HX-Request": "true"})
    assert r.status_code == 404 and other == []


async def test_a_renewed_subscription_keeps_its_account_and_sign_in(api: ApiClient, push: PushService) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    old_id = await subscribe(a, push, "old")
    old = push.browsers["old"].subscription(push)
    new = push.browser("new").subscription(push)
    # Without a session (the service worker has none), the old subscription is the proof.
    anonymous = api.http
    r = await anonymous.post(
        "/api/v1/push/subscriptions/renew",
        json={"old_endpoint": old["endpoint"], "old_auth": new["keys"]["auth"], "subscription": new},
    )
    assert r.status_code == 404, "the wrong auth secret proves nothing"
    r = await anonymous.post(
        "/api/v1/push/subscriptions/renew",
        json={
            "old_endpoint": old["endpoint"],
            "old_auth": old["keys"]["auth"],
            "subscription": {**new, "endpoint": "http://169.254.169.254/x"},
        },
    )
    assert r.status_code == 400
    r = await anonymous.post(
        "/api/v1/push/subscriptions/renew",
        json={"old_endpoint": old["endpoint"], "old_auth": old["keys"]["auth"], "subscription": new},
    )
    assert r.status_code == 200 and r.json() == {"id": old_id}
    assert await subscribed_browsers(a) == {"new"}
    post = await a.post(c.room_id, "mine")
    await b.post(c.room_id, "reply", parent_id=post["id"])
    await wait_for(lambda: len(push.received) == 1)
    assert push.received[0].browser == "new"
    # Still this sign-in's: signing out ends it.
    await a.ok("POST", "/api/v1/auth/logout", status=204)
    assert await subscribed_browsers(a) == set()


async def test_pushes_waiting_on_a_stalled_service_are_bounded(
    api: ApiClient, push: PushService, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past PUSH_BATCHES waiting push batches, further pushes are dropped (and counted); frames still all go out."""
    import app.notifier
    from app.live import Delivery
    from app.notifier import Notifier
    from app.push import PushSender, VapidKey
    from realtime.events import Notification
    from tests.conftest import SECRET

    monkeypatch.setattr(app.notifier, "PUSH_BATCHES", 2)
    a = await api.signup()
    await subscribe(a, push, "stuck")
    push.stall.add("stuck")
    ws = await a.ws()
    notifier = Notifier(server.app.state["live"], PushSender(VapidKey(SECRET), (push.origin,), "mailto:t@example.org"))
    await notifier.start()
    try:
        for i in range(3):
            note = Notification(
                id=str(uuid.uuid4()),
                kind="dropin.reminder",
                circle_id=None,
                room_id=None,
                post_id=None,
                actor=None,
                created_at=datetime.now(UTC),
                read=False,
                text=f"reminder {i}",
            )
            delivery = Delivery(
                account_id=uuid.UUID(a.id),
                notification=note,
                frame=True,
                alert=False,
                push=True,
                in_feed=False,
                target="/notifications",
                title="Kindred",
            )
            notifier.submit([delivery])
        texts = [(await ws.recv_until(lambda f: f.get("type") == "notification"))["data"]["text"] for _ in range(3)]
        assert texts == ["reminder 0", "reminder 1", "reminder 2"]
        await wait_for(lambda: push.stalled == 2)
        assert notifier.dropped_pushes == 1
    finally:
        push.release.set()
        await notifier.stop()
