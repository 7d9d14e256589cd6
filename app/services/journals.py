"""Journals: one room per membership, readable and writable by that member and the circle's coach only.

The rule lives in one place, `db.queries.room_access` (the check every post, reply, gesture and socket subscription
makes first): a journal admits its member and the coach, and answers 404 to everyone else, exactly as a room of
another circle does. What would carry a journal's words out of it is refused or filtered where it happens: listings
(`circles.rooms`, the insights board, the lab's list, share targets, drop-in spotlights), notifications to anyone but
the member and the coach, tags of anyone else, and shares by anyone but the post's author.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar.exceptions import PermissionDeniedException

from app.errors import not_found
from app.schemas import RoomOut
from app.services.circles import room_out
from app.services.common import is_unique_violation, parse_id, require_member
from db import queries
from db.queries import now
from db.rows import Member, RoomRow
from db.tables import Membership, Room

JOURNAL_NAME = "Journal"
JOURNAL_TOPIC = "Only you and your coach can read this."


def readable_by(room: RoomRow, reader: Member) -> bool:
    """Whether `reader` (a member of the room's circle) may read the room: any room but someone else's journal."""
    return room.kind != "journal" or room.membership == reader.id or reader.role == "coach"


async def _journal_row(membership_id: uuid.UUID, circle_id: uuid.UUID) -> dict[str, Any]:
    """The membership's journal room, made on first use (two first uses at once make one: the unique index)."""
    found = await Room.select().where(Room.membership == membership_id).first()
    if found is not None:
        return found
    try:
        await Room.insert(
            Room(
                id=uuid.uuid4(),
                circle=circle_id,
                name=JOURNAL_NAME,
                topic=JOURNAL_TOPIC,
                last_seq=0,
                created_at=now(),
                kind="journal",
                membership=membership_id,
            )
        )
    except Exception as exc:
        if not is_unique_violation(exc):
            raise
    made = await Room.select().where(Room.membership == membership_id).first()
    assert made is not None
    return made


async def journal(account_id: uuid.UUID, membership_id: str) -> RoomOut:
    """GET /memberships/{id}/journal: for that member and the circle's coach; 404 for anyone else."""
    mid = parse_id(membership_id, "journal")
    target = await Membership.select().where((Membership.id == mid) & Membership.removed_at.is_null()).first()
    if target is None:
        raise not_found("journal")
    me = await queries.current_membership(account_id, target["circle"])
    if me is None or (me.id != mid and me.role != "coach"):
        raise not_found("journal")
    return room_out(await _journal_row(mid, target["circle"]))


async def journals(account_id: uuid.UUID, circle_id: str) -> list[RoomOut]:
    """GET /circles/{id}/journals: every current member's journal, for the coach (made now where missing)."""
    cid = parse_id(circle_id, "circle")
    me = await require_member(account_id, cid)
    if me.role != "coach":
        raise PermissionDeniedException("only the circle's coach sees its members' journals")
    members = await Membership.select(Membership.id).where(
        (Membership.circle == cid) & Membership.removed_at.is_null() & (Membership.role == "member")
    )
    return [room_out(await _journal_row(m["id"], cid)) for m in members]
