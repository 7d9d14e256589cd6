"""Memberships that end, and who may see whom: removal and rejoining, reserved aliases, identity consent taken per
membership at join time, and the audit log of the coach's circle-wide decisions. Both backends, through the API and
the pages."""

from __future__ import annotations

import json

import pytest

from tests.client import ApiClient, Circle, User, make_circle, page_client

pytestmark = pytest.mark.anyio

# A push service on a closed local port: pushes fail fast instead of looking up a real one.
PUSH_ENDPOINT = "http://127.0.0.1:9/push/abc"
LOCAL_PUSH = {"KINDRED_PUSH_ALLOWED_ORIGINS": "http://127.0.0.1:9"}


async def mid(user: User, circle_id: str) -> str:
    me = await user.ok("GET", "/api/v1/me")
    return str(next(m["membership_id"] for m in me["memberships"] if m["circle_id"] == circle_id))


async def actions(coach: User, circle_id: str) -> list[str]:
    return [e["action"] for e in await coach.ok("GET", f"/api/v1/circles/{circle_id}/audit")]


async def test_a_removed_member_cannot_rejoin_until_the_coach_lets_them(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    a_mid = await mid(a, c.id)
    await a.post(c.room_id, "hello from Member1")
    await c.coach.ok("DELETE", f"/api/v1/circles/{c.id}/members/{a_mid}?reason=harassment")

    refused = await a.call("POST", f"/api/v1/invites/{c.invite}/join", {"alias": "Someone New"})
    assert refused.status_code == 403 and "removed you" in refused.json()["detail"]
    assert (await a.call("GET", f"/api/v1/circles/{c.id}")).status_code == 404, "and nothing was half-joined"
    fresh = await c.coach.ok("POST", f"/api/v1/circles/{c.id}/invites", {})
    again = await a.call("POST", f"/api/v1/invites/{fresh['code']}/join", {"alias": "Another"})
    assert again.status_code == 403, "a new invite link does not get round it"
    async with page_client(api, a) as browser:
        page = await browser.post(f"/join/{fresh['code']}", data={"alias": "Via the page"})
        assert page.status_code == 403 and "removed you" in page.text

    # The alias their old posts still carry is theirs: nobody else may take it.
    newcomer = await api.signup()
    taken = await newcomer.call("POST", f"/api/v1/invites/{c.invite}/join", {"alias": "member1"})
    assert taken.status_code == 409 and "taken" in taken.json()["detail"]
    renamed = await b.call("PATCH", f"/api/v1/circles/{c.id}/membership", {"alias": "MEMBER1"})
    assert renamed.status_code == 409 and "taken" in renamed.json()["detail"]

    former = await c.coach.ok("GET", f"/api/v1/circles/{c.id}/former-members")
    assert [(f["membership_id"], f["alias"], f["ended_by"], f["rejoin_blocked"]) for f in former] == [
        (a_mid, "Member1", "removed", True)
    ]
    assert (await b.call("GET", f"/api/v1/circles/{c.id}/former-members")).status_code == 403
    assert (await b.call("POST", f"/api/v1/circles/{c.id}/members/{a_mid}/allow-rejoin")).status_code == 403
    # Peers learn nothing of the refusals.
    assert "removed you" not in json.dumps(await b.ok("GET", "/api/v1/notifications"))

    async with page_client(api, c.coach) as coach_pages:
        moderation = await coach_pages.get(f"/circles/{c.id}/moderation")
        assert "Let them rejoin" in moderation.text and "cannot rejoin" in moderation.text
        lifted = await coach_pages.post(f"/circles/{c.id}/members/{a_mid}/allow-rejoin", headers={"hx-request": "true"})
        assert lifted.status_code == 200 and "join again" in lifted.text
    assert (await c.coach.call("POST", f"/api/v1/circles/{c.id}/members/{a_mid}/allow-rejoin")).status_code == 409
    assert (await c.coach.ok("GET", f"/api/v1/circles/{c.id}/former-members"))[0]["rejoin_blocked"] is False
    back = await a.ok("POST", f"/api/v1/invites/{c.invite}/join", {"alias": "Member1"})
    assert back["alias"] == "Member1", "their own former alias is still theirs"
    assert (await actions(c.coach, c.id))[:2] == ["allow_rejoin", "remove_member"]


async def test_a_member_who_left_may_come_back(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    a = c.members[0]
    a_mid = await mid(a, c.id)
    await a.ok("DELETE", f"/api/v1/circles/{c.id}/members/{a_mid}")
    former = await c.coach.ok("GET", f"/api/v1/circles/{c.id}/former-members")
    assert [(f["ended_by"], f["rejoin_blocked"]) for f in former] == [("left", False)]
    newcomer = await api.signup()
    assert (await newcomer.call("POST", f"/api/v1/invites/{c.invite}/join", {"alias": "Member1"})).status_code == 409
    assert (await c.coach.call("POST", f"/api/v1/circles/{c.id}/members/{a_mid}/allow-rejoin")).status_code == 409
    back = await a.ok("POST", f"/api/v1/invites/{c.invite}/join", {"alias": "Back Again"})
    assert back["alias"] == "Back Again"
    assert (await actions(c.coach, c.id)) == ["leave"]


async def test_identity_consent_is_taken_per_membership_at_join_time(api: ApiClient) -> None:
    coach = await api.signup("Coach Dana")
    circle = await coach.ok("POST", "/api/v1/circles", {"name": "Consent", "commonality": "c"})
    cid = circle["id"]
    invite = await coach.ok("POST", f"/api/v1/circles/{cid}/invites", {})
    await coach.ok("PATCH", f"/api/v1/circles/{cid}", {"coach_sees_identity": False})
    early = await api.signup("Early Bird-Private")
    async with page_client(api, early) as browser:
        text = (await browser.get(f"/join/{invite['code']}")).text
        assert "Your coach will not see your name or email either" in text and "never" in text
    await early.ok("POST", f"/api/v1/invites/{invite['code']}/join", {"alias": "Early"})

    turned_on = await coach.ok("PATCH", f"/api/v1/circles/{cid}", {"coach_sees_identity": True})
    assert turned_on["coach_sees_identity"] is True
    notice = next(n for n in await early.ok("GET", "/api/v1/notifications") if n["kind"] == "circle.privacy")
    assert "join this circle from now on" in notice["text"] and "You joined before" in notice["text"]
    late = await api.signup("Late Comer-Known")
    async with page_client(api, late) as browser:
        assert "Your coach will see your name and email" in (await browser.get(f"/join/{invite['code']}")).text
    await late.ok("POST", f"/api/v1/invites/{invite['code']}/join", {"alias": "Late"})

    listing = {m["alias"]: m for m in await coach.ok("GET", f"/api/v1/circles/{cid}/members")}
    assert listing["Early"]["email"] is None and listing["Early"]["name"] is None
    assert listing["Late"]["email"] == late.email and listing["Late"]["name"] == late.name
    async with page_client(api, coach) as pages:
        circle_page = (await pages.get(f"/circles/{cid}")).text
        assert late.email in circle_page and early.email not in circle_page and "Early Bird" not in circle_page
        assert "applies only to people who join afterwards" in circle_page
        # Turning it off from the page hides everyone, and for good: on again, nobody who is here is shown.
        off = await pages.post(f"/circles/{cid}/identity", data={})
        assert off.status_code == 303
    assert late.email not in json.dumps(await coach.ok("GET", f"/api/v1/circles/{cid}/members"))
    assert "circle.privacy" in [n["kind"] for n in await late.ok("GET", "/api/v1/notifications")]
    await coach.ok("PATCH", f"/api/v1/circles/{cid}", {"coach_sees_identity": True})
    again = {m["alias"]: m for m in await coach.ok("GET", f"/api/v1/circles/{cid}/members")}
    assert again["Late"]["email"] is None and again["Early"]["email"] is None
    # Same value again is no change: nothing logged, nobody notified.
    await coach.ok("PATCH", f"/api/v1/circles/{cid}", {"coach_sees_identity": True})
    assert (await actions(coach, cid)) == ["identity_on", "identity_off", "identity_on", "identity_off"]


async def test_closing_and_reopening_a_circle_are_in_the_audit_log(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    await c.coach.ok("POST", f"/api/v1/circles/{c.id}/close", status=200)
    await c.coach.ok("POST", f"/api/v1/circles/{c.id}/reopen", status=200)
    assert (await actions(c.coach, c.id)) == ["reopen", "close"]
    async with page_client(api, c.coach) as pages:
        text = (await pages.get(f"/circles/{c.id}/moderation")).text
        assert "closed the circle" in text and "reopened the circle" in text


def browser_subscription(endpoint: str) -> dict[str, object]:
    """A PushSubscription as a browser would send it: a fresh P-256 public key and a 16-byte auth secret."""
    import base64
    import os

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return {"endpoint": endpoint, "keys": {"p256dh": b64(point), "auth": b64(os.urandom(16))}}


async def _personal_trail(api: ApiClient) -> tuple[Circle, User, User]:
    """Member1 files a report, tags and is tagged, shares, raises a hand in a drop-in, subscribes a browser and sets
    preferences; the coach pins Member1's post."""
    c = await make_circle(api, members=2)
    a, b = c.members
    mine = await a.post(c.room_id, "my own words")
    theirs = await b.post(c.room_id, "their words")
    await a.ok("POST", f"/api/v1/posts/{theirs['id']}/reports", {"reason": "my reason for reporting"})
    await a.ok("POST", f"/api/v1/posts/{theirs['id']}/tags", {"membership_id": await mid(b, c.id)})
    await c.coach.ok("POST", f"/api/v1/posts/{mine['id']}/tags", {"membership_id": await mid(a, c.id)})
    await c.coach.ok("PUT", f"/api/v1/posts/{mine['id']}/pin", {"note": "a key insight"}, status=200)
    other_room = await c.coach.ok("POST", f"/api/v1/circles/{c.id}/rooms", {"name": "Elsewhere"})
    await a.ok("POST", f"/api/v1/posts/{theirs['id']}/shares", {"room_id": other_room["id"], "note": "worth reading"})
    await a.ok("POST", "/api/v1/push/subscriptions", browser_subscription(PUSH_ENDPOINT))
    prefs = await a.ok("GET", "/api/v1/notifications/preferences")
    prefs["timezone"] = "Europe/Berlin"
    prefs["kinds"] = {"like": {"in_app": True, "browser": False, "push": False}}
    await a.ok("PUT", "/api/v1/notifications/preferences", prefs)
    from datetime import UTC, datetime, timedelta

    start = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    dropin = await c.coach.ok(
        "POST", f"/api/v1/circles/{c.id}/dropins", {"title": "Thursday", "starts_at": start, "duration_minutes": 30}
    )
    await c.coach.ok("POST", f"/api/v1/dropins/{dropin['id']}/start", status=200)
    await a.ok("PUT", f"/api/v1/dropins/{dropin['id']}/hand", status=200)
    return c, a, b


@pytest.mark.parametrize("settings_env", [LOCAL_PUSH])
async def test_the_export_holds_everything_of_mine(api: ApiClient) -> None:
    import uuid as _uuid
    from datetime import UTC, datetime

    from db.tables import Notification

    c, a, b = await _personal_trail(api)
    # More notifications than a page of the feed holds.
    await Notification.insert(
        *(
            Notification(
                id=_uuid.uuid4(), account=_uuid.UUID(a.id), kind="reply", created_at=datetime.now(UTC), read_at=None
            )
            for _ in range(130)
        )
    )
    data = await a.ok("GET", "/api/v1/me/export")
    assert len(data["notifications"]) > 130
    assert [r["reason"] for r in data["reports"]] == ["my reason for reporting"]
    assert sorted((t["by_me"], t["other"]) for t in data["tags"]) == [(False, "Coach Dana"), (True, "Member2")]
    assert [p["note"] for p in data["pins"]] == [], "pins made by me (I am no coach here)"
    assert [p["pinned"] for p in data["posts"] if p["body"] == "my own words"] == [True]
    assert [p["shared_from"]["note"] for p in data["posts"] if p["shared_from"]] == ["worth reading"]
    assert [d["title"] for d in data["dropins"]] == ["Thursday"]
    assert [s["endpoint"] for s in data["push_subscriptions"]] == [PUSH_ENDPOINT]
    assert data["notification_preferences"]["timezone"] == "Europe/Berlin"
    assert data["memberships"][0]["ended_by"] is None and data["memberships"][0]["coach_sees_identity"] is True
    coach = await c.coach.ok("GET", "/api/v1/me/export")
    assert [p["note"] for p in coach["pins"]] == ["a key insight"]
    text = json.dumps(data)
    for secret in (b.email, b.name, b.id):
        assert secret not in text


@pytest.mark.parametrize("settings_env", [LOCAL_PUSH])
async def test_deleting_an_account_erases_what_is_personal(api: ApiClient) -> None:
    import uuid as _uuid

    from db.tables import DropinHand, Membership, NotificationPreference, PushSubscription, Report

    c, a, _ = await _personal_trail(api)
    account = _uuid.UUID(a.id)
    mids = [m["id"] for m in await Membership.select(Membership.id).where(Membership.account == account)]
    assert await PushSubscription.count().where(PushSubscription.account == account) == 1
    await a.ok("DELETE", "/api/v1/me", {"password": "a long enough passphrase 42"})
    assert await PushSubscription.count().where(PushSubscription.account == account) == 0
    assert await NotificationPreference.count().where(NotificationPreference.account == account) == 0
    assert await Report.count().where(Report.reporter.is_in(mids)) == 0
    assert await DropinHand.count().where(DropinHand.membership.is_in(mids)) == 0
    ended = await Membership.select(Membership.ended_by).where(Membership.account == account)
    assert [m["ended_by"] for m in ended] == ["deleted"]
    assert await c.coach.ok("GET", f"/api/v1/circles/{c.id}/former-members") == [], "nobody to let back"


async def test_the_only_coach_of_an_open_circle_closes_it_before_leaving(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    refused = await c.coach.call("DELETE", "/api/v1/me", {"password": "a long enough passphrase 42"})
    assert refused.status_code == 409
    assert (
        "only coach of “Saying No”" in refused.json()["detail"]
        and "close that circle first" in refused.json()["detail"]
    )
    assert (await c.coach.call("GET", "/api/v1/me")).status_code == 200, "nothing was erased"
    async with page_client(api, c.coach) as pages:
        page = await pages.post("/account/delete", data={"password": "a long enough passphrase 42"})
        assert page.status_code == 409 and "close that circle first" in page.text
    await c.coach.ok("POST", f"/api/v1/circles/{c.id}/close", status=200)
    await c.coach.ok("DELETE", "/api/v1/me", {"password": "a long enough passphrase 42"})
    member = c.members[0]
    assert (await member.call("GET", f"/api/v1/rooms/{c.room_id}/posts")).status_code == 200, "readable in its grace"
