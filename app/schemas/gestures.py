"""The coach's and members' gestures: likes, pins (key insights), shares, tags."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from app.schemas.common import Id
from realtime.events import Membership as PublicMembership
from realtime.events import Post


class PinBody(msgspec.Struct):
    note: Annotated[str, Meta(max_length=500)] | None = None


class ShareBody(msgspec.Struct):
    room_id: Id
    note: Annotated[str, Meta(max_length=500)] | None = None


class TagBody(msgspec.Struct):
    membership_id: Id


class LikeOut(msgspec.Struct):
    like_count: int
    liked_by_coach: bool
    liked_by_me: bool


class PinOut(msgspec.Struct):
    post_id: str
    pinned: bool
    note: str | None
    pinned_at: datetime | None


class Insight(Post, kw_only=True):
    """A pinned post on the circle's Key insights board."""

    pin_note: str | None
    pinned_at: datetime


class TagOut(msgspec.Struct):
    post_id: str
    membership: PublicMembership
