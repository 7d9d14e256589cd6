"""Mail over SMTP (docs/email.md) against a real SMTP server in the test process: delivery, retries, the log when no
server is configured, and password reset through the API."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from app import mail
from app.settings import ConfigError, load_settings, parse_smtp_url
from tests.client import DEADLINE, PASSWORD, ApiClient
from tests.conftest import Server
from tests.smtp import MailCatcher, catcher, html_of, mail_settings, text_of

pytestmark = pytest.mark.anyio

LINK = re.compile(r"https?://\S+/reset/([A-Za-z0-9_-]+)")
NEW_PASSWORD = "a brand new passphrase 77"


@pytest.fixture
def smtp() -> Iterator[MailCatcher]:
    yield from catcher()


@pytest.fixture
def settings_env(smtp: MailCatcher) -> dict[str, str]:
    return mail_settings(smtp)


async def settled(count: int = 1) -> list[dict[str, Any]]:
    """The newest `count` queue rows once none is queued any more: the server's 250 arrives a moment before the
    sender records it."""
    async with asyncio.timeout(DEADLINE):
        while True:
            rows = await mail.recent(count)
            if all(r["state"] != "queued" for r in rows):
                return rows
            await asyncio.sleep(0.05)


def reset_token(smtp: MailCatcher, address: str) -> str:
    found = LINK.search(text_of(smtp.to(address)[-1]))
    assert found, text_of(smtp.to(address)[-1])
    return found.group(1)


async def test_reset_mail_arrives_multipart_and_its_link_sets_a_new_password(
    api: ApiClient, smtp: MailCatcher, server: Server
) -> None:
    user = await api.signup()
    other = await api.signup()
    r = await api.http.post("/api/v1/auth/reset", json={"email": user.email.upper()})
    assert r.status_code == 202
    [message] = await smtp.wait_for(1)
    assert message["To"] == user.email
    assert message["From"] == "Kindred <hello@kindred.test>"
    assert message.is_multipart()
    assert "http://127.0.0.1:9/reset/" in text_of(message)
    assert "http://127.0.0.1:9/reset/" in html_of(message)
    token = reset_token(smtp, user.email)
    socket = await user.ws()

    # The password rules apply, and a refused password leaves the link usable.
    r = await api.http.post("/api/v1/auth/reset/confirm", json={"token": token, "password": "short"})
    assert r.status_code == 400 and "10" in r.json()["detail"]
    r = await api.http.post("/api/v1/auth/reset/confirm", json={"token": token, "password": NEW_PASSWORD})
    assert r.status_code == 204, r.text
    # Every sign-in ends, the socket closes; the new password signs in, the old one no longer does.
    assert (await user.call("GET", "/api/v1/me")).status_code == 401
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(socket.conn.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    ok = await api.http.post("/api/v1/auth/login", json={"email": user.email, "password": NEW_PASSWORD})
    assert ok.status_code == 200
    api.http.cookies.clear()
    old = await api.http.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert old.status_code == 401
    api.http.cookies.clear()
    # Single use; the other account is untouched.
    again = await api.http.post("/api/v1/auth/reset/confirm", json={"token": token, "password": NEW_PASSWORD + "x"})
    assert again.status_code == 400
    assert (await other.call("GET", "/api/v1/me")).status_code == 200
    # The link's secret does not stay in the queue once the server has the mail.
    [row] = await settled()
    assert row["state"] == "sent" and token not in row["body_text"]


async def test_reset_answers_the_same_for_an_unknown_address_and_mails_nobody(
    api: ApiClient, smtp: MailCatcher
) -> None:
    user = await api.signup()
    unknown = await api.http.post("/api/v1/auth/reset", json={"email": "nobody-here@example.org"})
    known = await api.http.post("/api/v1/auth/reset", json={"email": user.email})
    assert unknown.status_code == known.status_code == 202
    assert unknown.content == known.content
    # The control: the known address's mail arrives; by then the unknown one has been handled (same queue, before it).
    await smtp.wait_for(1)
    assert [m["To"] for m in smtp.messages] == [user.email]
    bad = await api.http.post("/api/v1/auth/reset/confirm", json={"token": "not-a-token", "password": NEW_PASSWORD})
    assert bad.status_code == 400


async def test_a_newer_link_replaces_the_older_and_past_the_per_email_limit_no_more_mail(
    api: ApiClient, smtp: MailCatcher
) -> None:
    user = await api.signup()
    for _ in range(4):
        assert (await api.http.post("/api/v1/auth/reset", json={"email": user.email})).status_code == 202
    await smtp.wait_for(3)
    # Three mails an hour per address (KINDRED_RESETS_PER_EMAIL); the fourth answer was the same 202 and sent nothing.
    control = await api.signup()
    await api.http.post("/api/v1/auth/reset", json={"email": control.email})
    await smtp.wait_for(4)
    assert len(smtp.to(user.email)) == 3
    tokens = [LINK.search(text_of(m)).group(1) for m in smtp.to(user.email)]  # type: ignore[union-attr]
    # Each new link replaces the unused one before it: exactly one of them still opens the form.
    opens = [(await api.http.get(f"/reset/{t}")).status_code for t in tokens]
    assert sorted(opens) == [200, 400, 400]
    live_token = tokens[opens.index(200)]
    r = await api.http.post("/api/v1/auth/reset/confirm", json={"token": live_token, "password": NEW_PASSWORD})
    assert r.status_code == 204


async def test_refused_mail_is_retried_until_the_server_takes_it(api: ApiClient, smtp: MailCatcher) -> None:
    smtp.refusals = ["451 4.3.0 try again later", "550 5.7.1 not now"]
    user = await api.signup()
    await api.http.post("/api/v1/auth/reset", json={"email": user.email})
    [message] = await smtp.wait_for(1)
    assert smtp.refused == 2
    assert message["To"] == user.email
    [row] = await settled()
    assert row["state"] == "sent" and row["attempts"] == 3


def test_smtp_urls() -> None:
    plain = parse_smtp_url("smtp://mail.example.org:2525")
    assert (plain.host, plain.port, plain.use_tls, plain.start_tls, plain.username) == (
        "mail.example.org",
        2525,
        False,
        False,
        None,
    )
    tls = parse_smtp_url("smtp://me%40x.org:p%3Ass@mail.example.org?starttls=true")
    assert (tls.port, tls.start_tls, tls.username, tls.password) == (587, True, "me@x.org", "p:ss")
    implicit = parse_smtp_url("smtps://mail.example.org")
    assert (implicit.port, implicit.use_tls, implicit.start_tls) == (465, True, False)
    with pytest.raises(ConfigError, match="smtp://"):
        parse_smtp_url("http://mail.example.org")
    with pytest.raises(ConfigError, match="KINDRED_MAIL_FROM"):
        load_settings({"KINDRED_SECRET": "s" * 40, "KINDRED_MAIL_FROM": "nobody"})


def test_links_come_from_the_public_url_else_the_allowed_host() -> None:
    base = {"KINDRED_SECRET": "s" * 40, "KINDRED_DATA_DIR": "/tmp/kindred-email-unit"}
    assert load_settings({**base, "KINDRED_PUBLIC_URL": "https://circles.example.org/"}).link_base == (
        "https://circles.example.org"
    )
    assert load_settings(
        {**base, "KINDRED_ALLOWED_HOSTS": "kindred.example.org", "KINDRED_PORT": "8000"}
    ).link_base == ("http://kindred.example.org:8000")


def test_backoff_doubles() -> None:
    assert [mail.backoff(n, 30).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert mail.backoff(40, 30).total_seconds() == 6 * 3600


async def test_two_senders_on_one_queue_send_each_mail_once(api: ApiClient, smtp: MailCatcher, server: Server) -> None:
    # A second sender beside the server's own, on the same database: both claim from one queue, as two instances do.
    other = mail.Mailer(server.settings)
    stop = asyncio.Event()
    task = asyncio.create_task(other.run(stop))
    try:
        users = [await api.signup() for _ in range(8)]
        await asyncio.gather(*(api.http.post("/api/v1/auth/reset", json={"email": u.email}) for u in users))
        await smtp.wait_for(len(users))
        await settled(len(users))
    finally:
        stop.set()
        await task
    assert sorted(m["To"] for m in smtp.messages) == sorted(u.email for u in users)
    assert other.stats["sent"] + server.app.state["mailer"].stats["sent"] == len(users)
