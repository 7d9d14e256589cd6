"""Limits added to every write that lacked one, sign-in throttling that counts failures (so an attacker cannot lock
the owner out), wrong current passwords counted like failed sign-ins, 429s on pages that keep Retry-After, Secure
cookies behind TLS, and the untrusted-proxy warning. Both backends."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.client import PASSWORD, ApiClient, make_circle, page_client
from tests.conftest import Server

pytestmark = pytest.mark.anyio

NEW_PASSWORD = "a completely different passphrase"


def retry_after(response) -> int:  # type: ignore[no-untyped-def]
    assert response.status_code == 429, (response.status_code, response.text[:300])
    return int(response.headers["retry-after"])


@pytest.mark.parametrize(
    "settings_env",
    [
        {
            "KINDRED_EDITS_PER_MINUTE": "3",
            "KINDRED_ALIAS_CHANGES_PER_HOUR": "2",
            "KINDRED_CIRCLES_PER_HOUR": "2",
            "KINDRED_ROOMS_PER_HOUR": "2",
        }
    ],
)
async def test_edits_aliases_circles_and_rooms_are_limited(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    a = c.members[0]
    post = await a.post(c.room_id, "draft")
    for i in range(3):
        await a.ok("PATCH", f"/api/v1/posts/{post['id']}", {"body": f"draft {i}"})
    assert retry_after(await a.call("PATCH", f"/api/v1/posts/{post['id']}", {"body": "once more"})) >= 1
    async with page_client(api, a) as pages:
        # The page's edit form spends the same allowance, and its 429 keeps Retry-After inside htmx too.
        limited = await pages.patch(f"/posts/{post['id']}", data={"body": "x"}, headers={"hx-request": "true"})
        assert retry_after(limited) >= 1 and limited.headers["hx-reswap"] == "innerHTML"
        assert "editing very fast" in limited.text

    for alias in ("First Change", "Second Change"):
        await a.ok("PATCH", f"/api/v1/circles/{c.id}/membership", {"alias": alias})
    assert retry_after(await a.call("PATCH", f"/api/v1/circles/{c.id}/membership", {"alias": "Third"})) >= 1

    # make_circle opened the first.
    await c.coach.ok("POST", "/api/v1/circles", {"name": "Second", "commonality": "c"})
    assert retry_after(await c.coach.call("POST", "/api/v1/circles", {"name": "Third", "commonality": "c"})) >= 1
    async with page_client(api, c.coach) as pages:
        # A full page (no htmx) that is limited says so and keeps Retry-After.
        page = await pages.post("/circles/new", data={"name": "Fifth", "commonality": "c"})
        assert retry_after(page) >= 1 and "too many new circles" in page.text and "<html" in page.text

    await c.coach.ok("POST", f"/api/v1/circles/{c.id}/rooms", {"name": "One"})
    async with page_client(api, c.coach) as pages:
        made = await pages.post(f"/circles/{c.id}/rooms", data={"name": "Two"}, headers={"hx-request": "true"})
        assert made.status_code == 204
        limited = await pages.post(f"/circles/{c.id}/rooms", data={"name": "Three"}, headers={"hx-request": "true"})
        assert retry_after(limited) >= 1
    # A drop-in opens a room of its own, so it spends the same allowance.
    dropin = {"title": "Thursday", "starts_at": "2099-01-01T10:00:00Z", "duration_minutes": 30}
    assert retry_after(await c.coach.call("POST", f"/api/v1/circles/{c.id}/dropins", dropin)) >= 1


@pytest.mark.parametrize("settings_env", [{"KINDRED_LOGINS_PER_ACCOUNT": "3"}])
async def test_wrong_current_passwords_are_403_and_counted_like_failed_sign_ins(api: ApiClient) -> None:
    user = await api.signup()
    for _ in range(3):
        wrong = await user.call(
            "POST", "/api/v1/me/password", {"current_password": "not my password", "new_password": NEW_PASSWORD}
        )
        assert wrong.status_code == 403 and "not your current password" in wrong.json()["detail"]
    right = await user.call("POST", "/api/v1/me/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert retry_after(right) >= 1, "the oracle is closed, even for the right answer, until the window passes"
    # Account deletion asks the same question and shares the count.
    assert retry_after(await user.call("DELETE", "/api/v1/me", {"password": PASSWORD})) >= 1

    # Right answers and mistakes that are not a wrong password (a weak new one) cost nothing.
    other = await api.signup()
    for _ in range(5):
        weak = await other.call("POST", "/api/v1/me/password", {"current_password": PASSWORD, "new_password": "short"})
        assert weak.status_code == 400
    await other.ok(
        "POST", "/api/v1/me/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}, status=204
    )
    for _ in range(4):
        await other.ok(
            "POST", "/api/v1/me/password", {"current_password": NEW_PASSWORD, "new_password": NEW_PASSWORD}, status=204
        )
    async with page_client(api, other) as pages:
        page = await pages.post("/account/password", data={"current_password": "nope", "new_password": PASSWORD})
        assert page.status_code == 403 and "not your current password" in page.text


@pytest.mark.parametrize(
    "settings_env",
    [{"KINDRED_LOGINS_PER_ACCOUNT": "3", "KINDRED_LOGIN_FAILURES_PER_EMAIL": "5", "KINDRED_TRUST_PROXY": "127.0.0.1"}],
)
async def test_an_attackers_guesses_do_not_lock_the_owner_out(api: ApiClient) -> None:
    owner = await api.signup()

    async def login(password: str, address: str | None = None) -> int:
        headers = {"X-Forwarded-For": address} if address else {}
        r = await api.http.post(
            "/api/v1/auth/login", json={"email": owner.email, "password": password}, headers=headers
        )
        api.http.cookies.clear()
        return r.status_code

    # Successful sign-ins are not counted: the owner signs in as often as they like.
    assert [await login(PASSWORD) for _ in range(6)] == [200] * 6
    attacker = "203.0.113.7"
    assert [await login("guess one two three", attacker) for _ in range(3)] == [401, 401, 401]
    assert await login("guess number four", attacker) == 429
    assert await login(PASSWORD, attacker) == 429, "the attacker's address stays throttled, whatever it sends"
    assert await login(PASSWORD) == 200, "the owner, from their own address, still gets in"
    # Guessing from many addresses meets the per-email bound, which the owner's usual address never does.
    for n in range(2):
        assert await login("spread out guess", f"198.51.100.{n}") == 401
    assert await login(PASSWORD, "192.0.2.99") == 429, "a new address, past the per-email bound"
    assert await login(PASSWORD) == 200


async def test_two_hundred_sign_ins_a_minute_from_one_address_pass(api: ApiClient) -> None:
    """Contract: a per-address limit allows at least 200 sign-ins a minute from one address. Every attempt counts
    toward it before its body is read; most here are cheap (a malformed body, no password hashing), so the run fits
    well inside the minute, and the last ones are real sign-ins."""
    user = await api.signup()  # one sign-in already
    started = asyncio.get_running_loop().time()
    for n in range(190):
        r = await api.http.post("/api/v1/auth/login", json={"email": f"nobody{n}@example.org", "password": ""})
        assert r.status_code == 400, r.text
    real = await asyncio.gather(
        *(api.http.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}) for _ in range(10))
    )
    assert [r.status_code for r in real] == [200] * 10
    assert asyncio.get_running_loop().time() - started < 60


@pytest.mark.parametrize(
    "settings_env",
    [{"KINDRED_PUBLIC_URL": "https://kindred.example"}, {"KINDRED_SECURE_COOKIES": "1"}],
)
async def test_cookies_are_secure_behind_tls(api: ApiClient) -> None:
    user = await api.signup()
    login = await api.http.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    session = next(c for c in login.headers.get_list("set-cookie") if c.startswith("kindred_session="))
    assert "Secure" in session and "HttpOnly" in session
    page = await api.http.get("/signin")
    csrf = next(c for c in page.headers.get_list("set-cookie") if c.startswith("kindred_csrf="))
    assert "Secure" in csrf


async def test_cookies_are_not_marked_secure_on_plain_http_by_default(api: ApiClient) -> None:
    user = await api.signup()
    login = await api.http.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert all("Secure" not in c for c in login.headers.get_list("set-cookie"))


async def test_api_sign_in_with_a_cookie_session_ends_that_session(api: ApiClient) -> None:
    planted = await api.signup("Planted Session")
    victim = await api.signup("Victim")
    async with page_client(api, planted) as browser:
        r = await browser.post("/api/v1/auth/login", json={"email": victim.email, "password": PASSWORD})
        assert r.status_code == 200
        fresh = r.json()["token"]
        assert fresh != planted.token and r.cookies.get("kindred_session") == fresh
    assert (await planted.call("GET", "/api/v1/me")).status_code == 401, "the session brought in is ended"
    # A bearer client signing in again keeps its other tokens.
    again = await api.http.post(
        "/api/v1/auth/login", json={"email": victim.email, "password": PASSWORD}, headers=victim.headers
    )
    assert again.status_code == 200 and (await victim.call("GET", "/api/v1/me")).status_code == 200


async def test_forwarded_for_from_an_untrusted_peer_is_logged_once(
    api: ApiClient, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="kindred.limits")
    for _ in range(3):
        await api.http.post(
            "/api/v1/auth/login",
            json={"email": "someone@example.org", "password": "not it at all"},
            headers={"X-Forwarded-For": "203.0.113.50"},
        )
    warnings = [r for r in caplog.records if "X-Forwarded-For" in r.getMessage()]
    assert len(warnings) == 1 and "KINDRED_TRUST_PROXY" in warnings[0].getMessage()
