"""Email preferences, one-click unsubscribe (RFC 8058) and drop-in reminders by email with their .ics, against a real
SMTP server in the test process (docs/email.md)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.services import dropins
from tests.client import ApiClient, Circle, make_circle, page_client
from tests.conftest import Server
from tests.smtp import MailCatcher, catcher, html_of, mail_settings, text_of

pytestmark = pytest.mark.anyio

UNSUBSCRIBE = re.compile(r"^<(https?://[^>]+/unsubscribe/([^>]+))>$")


@pytest.fixture
def smtp() -> Iterator[MailCatcher]:
    yield from catcher()


@pytest.fixture
def settings_env(smtp: MailCatcher) -> dict[str, str]:
    return mail_settings(smtp)


def soon(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


async def email_on(user: Any, kind: str, on: bool = True) -> dict[str, Any]:
    prefs = await user.ok("GET", "/api/v1/notifications/preferences")
    prefs["kinds"][kind]["email"] = on
    return await user.ok("PUT", "/api/v1/notifications/preferences", prefs)  # type: ignore[no-any-return]


async def reminder_mail(server: Server, c: Circle, smtp: MailCatcher) -> Any:
    """A drop-in ten minutes away, the reminder job run on two "instances" at once; the first member wants it by
    mail, the second does not. Returns the one mail."""
    await email_on(c.members[0], "dropin.reminder")
    dropin = await c.coach.ok(
        "POST",
        f"/api/v1/circles/{c.id}/dropins",
        {"title": "Thursday drop-in", "starts_at": soon(8), "duration_minutes": 30, "agenda": "Bring one no."},
    )
    live, settings = server.app.state["live"], server.settings
    await asyncio.gather(dropins.send_reminders(live, settings), dropins.send_reminders(live, settings))
    await dropins.send_reminders(live, settings)  # a later run: already claimed
    [message] = await smtp.wait_for(1)
    return message, dropin


async def test_preferences_carry_an_email_column_and_the_digest_settings(api: ApiClient) -> None:
    user = await api.signup()
    prefs = await user.ok("GET", "/api/v1/notifications/preferences")
    # Defaults: what someone did about you reaches the digest; drop-in reminders by mail are opt-in.
    assert prefs["kinds"]["question"]["email"] is True and prefs["kinds"]["reply"]["email"] is True
    assert prefs["kinds"]["like"]["email"] is False and prefs["kinds"]["dropin.reminder"]["email"] is False
    assert prefs["mail"] == {
        "digest": "daily",
        "digest_weekday": "monday",
        "digest_hour": 17,
        "coach_digest": True,
        "coach_digest_hour": 7,
    }
    prefs["mail"] = {**prefs["mail"], "digest": "weekly", "digest_weekday": "friday", "digest_hour": 8}
    prefs["kinds"]["reply"]["email"] = False
    saved = await user.ok("PUT", "/api/v1/notifications/preferences", prefs)
    assert saved["mail"]["digest"] == "weekly" and saved["mail"]["digest_weekday"] == "friday"
    assert saved["kinds"]["reply"]["email"] is False
    # An older client leaves email out: the kind's default; mail left out stays as it is.
    del prefs["mail"]
    for kind in prefs["kinds"].values():
        del kind["email"]
    again = await user.ok("PUT", "/api/v1/notifications/preferences", prefs)
    assert again["kinds"]["reply"]["email"] is True and again["mail"]["digest_hour"] == 8
    bad = await user.call(
        "PUT", "/api/v1/notifications/preferences", {**prefs, "mail": {"digest": "hourly", "digest_hour": 8}}
    )
    assert bad.status_code == 400 and "mail.digest" in bad.text
    bad = await user.call("PUT", "/api/v1/notifications/preferences", {**prefs, "mail": {"digest_hour": 24}})
    assert bad.status_code == 400 and "digest_hour" in bad.text


async def test_the_settings_page_saves_the_email_column_and_the_digest(api: ApiClient) -> None:
    user = await api.signup()
    async with page_client(api, user) as page:
        shown = await page.get("/settings/notifications")
        assert shown.status_code == 200
        assert 'name="dropin.reminder.email"' in shown.text and 'name="digest_hour"' in shown.text
        form = {"timezone": "Europe/Berlin", "digest": "weekly", "digest_weekday": "sunday", "digest_hour": "9"}
        form["dropin.reminder.email"] = "on"
        form["question.in_app"] = "on"
        saved = await page.post("/settings/notifications", data=form)
        assert saved.status_code == 200, saved.text
        bad = await page.post("/settings/notifications", data={**form, "digest_hour": "25"})
        assert bad.status_code == 400 and "Digests" in bad.text
    prefs = await user.ok("GET", "/api/v1/notifications/preferences")
    assert prefs["kinds"]["dropin.reminder"]["email"] is True and prefs["kinds"]["reply"]["email"] is False
    assert prefs["mail"]["digest"] == "weekly" and prefs["mail"]["digest_weekday"] == "sunday"
    assert prefs["mail"]["digest_hour"] == 9 and prefs["timezone"] == "Europe/Berlin"


async def test_a_reminder_mail_comes_once_with_its_ics_and_a_one_click_unsubscribe(
    api: ApiClient, smtp: MailCatcher, server: Server
) -> None:
    c = await make_circle(api, members=2)
    message, dropin = await reminder_mail(server, c, smtp)
    assert message["To"] == c.members[0].email
    assert [m["To"] for m in smtp.messages] == [c.members[0].email]  # the second member did not want it
    # multipart/mixed: the alternative (text, then HTML), then the calendar file.
    assert message.get_content_type() == "multipart/mixed"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["multipart/alternative", "text/calendar"]
    calendar = parts[1]
    assert calendar.get_filename() == "kindred-thursday-drop-in.ics"
    body = str(calendar.get_content())
    assert "BEGIN:VEVENT" in body and f"http://127.0.0.1:9/rooms/{dropin['room_id']}" in body
    assert "Thursday drop-in" in text_of(message) and "Bring one no." in html_of(message)
    # The reminder is still a notification for everyone, as before.
    for member in c.members:
        assert [n["kind"] for n in await member.ok("GET", "/api/v1/notifications")] == ["dropin.reminder"]

    # RFC 8058: List-Unsubscribe with an https/http URI, and the one-click POST body.
    found = UNSUBSCRIBE.match(message["List-Unsubscribe"].strip())  # a long header may be folded after its colon
    assert found, message["List-Unsubscribe"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = found.group(2)
    assert c.members[0].id not in token and c.members[0].email not in token  # the link names no account
    assert token in text_of(message) and token in html_of(message)
    member = c.members[0]
    async with httpx.AsyncClient(base_url=api.base_url) as stranger:  # no cookie, no CSRF token: a mail client
        # A GET (a scanner following the link) changes nothing.
        page = await stranger.get(f"/unsubscribe/{token}")
        assert page.status_code == 200 and "drop-in reminders by email" in page.text
        assert member.email not in page.text
        assert (await member.ok("GET", "/api/v1/notifications/preferences"))["kinds"]["dropin.reminder"]["email"]
        # A POST without the one-click body changes nothing either; a bad token is a 404.
        assert (await stranger.post(f"/unsubscribe/{token}", data={})).status_code == 400
        bad = await stranger.post(f"/unsubscribe/x{token}", data={"List-Unsubscribe": "One-Click"})
        assert bad.status_code == 404
        assert (await stranger.get("/unsubscribe/nothing.digest")).status_code == 404
        assert (await member.ok("GET", "/api/v1/notifications/preferences"))["kinds"]["dropin.reminder"]["email"]
        # The one-click POST turns that kind off at once, and only that kind.
        done = await stranger.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
        assert (
            done.status_code == 200 and "drop-in reminders by email will not come to this address any more" in done.text
        )
    prefs = await member.ok("GET", "/api/v1/notifications/preferences")
    assert prefs["kinds"]["dropin.reminder"]["email"] is False
    assert prefs["kinds"]["question"]["email"] is True and prefs["mail"]["digest"] == "daily"
    # The next drop-in's reminder mails nobody; the control is its notification, which still arrives.
    await c.coach.ok(
        "POST",
        f"/api/v1/circles/{c.id}/dropins",
        {"title": "Friday drop-in", "starts_at": soon(9), "duration_minutes": 30},
    )
    await dropins.send_reminders(server.app.state["live"], server.settings)
    notes = await member.ok("GET", "/api/v1/notifications")
    assert [n["kind"] for n in notes] == ["dropin.reminder", "dropin.reminder"]
    assert len(smtp.messages) == 1
    assert (await server.app.state["mailer"].send_due()) == 0  # nothing queued behind it


async def test_transactional_mail_carries_no_unsubscribe(api: ApiClient, smtp: MailCatcher) -> None:
    user = await api.signup()
    await api.http.post("/api/v1/auth/reset", json={"email": user.email})
    [message] = await smtp.wait_for(1)
    assert message["List-Unsubscribe"] is None and message["List-Unsubscribe-Post"] is None
