"""Small helpers every service uses: id parsing, membership checks, uniqueness errors, and row -> struct."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import asyncpg
from litestar.exceptions import PermissionDeniedException

from app.errors import not_found
from db import queries
from realtime.events import Membership


def parse_id(value: str, what: str) -> uuid.UUID:
    """An id from a path or body; one that cannot be an id is reported exactly like an unknown one."""
    parsed = queries.as_uuid(value)
    if parsed is None:
        raise not_found(what)
    return parsed


def is_unique_violation(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.UniqueViolationError):
        return True
    return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)


def membership_struct(row: dict[str, Any]) -> Membership:
    return Membership(membership_id=str(row["id"]), alias=row["alias"], role=row["role"])


async def require_member(account_id: uuid.UUID, circle_id: uuid.UUID, what: str = "circle") -> dict[str, Any]:
    membership = await queries.current_membership(account_id, circle_id)
    if membership is None:
        raise not_found(what)
    return membership


def require_coach_role(membership: dict[str, Any], action: str) -> None:
    if membership["role"] != "coach":
        raise PermissionDeniedException(f"only the circle's coach can {action}")
