"""Queries shared by several services. Anything touching the room log lives here, so its rules live in one place."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from db.rows import Member, PostRecord, RoomRow, as_member, as_post, as_room
from db.tables import Membership, Post, Room, RoomEvent


def now() -> datetime:
    return datetime.now(UTC)


def as_uuid(value: str | uuid.UUID) -> uuid.UUID | None:
    """A UUID from an id string, or None when it is not one (an id that cannot exist is simply unknown)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return None


# --- the room log --------------------------------------------------------------------------------------------------


async def allocate_seq(room_id: uuid.UUID) -> int:
    """Take the room's next seq. Must run inside the write transaction.

    On Postgres the UPDATE takes the room row's lock, held until commit: a second writer to the same room waits here,
    so seqs are handed out in commit order and a rolled-back writer's seq is reused, never skipped. On SQLite the
    whole database is locked by BEGIN IMMEDIATE, which gives the same guarantees.
    """
    rows = await Room.raw("UPDATE room SET last_seq = last_seq + 1 WHERE id = {} RETURNING last_seq", room_id)
    if not rows:
        raise LookupError(f"room {room_id} vanished")
    return int(rows[0]["last_seq"])


async def append_event(room_id: uuid.UUID, seq: int, name: str, data: bytes, post_id: uuid.UUID | None) -> None:
    # Raw SQL: this runs in every write, and Piccolo's query building costs more than the statement itself.
    await RoomEvent.raw(
        "INSERT INTO room_event (room, seq, type, post_id, data, created_at) VALUES ({}, {}, {}, {}, {}, {})",
        room_id,
        seq,
        name,
        post_id,
        data.decode(),
        now(),
    )


def single_statement_writes() -> bool:
    """Whether the engine can write a change, its seq and its event in one statement (Postgres data-modifying CTEs;
    SQLite cannot, and takes the transaction path)."""
    from piccolo.engine.postgres import PostgresEngine

    return isinstance(Room._meta.db, PostgresEngine)


# The room's next seq, the post and its post.created event in one statement: one round trip instead of five, and the
# room row's lock (taken by the UPDATE, which orders writers per room) is held for one statement instead of four.
# The event data is the post's JSON with its seq spliced in, since the seq is only known inside the statement.
_INSERT_POST = """
WITH next AS (
    UPDATE room SET last_seq = last_seq + 1 WHERE id = {} RETURNING last_seq
), created AS (
    INSERT INTO post (id, room, parent, thread_root, author, kind, body, html, created_at, client_id, seq,
                      like_count, liked_by_coach, pinned)
    SELECT {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, next.last_seq, 0, false, false FROM next
    RETURNING seq
)
INSERT INTO room_event (room, seq, type, post_id, data, created_at)
SELECT {}, created.seq, 'post.created', {}, {} || created.seq::text || {}, {} FROM created
RETURNING seq
"""
_SEQ_PLACEHOLDER = b'"seq":-1'


async def insert_post(row: dict[str, Any], data_with_placeholder: bytes, record: Any) -> int:
    """Insert a top-level post (or a reply that notifies nobody) with its event; return its seq.

    `data_with_placeholder` is the post's JSON with `"seq":-1`; `record(room, seq, name, data)` is told the final
    event so it is published after commit. Only for engines where `single_statement_writes()` holds.
    """
    head, found, tail = data_with_placeholder.partition(_SEQ_PLACEHOLDER)
    if not found:
        raise ValueError("post JSON must carry the seq placeholder")
    rows = await Room.raw(
        _INSERT_POST,
        row["room"],
        row["id"],
        row["room"],
        row["parent"],
        row["thread_root"],
        row["author"],
        row["kind"],
        row["body"],
        row["html"],
        row["created_at"],
        row["client_id"],
        row["room"],
        row["id"],
        (head + b'"seq":').decode(),
        tail.decode(),
        row["created_at"],
    )
    if not rows:
        raise LookupError(f"room {row['room']} vanished")
    seq = int(rows[0]["seq"])
    record(row["room"], seq, "post.created", head + b'"seq":' + str(seq).encode() + tail)
    return seq


async def rewrite_post_events(post_id: uuid.UUID, data: bytes) -> None:
    """Replace the stored data of a post's created/updated events, so replay never resends edited-away or deleted
    text. Runs in the same transaction as the edit or deletion."""
    await RoomEvent.update({RoomEvent.data: data.decode()}).where(
        (RoomEvent.post_id == post_id) & RoomEvent.type.is_in(["post.created", "post.updated"])
    )


# room_event.seq is a 32-bit integer column: Postgres refuses to compare it with a larger parameter, and no seq can be
# larger, so a larger `after` means exactly what this one does.
_MAX_STORED_SEQ = 2**31 - 1


async def read_events(room_id: uuid.UUID, after: int, limit: int) -> tuple[list[tuple[int, str, str]], int]:
    rows = await (
        RoomEvent.select(RoomEvent.seq, RoomEvent.type, RoomEvent.data)
        .where((RoomEvent.room == room_id) & (RoomEvent.seq > min(after, _MAX_STORED_SEQ)))
        .order_by(RoomEvent.seq)
        .limit(limit)
    )
    last = await Room.select(Room.last_seq).where(Room.id == room_id).first()
    return [(r["seq"], r["type"], r["data"]) for r in rows], int(last["last_seq"]) if last else 0


async def last_seqs(room_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    ids = list(room_ids)
    if not ids:
        return {}
    rows = await Room.select(Room.id, Room.last_seq).where(Room.id.is_in(ids))
    return {r["id"]: int(r["last_seq"]) for r in rows}


# --- memberships ---------------------------------------------------------------------------------------------------


async def posts_where(where: Any, *, by_seq: bool = False) -> list[PostRecord]:
    """Whole post rows matching `where` (a Piccolo condition), typed; oldest first when `by_seq`."""
    query = Post.select().where(where)
    if by_seq:
        query = query.order_by(Post.seq)
    return [as_post(r) for r in await query]


async def post_where(where: Any) -> PostRecord | None:
    found = await Post.select().where(where).first()
    return as_post(found) if found is not None else None


async def current_membership(account_id: uuid.UUID, circle_id: uuid.UUID) -> Member | None:
    """The account's current membership of the circle, with `circle_closed_at` (a closed circle is read-only)."""
    found = await (
        Membership.select(*Membership.all_columns(), Membership.circle.closed_at.as_alias("circle_closed_at"))
        .where((Membership.account == account_id) & (Membership.circle == circle_id) & Membership.removed_at.is_null())
        .first()
    )
    return as_member(found) if found is not None else None


_ROOM_ACCESS = """
SELECT r.id AS room_id, r.circle AS room_circle, r.name AS room_name, r.topic AS room_topic,
       r.last_seq AS room_last_seq, r.created_at AS room_created_at, r.kind AS room_kind,
       r.membership AS room_membership,
       m.id, m.circle, m.account, m.alias, m.alias_key, m.role, m.joined_at, m.removed_at, m.muted_until,
       m.mute_reason, c.closed_at AS circle_closed_at, d.id AS room_dropin, d.state AS room_dropin_state
FROM room r
JOIN membership m ON m.circle = r.circle AND m.account = {} AND m.removed_at IS NULL
JOIN circle c ON c.id = r.circle
LEFT JOIN dropin d ON d.room = r.id
WHERE r.id = {}
  AND (r.kind <> 'journal' OR r.membership = m.id OR m.role = 'coach')
"""


async def room_access(account_id: uuid.UUID, room_id: uuid.UUID) -> tuple[RoomRow, Member] | None:
    """(room, membership) when the account is a current member of the room's circle (for a journal: its member or
    the circle's coach, nobody else); otherwise None.

    One round trip: every post, reply and subscribe asks this first."""
    rows = await Room.raw(_ROOM_ACCESS, account_id, room_id)
    if not rows:
        return None
    row = rows[0]
    room = {key.removeprefix("room_"): row.pop(key) for key in [k for k in row if k.startswith("room_")]}
    return as_room(room), as_member(row)


async def add_participants(dropin_id: uuid.UUID, membership_ids: Iterable[uuid.UUID]) -> None:
    """People took part in a live drop-in (were in its room, raised a hand, or posted); once per person."""
    ids = list(dict.fromkeys(membership_ids))
    if not ids:
        return
    at = now()
    values = ", ".join("({}, {}, {}, {})" for _ in ids)
    args: list[Any] = []
    for mid in ids:
        args += [uuid.uuid4(), dropin_id, mid, at]
    await Room.raw(
        f"INSERT INTO dropin_participant (id, dropin, membership, joined_at) VALUES {values} "
        "ON CONFLICT (dropin, membership) DO NOTHING",
        *args,
    )


async def memberships_by_id(ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await Membership.select(Membership.id, Membership.alias, Membership.role).where(Membership.id.is_in(wanted))
    return {r["id"]: r for r in rows}


async def reply_counts(root_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Replies at any depth under each top-level post, deleted ones excluded: one query for a page of posts."""
    wanted = list(root_ids)
    if not wanted:
        return {}
    rows = await Post.raw(
        "SELECT thread_root, COUNT(*) AS n FROM post WHERE thread_root IN ({}) AND deleted_at IS NULL "
        "GROUP BY thread_root".replace("{}", ", ".join("{}" for _ in wanted)),
        *wanted,
    )
    return {as_uuid(r["thread_root"]) or r["thread_root"]: int(r["n"]) for r in rows}


async def current_pairs(pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Of (account_id, circle_id) pairs, those that are current memberships: one query for all of them."""
    if not pairs:
        return set()
    accounts = [u for u in (as_uuid(a) for a, _ in pairs) if u is not None]
    circles = [u for u in (as_uuid(c) for _, c in pairs) if u is not None]
    rows = await Membership.select(Membership.account, Membership.circle).where(
        Membership.account.is_in(accounts) & Membership.circle.is_in(circles) & Membership.removed_at.is_null()
    )
    found = {(str(r["account"]), str(r["circle"])) for r in rows}
    return pairs & found


# Rows (or ids) per statement in bulk writes and look-ups. Postgres (asyncpg) caps one statement at 32,767
# parameters, SQLite at 32,766 by default (some builds allow more); a notification row has 10, so a thousand rows
# (10,000 parameters) stays well clear of either cap while a 1,000-member circle is still one statement.
CHUNK = 1000


def chunks(items: list[Any], size: int = CHUNK) -> list[list[Any]]:
    """`items` in consecutive slices of at most `size`: how bulk statements stay under the parameter cap."""
    return [items[i : i + size] for i in range(0, len(items), size)]
