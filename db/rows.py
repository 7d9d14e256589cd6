"""Typed rows: what the queries hand to the services when a row crosses a module line. Piccolo returns dicts; these
are checked by mypy at every use (a typo in a key is a type error, not a KeyError in production)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import msgspec


class Member(msgspec.Struct, kw_only=True):
    """A current membership: who the account is in one circle, and what they may do there."""

    id: uuid.UUID
    circle: uuid.UUID
    account: uuid.UUID
    alias: str
    role: Literal["coach", "member"]
    joined_at: datetime | None = None
    muted_until: datetime | None = None
    mute_reason: str | None = None
    welcomed_at: datetime | None = None
    # Set when the circle has been closed by its coach: everything in it is read-only.
    circle_closed_at: datetime | None = None


class RoomRow(msgspec.Struct, kw_only=True):
    """A room as access checks return it, with its drop-in (when the room is one's) and that drop-in's state."""

    id: uuid.UUID
    circle: uuid.UUID
    name: str
    topic: str = ""
    last_seq: int = 0
    created_at: datetime | None = None
    dropin: uuid.UUID | None = None
    dropin_state: str | None = None
    kind: str = "room"
    # A journal's member (kind "journal"); None for other rooms.
    membership: uuid.UUID | None = None


def as_member(row: dict[str, Any]) -> Member:
    return msgspec.convert(row, Member, strict=False)


def as_room(row: dict[str, Any]) -> RoomRow:
    return msgspec.convert(row, RoomRow, strict=False)


class PostRecord(msgspec.Struct, kw_only=True):
    """A post row as services pass it between modules (`db.tables.Post`, every column)."""

    id: uuid.UUID
    room: uuid.UUID
    parent: uuid.UUID | None = None
    thread_root: uuid.UUID | None = None
    author: uuid.UUID
    kind: Literal["reflection", "experiment", "win", "question"] = "reflection"
    body: str = ""
    html: str = ""
    created_at: datetime
    edited_at: datetime | None = None
    deleted_at: datetime | None = None
    hidden_at: datetime | None = None
    moderation_reason: str | None = None
    client_id: str | None = None
    seq: int = 0
    like_count: int = 0
    liked_by_coach: bool = False
    pinned: bool = False
    shared_from: str | None = None
    origin: uuid.UUID | None = None
    hidden_with_origin: bool = False
    experiment: str | None = None
    experiment_state: str | None = None
    experiment_due_at: datetime | None = None
    experiment_due_sent_at: datetime | None = None
    content_note: str | None = None
    reply_wish: str | None = None

    def columns(self) -> dict[str, Any]:
        """The row for an INSERT."""
        return msgspec.structs.asdict(self)


def as_post(row: dict[str, Any]) -> PostRecord:
    return msgspec.convert(row, PostRecord, strict=False)
