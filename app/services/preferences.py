"""Notification preferences (per kind, per circle, quiet hours) and Web Push subscriptions."""

from __future__ import annotations

import hmac
import uuid
from typing import Any

import msgspec
from litestar.exceptions import ClientException

from app.errors import not_found
from app.push import DEFAULT_PUSH_ORIGINS, origin_allowed, valid_keys
from app.schemas import (
    ChannelPrefs,
    Preferences,
    PushRenewal,
    PushSubscriptionIn,
    PushSubscriptionOut,
    QuietHours,
)
from app.services import mailprefs
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


async def _my_circles(account_id: uuid.UUID) -> set[uuid.UUID]:
    return {
        r["circle"]
        for r in await Membership.select(Membership.circle).where(
            (Membership.account == account_id) & Membership.removed_at.is_null()
        )
    }


async def get(account_id: uuid.UUID) -> Preferences:
    account = (
        await Account.select(Account.timezone, Account.quiet_start, Account.quiet_end)
        .where(Account.id == account_id)
        .first()
    )
    assert account is not None
    rows = await NotificationPreference.select().where(NotificationPreference.account == account_id)
    # Circles the account has left keep their rows until the next save, but are not shown (nor could be saved back).
    mine = await _my_circles(account_id)
    kinds: dict[str, ChannelPrefs] = {kind: ChannelPrefs(**msgspec.structs.asdict(DEFAULTS[kind])) for kind in KINDS}
    muted = []
    circles: dict[str, dict[str, ChannelPrefs]] = {}
    for row in rows:
        channels = ChannelPrefs(
            in_app=row["in_app"], browser=row["browser"], push=row["push"], email=bool(row["email"])
        )
        if row["circle"] is None:
            if row["kind"] in kinds:
                kinds[row["kind"]] = channels
        elif row["circle"] in mine:
            if row["kind"] == MUTE:
                muted.append(str(row["circle"]))
            elif row["kind"] in kinds:
                circles.setdefault(str(row["circle"]), {})[row["kind"]] = channels
    quiet = None
    if account["quiet_start"] is not None and account["quiet_end"] is not None:
        quiet = QuietHours(start=_hhmm(account["quiet_start"]), end=_hhmm(account["quiet_end"]))
    return Preferences(
        timezone=account["timezone"],
        quiet_hours=quiet,
        kinds=kinds,
        muted_circles=sorted(muted),
        circles={c: dict(sorted(k.items())) for c, k in sorted(circles.items())},
        mail=await mailprefs.get(account_id),
    )


async def put(account_id: uuid.UUID, prefs: Preferences) -> Preferences:
    """Replace the preferences. `circles` absent (a client that predates it) leaves the per-circle settings alone."""
    if time_zone(prefs.timezone) is None:
        raise ClientException(
            f"unknown time zone {prefs.timezone!r}: use an IANA name of a place, like Europe/Berlin or America/Chicago"
        )
    overrides = prefs.circles if not isinstance(prefs.circles, msgspec.UnsetType) else None
    unknown = set(prefs.kinds).union(*(overrides or {}).values()) - set(KINDS)
    if unknown:
        raise ClientException(f"unknown notification kinds: {', '.join(sorted(unknown))}")
    mine = await _my_circles(account_id)
    muted = [queries.as_uuid(c) for c in prefs.muted_circles]
    if any(c is None or c not in mine for c in muted):
        raise ClientException("muted_circles may only name circles you are in")
    per_circle = {queries.as_uuid(c): kinds for c, kinds in (overrides or {}).items()}
    if any(c is None or c not in mine for c in per_circle):
        raise ClientException("circles may only name circles you are in")

    def row(circle: uuid.UUID | None, kind: str, ch: ChannelPrefs) -> NotificationPreference:
        return NotificationPreference(
            id=uuid.uuid4(),
            account=account_id,
            circle=circle,
            kind=kind,
            in_app=ch.in_app,
            browser=ch.browser,
            push=ch.push,
            email=ch.email if isinstance(ch.email, bool) else DEFAULTS[kind].email,
        )

    off = ChannelPrefs(in_app=False, browser=False, push=False, email=False)
    rows = [row(None, kind, ch) for kind, ch in prefs.kinds.items()]
    rows += [row(c, MUTE, off) for c in set(muted)]
    rows += [row(c, kind, ch) for c, kinds in per_circle.items() for kind, ch in kinds.items()]
    replaced = NotificationPreference.circle.is_null() | (NotificationPreference.kind == MUTE)
    if overrides is not None:
        replaced = replaced | NotificationPreference.circle.is_not_null()
    async with write_transaction():
        await Account.update(
            {
                Account.timezone: prefs.timezone,
                Account.quiet_start: _minutes(prefs.quiet_hours.start) if prefs.quiet_hours else None,
                Account.quiet_end: _minutes(prefs.quiet_hours.end) if prefs.quiet_hours else None,
            }
        ).where(Account.id == account_id)
        # Global per-kind rows and circle mutes are replaced as a whole, and per-circle kinds when they were sent.
        await NotificationPreference.delete().where((NotificationPreference.account == account_id) & replaced)
        if rows:
            await NotificationPreference.insert(*rows)
        if not isinstance(prefs.mail, msgspec.UnsetType):
            await mailprefs.put(account_id, prefs.mail)
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


async def renew(data: PushRenewal, allowed: tuple[str, ...]) -> PushSubscriptionOut:
    """Move a subscription to the browser's new endpoint and keys, keeping its account and sign-in. The caller is
    the service worker, with no session: knowing the old endpoint and its auth secret is the proof."""
    new = data.subscription
    if not origin_allowed(new.endpoint, allowed):
        raise ClientException("that push service is not one this server sends to")
    if not valid_keys(new.keys.p256dh, new.keys.auth):
        raise ClientException("keys.p256dh must be a P-256 public key and keys.auth a 16-byte secret (base64url)")
    async with write_transaction():
        row = (
            await PushSubscription.select(PushSubscription.id, PushSubscription.auth)
            .where(PushSubscription.endpoint == data.old_endpoint)
            .first()
        )
        if row is None or not hmac.compare_digest(row["auth"].encode(), data.old_auth.encode()):
            raise not_found("push subscription")
        if new.endpoint != data.old_endpoint:
            # The new endpoint is this browser's now, whoever had it before.
            await PushSubscription.delete().where(PushSubscription.endpoint == new.endpoint)
        await PushSubscription.update(
            {
                PushSubscription.endpoint: new.endpoint,
                PushSubscription.p256dh: new.keys.p256dh,
                PushSubscription.auth: new.keys.auth,
            }
        ).where(PushSubscription.id == row["id"])
    return PushSubscriptionOut(id=str(row["id"]))


async def unsubscribe(account_id: uuid.UUID, subscription_id: str) -> None:
    sid = queries.as_uuid(subscription_id)
    removed = await PushSubscription.raw(
        "DELETE FROM push_subscription WHERE id = {} AND account = {} RETURNING id", sid or uuid.UUID(int=0), account_id
    )
    if not removed:
        raise not_found("push subscription")


def allowed_origins(settings: Any) -> tuple[str, ...]:
    return tuple(settings.push_allowed_origins or DEFAULT_PUSH_ORIGINS)
