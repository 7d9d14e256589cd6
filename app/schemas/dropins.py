"""Drop-ins: scheduling, the spotlight, summaries, what is live now."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from app.schemas.common import Id
from realtime.events import Dropin
from realtime.events import Membership as PublicMembership


class DropinCreate(msgspec.Struct):
    # Loose bounds for the wire (the service says precisely what fits, e.g. titles of at most 120 characters).
    title: Annotated[str, Meta(max_length=1000)]
    starts_at: datetime
    duration_minutes: Annotated[int, Meta(ge=0, le=1_000_000)]
    agenda: Annotated[str, Meta(max_length=4000)] = ""


class SummaryItem(msgspec.Struct):
    post_id: str
    alias: str
    excerpt: str


class Summary(msgspec.Struct):
    """What stays in the circle's history when a drop-in ends. Derived when read, not stored: a later pin shows up,
    a post the coach hides or the author deletes drops out, and an alias change leaves no old alias behind."""

    participants: list[str]
    insights: list[SummaryItem]
    questions: list[SummaryItem]
    experiments: list[SummaryItem]


class PreviousDropin(msgspec.Struct):
    id: str
    room_id: str
    title: str
    ended_at: datetime


class DropinDetail(Dropin, kw_only=True):
    agenda: str
    started_at: datetime | None
    ended_at: datetime | None
    present: list[PublicMembership]
    hands: list[PublicMembership]
    summary: Summary | None
    previous: PreviousDropin | None


class LiveNow(msgspec.Struct):
    """A drop-in that is live now in one of the reader's circles: the banner on every page."""

    id: str
    room_id: str
    title: str


class SpotlightBody(msgspec.Struct):
    post_id: Id
