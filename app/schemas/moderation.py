"""Moderation: reasons, pauses, reports, the audit log, former members."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from app.schemas.common import Reason
from realtime.events import Membership as PublicMembership
from realtime.events import Post


class ReasonBody(msgspec.Struct):
    reason: Reason | None = None


class MuteBody(msgspec.Struct):
    minutes: Annotated[int, Meta(ge=1, le=60 * 24 * 30, description="How long to pause posting, up to 30 days")]
    reason: Reason | None = None


class ResolveBody(msgspec.Struct):
    action: Literal["dismiss", "hide", "remove"]
    reason: Reason | None = None


Resolution = Literal["dismiss", "hide", "remove"]


class ReportOut(msgspec.Struct, kw_only=True):
    id: str
    post: Post
    reporter: PublicMembership
    reason: str
    created_at: datetime
    resolved_at: datetime | None
    resolution: str | None


class AuditEntry(msgspec.Struct, kw_only=True):
    id: str
    action: str
    actor: PublicMembership
    post_id: str | None
    member: PublicMembership | None
    reason: str | None
    created_at: datetime


class MuteOut(msgspec.Struct):
    membership_id: str
    muted_until: datetime | None
    reason: str | None


class FormerMember(msgspec.Struct, kw_only=True):
    """A membership that has ended, as the coach sees it (by alias only)."""

    membership_id: str
    alias: str
    ended_by: Literal["left", "removed"]
    ended_at: datetime
    rejoin_blocked: bool
