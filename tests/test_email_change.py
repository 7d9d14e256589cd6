"""Changing the sign-in address (docs/email.md), against a real SMTP server in the test process: the link goes to
the new address, a notice to the old one, the address changes only when the link is used, once; a taken address
gets the same answer; bad input is a clear 4xx; the per-account and per-address limits."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from app.services.email_change import masked
from db.queries import now
from db.tables import EmailChange
from tests.client import PASSWORD, ApiClient
from tests.smtp import MailCatcher, html_of, text_of
from tests.test_email import settings_env, settled, smtp  # noqa: F401 (fixtures)

pytestmark = pytest.mark.anyio

LINK = re.compile(r"https?://\S+/email/confirm/([A-Za-z0-9_-]+)")


def new_address() -> str:
    import uuid

    return f"moved-{uuid.uuid4().hex[:8]}@example.net"


def confirm_token(smtp: MailCatcher, address: str) -> str:  # noqa: F811
    found = LINK.search(text_of(smtp.to(address)[-1]))
    assert found, text_of(smtp.to(address)[-1])
    return found.group(1)


async def signs_in(api: ApiClient, email: str) -> int:
    r = await api.http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    api.http.cookies.clear()
    return r.status_code


async def test_the_address_changes_only_when_the_link_mailed_to_it_is_used(
    api: ApiClient,
    smtp: MailCatcher,  # noqa: F811
) -> None:
    user = await api.signup()
    old, new = user.email, new_address()
    r = await user.call("POST", "/api/v1/me/email", {"email": new.upper(), "password": PASSWORD})
    assert r.status_code == 202, r.text
    await smtp.wait_for(2)
    [to_new] = smtp.to(new)
    [notice] = smtp.to(old)
    assert to_new["Subject"] == "Confirm your new Kindred sign-in address"
    assert "http://127.0.0.1:9/email/confirm/" in text_of(to_new) and "/email/confirm/" in html_of(to_new)
    token = confirm_token(smtp, new)
    # The old address is told, without the link or its secret.
    assert notice["Subject"] == "Your Kindred sign-in address is about to change"
    for part in (text_of(notice), html_of(notice)):
        assert token not in part and "/email/confirm/" not in part and "m…@example.net" in part

    # Nothing has changed yet.
    assert (await user.ok("GET", "/api/v1/me"))["email"] == old
    assert await signs_in(api, new) == 401

    done = await api.http.post("/api/v1/me/email/confirm", json={"token": token})
    assert done.status_code == 200, done.text
    assert done.json() == {"id": user.id, "email": new, "name": user.name}
    assert (await user.ok("GET", "/api/v1/me"))["email"] == new
    assert await signs_in(api, new) == 200
    assert await signs_in(api, old) == 401
    # The old address hears that it happened; the link works once.
    await smtp.wait_for(3)
    assert [m["Subject"] for m in smtp.to(old)][-1] == "Your Kindred sign-in address has changed"
    again = await api.http.post("/api/v1/me/email/confirm", json={"token": token})
    assert again.status_code == 400 and "used, expired or unknown" in again.json()["detail"]
    # The link's secret is not kept in the queue once the server has it.
    rows = await settled(3)
    confirm_row = next(r for r in rows if r["kind"] == "email_confirm")
    assert confirm_row["state"] == "sent" and token not in confirm_row["body_text"]


async def test_a_taken_address_gets_the_same_answer_and_no_link(
    api: ApiClient,
    smtp: MailCatcher,  # noqa: F811
) -> None:
    user, other = await api.signup(), await api.signup()
    fresh = new_address()
    taken = await user.call("POST", "/api/v1/me/email", {"email": other.email, "password": PASSWORD})
    free = await user.call("POST", "/api/v1/me/email", {"email": fresh, "password": PASSWORD})
    assert taken.status_code == free.status_code == 202
    assert taken.content == free.content and taken.headers.get("content-type") == free.headers.get("content-type")
    await smtp.wait_for(4)
    # The requester's own inbox gets the same notice for both.
    notices = smtp.to(user.email)
    assert [m["Subject"] for m in notices] == ["Your Kindred sign-in address is about to change"] * 2
    bodies = {text_of(m).replace(masked(other.email), "<new>").replace(masked(fresh), "<new>") for m in notices}
    assert len(bodies) == 1 and "<new>" in bodies.pop()
    # The taken address's owner is told, with no link; nothing changed for either account.
    [heads_up] = smtp.to(other.email)
    assert heads_up["Subject"] == "This address already has a Kindred account"
    assert LINK.search(text_of(heads_up)) is None and user.email not in text_of(heads_up)
    assert await signs_in(api, other.email) == 200
    assert (await user.ok("GET", "/api/v1/me"))["email"] == user.email


async def test_bad_input_expired_links_and_the_limits(
    api: ApiClient,
    smtp: MailCatcher,  # noqa: F811
) -> None:
    user = await api.signup()
    cases = [
        ({"email": "not-an-address", "password": PASSWORD}, 400, "email"),
        ({"email": user.email.upper(), "password": PASSWORD}, 400, "already your address"),
        ({"email": new_address(), "password": "wrong password here"}, 403, "current password"),
        ({"email": new_address()}, 400, "password"),
        ({"email": "x" * 400 + "@example.org", "password": PASSWORD}, 400, "email"),
    ]
    for body, status, words in cases:
        r = await user.call("POST", "/api/v1/me/email", body)
        assert r.status_code == status and words in r.text, (body, r.text)
    assert (
        await api.http.post("/api/v1/me/email", json={"email": new_address(), "password": PASSWORD})
    ).status_code == 401
    for token in ("", "x" * 200, "not-a-token"):
        r = await api.http.post("/api/v1/me/email/confirm", json={"token": token})
        assert r.status_code == 400, (token, r.text)

    # An expired link: refused by the API and by its page.
    target = new_address()
    await user.ok("POST", "/api/v1/me/email", {"email": target, "password": PASSWORD}, status=202)
    await smtp.wait_for(2)
    token = confirm_token(smtp, target)
    await EmailChange.update({EmailChange.expires_at: now() - timedelta(minutes=1)}).where(
        EmailChange.new_email == target
    )
    assert (await api.http.post("/api/v1/me/email/confirm", json={"token": token})).status_code == 400
    assert (await api.http.get(f"/email/confirm/{token}")).status_code == 400
    assert (await user.ok("GET", "/api/v1/me"))["email"] == user.email

    # Five requests an hour per account (one above, four here), then 429; three mails an hour to one new address.
    again = new_address()
    for _ in range(4):
        await user.ok("POST", "/api/v1/me/email", {"email": again, "password": PASSWORD}, status=202)
    limited = await user.call("POST", "/api/v1/me/email", {"email": again, "password": PASSWORD})
    assert limited.status_code == 429 and "Retry-After" in limited.headers
    await smtp.wait_for(2 + 4 + 3)
    assert len(smtp.to(again)) == 3 and len(smtp.to(user.email)) == 5


async def test_an_address_taken_before_the_link_is_used_is_refused_and_deleting_the_account_drops_the_change(
    api: ApiClient,
    smtp: MailCatcher,  # noqa: F811
) -> None:
    user = await api.signup()
    target = new_address()
    await user.ok("POST", "/api/v1/me/email", {"email": target, "password": PASSWORD}, status=202)
    await smtp.wait_for(2)
    token = confirm_token(smtp, target)
    # Someone signs up with the address before the link is used: 409, and nothing changed.
    r = await api.http.post("/api/v1/accounts", json={"email": target, "password": PASSWORD, "name": "Quick"})
    assert r.status_code == 201
    late = await api.http.post("/api/v1/me/email/confirm", json={"token": token})
    assert late.status_code == 409 and "another account" in late.json()["detail"]
    assert (await user.ok("GET", "/api/v1/me"))["email"] == user.email

    # A pending change is personal data: deleting the account erases it with the rest.
    other = new_address()
    await user.ok("POST", "/api/v1/me/email", {"email": other, "password": PASSWORD}, status=202)
    await smtp.wait_for(4)
    assert await EmailChange.exists().where(EmailChange.new_email == other)
    await user.ok("DELETE", "/api/v1/me", {"password": PASSWORD})
    assert not await EmailChange.exists().where(EmailChange.account == user.id)
    gone = await api.http.post("/api/v1/me/email/confirm", json={"token": confirm_token(smtp, other)})
    assert gone.status_code == 400
