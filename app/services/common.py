"""Small helpers every service uses: id parsing, membership checks, uniqueness errors, and row -> struct."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
from litestar.exceptions import PermissionDeniedException
from piccolo.table import Table

from app.errors import Conflict, not_found
from db import queries
from db.queries import now
from db.rows import Member, PostRecord
from realtime.events import Membership

T = TypeVar("T")


def parse_id(value: str, what: str) -> uuid.UUID:
    """An id from a path or body; one that cannot be an id is reported exactly like an unknown one."""
    parsed = queries.as_uuid(value)
    if parsed is None:
        raise not_found(what)
    return parsed


async def load_for(
    table: type[Table], row_id: str | uuid.UUID, what: str, access: Callable[[dict[str, Any]], Awaitable[T | None]]
) -> tuple[dict[str, Any], T]:
    """A row by its id, and what the caller has access to through it (`access(row)`: their membership of the row's
    circle, say). Both missing cases are the same 404, so nobody can tell a row that does not exist from one in a
    circle they are not in."""
    rid = row_id if isinstance(row_id, uuid.UUID) else parse_id(row_id, what)
    row = await table.select().where(table.id == rid).first()  # type: ignore[attr-defined]
    if row is None:
        raise not_found(what)
    granted = await access(row)
    if granted is None:
        raise not_found(what)
    return row, granted


def member_of_its_circle(account_id: uuid.UUID) -> Callable[[dict[str, Any]], Awaitable[Member | None]]:
    """For `load_for`: the account's current membership of the row's circle."""

    def access(row: dict[str, Any]) -> Awaitable[Member | None]:
        return queries.current_membership(account_id, row["circle"])

    return access


def is_unique_violation(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.UniqueViolationError):
        return True
    return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)


def membership_struct(row: Member | dict[str, Any]) -> Membership:
    if isinstance(row, Member):
        return Membership(membership_id=str(row.id), alias=row.alias, role=row.role)
    return Membership(membership_id=str(row["id"]), alias=row["alias"], role=row["role"])


async def require_member(account_id: uuid.UUID, circle_id: uuid.UUID, what: str = "circle") -> Member:
    membership = await queries.current_membership(account_id, circle_id)
    if membership is None:
        raise not_found(what)
    return membership


def require_can_write(membership: Member) -> None:
    """Posting and reacting need an open circle and a member who is not muted."""
    if membership.circle_closed_at is not None:
        raise Conflict("this circle has been closed by its coach; it is read-only now")
    until = membership.muted_until
    if until is not None and until > now():
        reason = f" ({membership.mute_reason})" if membership.mute_reason else ""
        raise PermissionDeniedException(
            f"Your coach has paused your posting in this circle until {until:%d %b %Y, %H:%M} UTC{reason}"
        )


def require_room_open(dropin_state: str | None) -> None:
    """An ended drop-in's room is read-only: the conversation stays, as it was."""
    if dropin_state == "ended":
        raise Conflict("this drop-in has ended; its room is read-only now")


def require_coach_role(membership: Member, action: str) -> None:
    if membership.role != "coach":
        raise PermissionDeniedException(f"only the circle's coach can {action}")


def can_read(row: PostRecord, me: Member) -> bool:
    """Whether `me` may read the post's words: a deleted post is not there for anyone; a hidden one only for the
    coach and its author (not for the sharer of a share hidden with its original, whose words are someone else's)."""
    if row.deleted_at is not None:
        return False
    if row.hidden_at is None:
        return True
    own = me.id == row.author and not row.hidden_with_origin
    return me.role == "coach" or own


def require_readable(row: PostRecord, me: Member) -> None:
    """Every gesture, reply and report on a post the caller may not read is 404, as if the post were not there."""
    if not can_read(row, me):
        raise not_found("post")
