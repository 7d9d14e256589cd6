"""Mail settings beyond the per-kind email column: digests, unsubscribe links, visits (docs/email.md).

One `mail_setting` row per account, made on first need (saving preferences, the first unsubscribable mail, the first
page visit); without it the defaults hold. Every unsubscribable mail carries `<base>/unsubscribe/<key>.<kind>`: the
key is random per account, so the link names no account, works without signing in, and is good for that account's
mail only.
"""

from __future__ import annotations

import secrets
import time
import uuid
from datetime import datetime
from typing import Any

import msgspec

from app.schemas.notifications import WEEKDAYS, MailPrefs
from db.queries import now
from db.tables import MailSetting, NotificationPreference

# The mail kinds a link can turn off: the member's digest, the coach's digest, drop-in reminders by mail.
UNSUBSCRIBABLE = {
    "digest": "the digest",
    "coach_digest": "the coach's digest",
    "dropin.reminder": "drop-in reminders by email",
}
# Visits are recorded to this precision: a page view writes at most once per account and instance in this time.
VISIT_PRECISION = 300.0
_recent_visits: dict[uuid.UUID, float] = {}

_ENSURE = (
    "INSERT INTO mail_setting (id, account, unsubscribe_key, digest, digest_weekday, digest_hour, coach_digest, "
    "coach_digest_hour) VALUES ({}, {}, {}, 'daily', 0, 17, {}, 7) ON CONFLICT (account) DO NOTHING"
)


async def ensure(account_id: uuid.UUID) -> dict[str, Any]:
    """The account's row, made with the defaults if it has none yet (two callers at once: one insert wins)."""
    row = await MailSetting.select().where(MailSetting.account == account_id).first()
    if row is None:
        await MailSetting.raw(_ENSURE, uuid.uuid4(), account_id, secrets.token_urlsafe(24), True)
        row = await MailSetting.select().where(MailSetting.account == account_id).first()
    assert row is not None
    return row


def prefs_of(row: dict[str, Any] | None) -> MailPrefs:
    if row is None:
        return MailPrefs()
    return MailPrefs(
        digest=row["digest"],
        digest_weekday=WEEKDAYS[int(row["digest_weekday"]) % 7],  # type: ignore[arg-type]
        digest_hour=int(row["digest_hour"]),
        coach_digest=bool(row["coach_digest"]),
        coach_digest_hour=int(row["coach_digest_hour"]),
    )


async def get(account_id: uuid.UUID) -> MailPrefs:
    return prefs_of(await MailSetting.select().where(MailSetting.account == account_id).first())


async def put(account_id: uuid.UUID, prefs: MailPrefs) -> None:
    """Inside the caller's write transaction."""
    await ensure(account_id)
    await MailSetting.update(
        {
            MailSetting.digest: prefs.digest,
            MailSetting.digest_weekday: WEEKDAYS.index(prefs.digest_weekday),
            MailSetting.digest_hour: prefs.digest_hour,
            MailSetting.coach_digest: prefs.coach_digest,
            MailSetting.coach_digest_hour: prefs.coach_digest_hour,
        }
    ).where(MailSetting.account == account_id)


async def unsubscribe_url(account_id: uuid.UUID, kind: str, base: str) -> str:
    """The one-click link for this account's mail of this kind (inside the transaction that writes the mail)."""
    assert kind in UNSUBSCRIBABLE, kind
    row = await ensure(account_id)
    return f"{base}/unsubscribe/{row['unsubscribe_key']}.{kind}"


async def footer(account_id: uuid.UUID, kind: str, base: str) -> dict[str, str]:
    """What the templates' footer needs (mail/base.html, mail/footer.txt): the link, what it stops, the settings."""
    return {
        "unsubscribe": await unsubscribe_url(account_id, kind, base),
        "unsubscribe_label": UNSUBSCRIBABLE[kind],
        "settings_link": f"{base}/settings/notifications",
    }


class Unsubscribe(msgspec.Struct, frozen=True):
    account_id: uuid.UUID
    kind: str
    label: str


async def resolve(token: str) -> Unsubscribe | None:
    """What an unsubscribe link's token stands for, or None for a token that is not one of ours."""
    key, _, kind = token.partition(".")
    if kind not in UNSUBSCRIBABLE or not key or len(key) > 64:
        return None
    row = await MailSetting.select(MailSetting.account).where(MailSetting.unsubscribe_key == key).first()
    if row is None:
        return None
    return Unsubscribe(account_id=row["account"], kind=kind, label=UNSUBSCRIBABLE[kind])


async def turn_off(found: Unsubscribe) -> None:
    """Stop that kind of mail for that account, now (inside the caller's write transaction)."""
    if found.kind == "digest":
        await MailSetting.update({MailSetting.digest: "off"}).where(MailSetting.account == found.account_id)
    elif found.kind == "coach_digest":
        await MailSetting.update({MailSetting.coach_digest: False}).where(MailSetting.account == found.account_id)
    else:
        await _email_off(found.account_id, found.kind)


async def _email_off(account_id: uuid.UUID, kind: str) -> None:
    """The kind's email column off everywhere: its own rows (all circles) are switched off, and a global row is
    made if there was none (the default stands in for a missing one)."""
    from app.services.notifications import DEFAULTS

    mine = NotificationPreference.account == account_id
    await NotificationPreference.update({NotificationPreference.email: False}).where(
        mine & (NotificationPreference.kind == kind)
    )
    if not await NotificationPreference.exists().where(
        mine & (NotificationPreference.kind == kind) & NotificationPreference.circle.is_null()
    ):
        d = DEFAULTS[kind]
        await NotificationPreference.insert(
            NotificationPreference(
                id=uuid.uuid4(),
                account=account_id,
                circle=None,
                kind=kind,
                in_app=d.in_app,
                browser=d.browser,
                push=d.push,
                email=False,
            )
        )


_VISIT = (
    "INSERT INTO mail_setting (id, account, unsubscribe_key, digest, digest_weekday, digest_hour, coach_digest, "
    "coach_digest_hour, visited_at) VALUES ({}, {}, {}, 'daily', 0, 17, {}, 7, {}) "
    "ON CONFLICT (account) DO UPDATE SET visited_at = excluded.visited_at"
)


async def visited(account_id: uuid.UUID, at: datetime | None = None) -> None:
    """The account opened a page: a digest is only for those who have not been back since the last one. Written at
    most once per VISIT_PRECISION per account on this instance."""
    clock = time.monotonic()
    last = _recent_visits.get(account_id)
    if at is None and last is not None and clock - last < VISIT_PRECISION:
        return
    _recent_visits[account_id] = clock
    if len(_recent_visits) > 50_000:
        _recent_visits.clear()
    await MailSetting.raw(_VISIT, uuid.uuid4(), account_id, secrets.token_urlsafe(24), True, at or now())
