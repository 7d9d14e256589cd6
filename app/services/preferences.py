"""Notification preferences (per kind, per circle, quiet hours) and Web Push subscriptions."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar.exceptions import ClientException

from app.errors import not_found
from app.push import DEFAULT_PUSH_ORIGINS, origin_allowed, valid_keys
from app.schemas import ChannelPrefs, Preferences, PushSubscriptionIn, PushSubscriptionOut, QuietHours
from app.services.common import is_unique_violation
from app.services.notifications import DEFAULTS, KINDS, time_zone
from db import queries
from db.engine import write_transaction
from db.queries import now
from db.tables import Account, Membership, NotificationPreference, PushSubscription

MUTE = "*"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


async def get(account_id: uuid.UUID) -> Preferences:
    account = (
        await Account.select(Account.timezone, Account.quiet_start, Account.quiet_end)
        .where(Account.id == account_id)
        .first()
    )
    assert account is not None
    rows = await NotificationPreference.select().where(NotificationPreference.account == account_id)
    kinds = {kind: ChannelPrefs(**msgspec.structs.asdict(DEFAULTS[kind])) for kind in KINDS}
    muted = []
    for row in rows:
        if row["circle"] is None and row["kind"] in kinds:
            kinds[row["kind"]] = ChannelPrefs(in_app=row["in_app"], browser=row["browser"], push=row["push"])
        elif row["circle"] is not None and row["kind"] == MUTE:
            muted.append(str(row["circle"]))
    quiet = None
    if account["quiet_start"] is not None and account["quiet_end"] is not None:
        quiet = QuietHours(start=_hhmm(account["quiet_start"]), end=_hhmm(account["quiet_end"]))
    return Preferences(timezone=account["timezone"], quiet_hours=quiet, kinds=kinds, muted_circles=sorted(muted))


async def put(account_id: uuid.UUID, prefs: Preferences) -> Preferences:
    if time_zone(prefs.timezone) is None:
        raise ClientException(
            f"unknown time zone {prefs.timezone!r}: use an IANA name of a place, like Europe/Berlin or America/Chicago"
        )
    unknown = set(prefs.kinds) - set(KINDS)
    if unknown:
        raise ClientException(f"unknown notification kinds: {', '.join(sorted(unknown))}")
    circles = [queries.as_uuid(c) for c in prefs.muted_circles]
    mine = {
        r["circle"]
        for r in await Membership.select(Membership.circle).where(
            (Membership.account == account_id) & Membership.removed_at.is_null()
        )
    }
    if any(c is None or c not in mine for c in circles):
        raise ClientException("muted_circles may only name circles you are in")
    rows: list[NotificationPreference] = [
        NotificationPreference(
            id=uuid.uuid4(),
            account=account_id,
            circle=None,
            kind=kind,
            in_app=ch.in_app,
            browser=ch.browser,
            push=ch.push,
        )
        for kind, ch in prefs.kinds.items()
    ]
    rows += [
        NotificationPreference(
            id=uuid.uuid4(), account=account_id, circle=c, kind=MUTE, in_app=False, browser=False, push=False
        )
        for c in set(circles)
    ]
    async with write_transaction():
        await Account.update(
            {
                Account.timezone: prefs.timezone,
                Account.quiet_start: _minutes(prefs.quiet_hours.start) if prefs.quiet_hours else None,
                Account.quiet_end: _minutes(prefs.quiet_hours.end) if prefs.quiet_hours else None,
            }
        ).where(Account.id == account_id)
        # Global per-kind rows and circle mutes are replaced as a whole; other per-circle rows are kept.
        await NotificationPreference.delete().where(
            (NotificationPreference.account == account_id)
            & (NotificationPreference.circle.is_null() | (NotificationPreference.kind == MUTE))
        )
        if rows:
            await NotificationPreference.insert(*rows)
    return await get(account_id)


async def subscribe(
    account_id: uuid.UUID, token_id: uuid.UUID, data: PushSubscriptionIn, allowed: tuple[str, ...]
) -> PushSubscriptionOut:
    """Register a browser for pushes, for this sign-in: when the sign-in ends, so does the subscription. An endpoint
    is one browser's channel, so it belongs to one account only: whoever subscribed it last (a browser shared by two
    people, one signing in after the other, must not keep receiving the first one's notifications)."""
    if not origin_allowed(data.endpoint, allowed):
        raise ClientException("that push service is not one this server sends to")
    if not valid_keys(data.keys.p256dh, data.keys.auth):
        raise ClientException("keys.p256dh must be a P-256 public key and keys.auth a 16-byte secret (base64url)")
    try:
        async with write_transaction():
            existing = (
                await PushSubscription.select(PushSubscription.id, PushSubscription.account)
                .where(PushSubscription.endpoint == data.endpoint)
                .first()
            )
            if existing is not None and existing["account"] == account_id:
                await PushSubscription.update(
                    {
                        PushSubscription.p256dh: data.keys.p256dh,
                        PushSubscription.auth: data.keys.auth,
                        PushSubscription.token: token_id,
                    }
                ).where(PushSubscription.id == existing["id"])
                return PushSubscriptionOut(id=str(existing["id"]))
            if existing is not None:
                await PushSubscription.delete().where(PushSubscription.id == existing["id"])
            sub_id = uuid.uuid4()
            await PushSubscription.insert(
                PushSubscription(
                    id=sub_id,
                    account=account_id,
                    token=token_id,
                    endpoint=data.endpoint,
                    p256dh=data.keys.p256dh,
                    auth=data.keys.auth,
                    created_at=now(),
                )
            )
    except Exception as exc:
        if is_unique_violation(exc):  # the same browser subscribing twice at once: the other one won, go again
            return await subscribe(account_id, token_id, data, allowed)
        raise
    return PushSubscriptionOut(id=str(sub_id))


async def unsubscribe(account_id: uuid.UUID, subscription_id: str) -> None:
    sid = queries.as_uuid(subscription_id)
    removed = await PushSubscription.raw(
        "DELETE FROM push_subscription WHERE id = {} AND account = {} RETURNING id", sid or uuid.UUID(int=0), account_id
    )
    if not removed:
        raise not_found("push subscription")


def allowed_origins(settings: Any) -> tuple[str, ...]:
    return tuple(settings.push_allowed_origins or DEFAULT_PUSH_ORIGINS)
