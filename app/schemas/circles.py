"""Circles, invites, members and rooms; closing a circle."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from app.schemas.common import Alias
from realtime.events import Role


class CircleCreate(msgspec.Struct):
    name: Annotated[str, Meta(min_length=1, max_length=120)]
    commonality: Annotated[str, Meta(min_length=1, max_length=2000)]
    norms: Annotated[str, Meta(max_length=4000)] = ""
    coach_alias: Alias | None = None


class CircleUpdate(msgspec.Struct):
    """Extension: the coach edits the circle. Absent fields are left as they are."""

    name: Annotated[str, Meta(min_length=1, max_length=120)] | msgspec.UnsetType = msgspec.UNSET
    commonality: Annotated[str, Meta(min_length=1, max_length=2000)] | msgspec.UnsetType = msgspec.UNSET
    norms: Annotated[str, Meta(max_length=4000)] | msgspec.UnsetType = msgspec.UNSET
    coach_sees_identity: bool | msgspec.UnsetType = msgspec.UNSET
    # Care: where to turn in a crisis (Markdown). null (or empty) goes back to Kindred's default.
    care_resources: Annotated[str, Meta(max_length=4000)] | msgspec.UnsetType | None = msgspec.UNSET


class CircleOut(msgspec.Struct):
    id: str
    name: str
    commonality: str
    norms: str
    coach_sees_identity: bool
    # Care: the circle's crisis resources as Markdown (Kindred's default until the coach writes their own).
    care_resources: str = ""
    care_resources_html: str = ""


class InviteCreate(msgspec.Struct):
    max_uses: Annotated[int, Meta(ge=1, le=10_000)] | None = None
    expires_in_hours: Annotated[int, Meta(ge=1, le=24 * 90)] | None = None


class InviteOut(msgspec.Struct):
    code: str
    url: str
    # Extensions: so the coach can tell the invitee how long the link works.
    expires_at: str
    max_uses: int | None


class Join(msgspec.Struct):
    alias: Alias


class MemberWithIdentity(msgspec.Struct):
    """Only ever sent to the circle's coach, and only while the circle's `coach_sees_identity` holds. `name` and
    `email` are null for members who joined while it was off: consent is taken at join time, per membership."""

    membership_id: str
    alias: str
    role: Role
    name: str | None
    email: str | None


class RoomCreate(msgspec.Struct):
    name: Annotated[str, Meta(min_length=1, max_length=80)]
    topic: Annotated[str, Meta(max_length=500)] = ""


class RoomOut(msgspec.Struct):
    id: str
    circle_id: str
    name: str
    topic: str
    last_seq: int
    # Extension: set when the room is a drop-in's own room.
    dropin_id: str | None = None
    # room (an ordinary room), dropin (a drop-in's own room) or journal (one member's, with the coach).
    kind: Literal["room", "dropin", "journal"] = "room"
    # Set on journals only: whose journal it is.
    membership_id: str | None = None


class CircleClosed(msgspec.Struct):
    id: str
    closed_at: str | None
    delete_after: str | None
