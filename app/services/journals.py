"""Journals: one room per membership, readable and writable by that member and the circle's coach only.

The rule lives in one place, `db.queries.room_access` (the check every post, reply, gesture and socket subscription
makes first): a journal admits its member and the coach, and answers 404 to everyone else, exactly as a room of
another circle does. What would carry a journal's words out of it is refused or filtered where it happens: listings
(`circles.rooms`, the insights board, the lab's list, share targets, drop-in spotlights), notifications to anyone but
the member and the coach, tags of anyone else, and shares by anyone but the post's author.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar.exceptions import PermissionDeniedException
from piccolo.query.functions.aggregate import Max

from app.errors import not_found
from app.schemas import RoomOut
from app.services.circles import room_out
from app.services.common import is_unique_violation, parse_id, require_member
from db import queries
from db.queries import now
from db.rows import Member, RoomRow
from db.tables import Membership, Post, Room, RoomRead

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


# --- reading: the coach's unread markers and the member's "new from your coach" ----------------------------------


async def mark_read(reader: Member, room: RoomRow) -> None:
    """The reader opened the room: everything up to its last event is read (one row per reader and room)."""
    values: dict[Any, Any] = {RoomRead.seen_seq: int(room.last_seq), RoomRead.seen_at: now()}
    where = (RoomRead.membership == reader.id) & (RoomRead.room == room.id)
    if await RoomRead.exists().where(where):
        await RoomRead.update(values).where(where)
        return
    try:
        await RoomRead.insert(
            RoomRead(id=uuid.uuid4(), membership=reader.id, room=room.id, seen_seq=int(room.last_seq), seen_at=now())
        )
    except Exception as exc:
        # Two tabs opened it at once: the other one made the row; it says the same.
        if not is_unique_violation(exc):
            raise
        await RoomRead.update(values).where(where)


_UNREAD = (
    "SELECT p.room AS room, COUNT(*) AS unread, MAX(p.created_at) AS latest FROM post p "
    "JOIN room j ON j.id = p.room AND j.kind = 'journal' AND j.circle = {} "
    "LEFT JOIN room_read r ON r.room = p.room AND r.membership = {} "
    "WHERE p.author <> {} AND p.deleted_at IS NULL AND p.seq > COALESCE(r.seen_seq, 0) "
    "GROUP BY p.room"
)


async def unread_by_journal(reader: Member) -> dict[uuid.UUID, int]:
    """For each journal of the reader's circle they may read: how many posts by someone else arrived since they last
    opened it. One query, whatever the number of members."""
    rows = await RoomRead.raw(_UNREAD, reader.circle, reader.id, reader.id)
    counts: dict[uuid.UUID, int] = {}
    for row in rows:
        room_id = queries.as_uuid(row["room"])
        if room_id is not None:
            counts[room_id] = int(row["unread"])
    return counts


class JournalLine(msgspec.Struct, frozen=True):
    """One line of the coach's list of journals: whose (alias only), where, when last written, and what is new."""

    membership_id: str
    alias: str
    room_id: str
    last_post_at: datetime | None
    unread: int


def _as_time(value: datetime | str | None) -> datetime | None:
    """An aggregate's timestamp: a datetime on Postgres, the stored ISO text on SQLite."""
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def overview(account_id: uuid.UUID, circle_id: str) -> list[JournalLine]:
    """The coach's list: every current member's journal, those with something new first, then by latest writing."""
    cid = parse_id(circle_id, "circle")
    me = await require_member(account_id, cid)
    rooms = await journals(account_id, circle_id)
    unread = await unread_by_journal(me)
    aliases = {
        str(m["id"]): m["alias"]
        for m in await Membership.select(Membership.id, Membership.alias).where(
            (Membership.circle == cid) & Membership.removed_at.is_null()
        )
    }
    latest = {
        str(r["room"]): _as_time(r["latest"])
        for r in await Post.select(Post.room, Max(Post.created_at).as_alias("latest"))
        .where(Post.room.is_in([uuid.UUID(r.id) for r in rooms] or [uuid.UUID(int=0)]) & Post.deleted_at.is_null())
        .group_by(Post.room)
    }
    lines = [
        JournalLine(
            membership_id=r.membership_id or "",
            alias=aliases.get(r.membership_id or "", ""),
            room_id=r.id,
            last_post_at=latest.get(r.id),
            unread=unread.get(uuid.UUID(r.id), 0),
        )
        for r in rooms
    ]
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(lines, key=lambda line: (line.unread == 0, -(line.last_post_at or epoch).timestamp(), line.alias))


async def my_journal(account_id: uuid.UUID, circle_id: str) -> tuple[RoomOut, int]:
    """The member's own journal in this circle (made on first use) and how many posts their coach wrote there since
    they last opened it."""
    cid = parse_id(circle_id, "circle")
    me = await require_member(account_id, cid)
    room = await journal(account_id, str(me.id))
    return room, (await unread_by_journal(me)).get(uuid.UUID(room.id), 0)


async def owner_alias(room: RoomRow) -> str:
    """The alias of the member whose journal this is (the page's heading says whose)."""
    owner = await Membership.select(Membership.alias).where(Membership.id == room.membership).first()
    return str(owner["alias"]) if owner else ""
