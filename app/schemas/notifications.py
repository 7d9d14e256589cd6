"""Notifications, Web Push subscriptions and preferences."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from app.schemas.common import Id


class ReadBody(msgspec.Struct):
    ids: Annotated[list[Id], Meta(max_length=500)] | None = None
    all_: bool = msgspec.field(default=False, name="all")


class PushKeys(msgspec.Struct):
    p256dh: Annotated[str, Meta(min_length=1, max_length=128)]
    auth: Annotated[str, Meta(min_length=1, max_length=64)]


class PushSubscriptionIn(msgspec.Struct):
    """A browser's PushSubscription, as `subscription.toJSON()` gives it."""

    endpoint: Annotated[str, Meta(min_length=8, max_length=2048)]
    keys: PushKeys
    expirationTime: float | None = None


class PushSubscriptionOut(msgspec.Struct):
    id: str


class PushRenewal(msgspec.Struct):
    """Extension: a browser's new subscription, proven by its old one (see POST /push/subscriptions/renew)."""

    old_endpoint: Annotated[str, Meta(min_length=8, max_length=2048)]
    old_auth: Annotated[str, Meta(min_length=1, max_length=64, description="The old subscription's keys.auth")]
    subscription: PushSubscriptionIn


class UnreadCount(msgspec.Struct):
    """Extension: GET /notifications/unread."""

    unread: int


class PushKey(msgspec.Struct):
    public_key: str


class ChannelPrefs(msgspec.Struct):
    in_app: bool = True
    browser: bool = True
    push: bool = True
    # Extension: by email (in the digest; drop-in reminders as a mail of their own). Always in answers; left out of
    # a PUT, the kind's default (docs/email.md).
    email: bool | msgspec.UnsetType = msgspec.UNSET


class QuietHours(msgspec.Struct):
    start: Annotated[str, Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM, local time")]
    end: Annotated[str, Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
Hour = Annotated[int, Meta(ge=0, le=23, description="A local hour, 0-23")]


class MailPrefs(msgspec.Struct):
    """Extension: the digests (docs/email.md), at hours in the account's `timezone`."""

    digest: Literal["off", "daily", "weekly"] = "daily"
    digest_weekday: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] = "monday"
    digest_hour: Hour = 17
    coach_digest: bool = True
    coach_digest_hour: Hour = 7


class Preferences(msgspec.Struct):
    """Extension: how an account wants its notifications."""

    timezone: Annotated[str, Meta(max_length=64)] = "UTC"
    quiet_hours: QuietHours | None = None
    kinds: dict[str, ChannelPrefs] = msgspec.field(default_factory=dict)
    muted_circles: list[Id] = msgspec.field(default_factory=list)
    # Extension: per circle (by id), the kinds that have their own channels there; a kind not listed follows `kinds`
    # ("as everywhere"). A kind listed here wins over the circle's mute. Always in answers; left out of a PUT, the
    # per-circle settings stay as they are.
    circles: Annotated[dict[Id, dict[str, ChannelPrefs]], Meta(max_length=500)] | msgspec.UnsetType = msgspec.UNSET
    # Extension: the digests. Always in answers; left out of a PUT, they stay as they are.
    mail: MailPrefs | msgspec.UnsetType = msgspec.UNSET
