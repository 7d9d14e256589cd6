"""A person's data export (GET /me/export)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from app.schemas.notifications import Preferences
from realtime.events import SharedFrom


class ExportPost(msgspec.Struct):
    id: str
    circle: str
    room: str
    kind: str
    body: str
    created_at: datetime
    edited_at: datetime | None
    deleted: bool
    parent_id: str | None
    # Set when the post is a share: where it came from (as peers saw it) and the note.
    shared_from: SharedFrom | None = None
    pinned: bool = False


class ExportMembership(msgspec.Struct):
    circle_id: str
    circle: str
    alias: str
    role: str
    joined_at: datetime
    left_at: datetime | None
    ended_by: str | None = None
    coach_sees_identity: bool = False
    muted_until: datetime | None = None


class ExportReport(msgspec.Struct):
    """A report this account filed: the post it was about (by id) and its own words."""

    post_id: str
    circle: str
    reason: str
    created_at: datetime
    resolution: str | None


class ExportPin(msgspec.Struct):
    """A post this account pinned as a key insight (as a coach)."""

    post_id: str
    circle: str
    note: str | None
    pinned_at: datetime


class ExportTag(msgspec.Struct):
    """A tag this account made (`by_me`) or received: the post, and the other member by alias."""

    post_id: str
    circle: str
    by_me: bool
    other: str
    created_at: datetime


class ExportDropin(msgspec.Struct):
    dropin_id: str
    circle: str
    title: str
    starts_at: datetime
    joined_at: datetime


class ExportPush(msgspec.Struct):
    endpoint: str
    created_at: datetime


class ExportNotification(msgspec.Struct):
    id: str
    kind: str
    circle_id: str | None
    post_id: str | None
    actor: str | None
    text: str
    created_at: datetime
    read: bool


class Export(msgspec.Struct):
    """Everything Kindred holds about one account, in one document."""

    exported_at: datetime
    account: dict[str, Any]
    memberships: list[ExportMembership]
    posts: list[ExportPost]
    likes: list[str]
    notifications: list[ExportNotification]
    reports: list[ExportReport]
    pins: list[ExportPin]
    tags: list[ExportTag]
    dropins: list[ExportDropin]
    push_subscriptions: list[ExportPush]
    notification_preferences: Preferences
