"""Live drop-in sessions: scheduled, then live when the coach opens the door, then ended with a summary.

A drop-in has its own room, so posting, replies and gestures work there as anywhere. Its state changes are room events
(`dropin.state`, durable and replayable); raised hands and the spotlight are rows, so every instance sees the same
queue and it survives an instance restarting; presence is the realtime layer's, with the hands queue in its frames.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.exceptions import ClientException

from app.errors import Conflict
from app.live import Live
from app.schemas.dropins import DropinCreate, DropinDetail, LiveNow, PreviousDropin, Summary, SummaryItem
from app.services import dropin_mail, notifications
from app.services.common import (
    load_for,
    member_of_its_circle,
    membership_struct,
    parse_id,
    require_can_write,
    require_coach_role,
    require_member,
)
from app.services.notifications import About
from app.services.outbox import Outbox, unit_of_work
from app.services.posts import authors_of, post_and_access, post_struct
from app.settings import Settings
from db import queries
from db.engine import write_transaction
from db.queries import now
from db.rows import Member, PostRecord, RoomRow
from db.tables import Dropin as DropinRow
from db.tables import DropinHand, DropinParticipant, Membership, Pin, Room
from db.tables import Post as PostRow
from realtime.events import ROLES, Dropin, DropinChanged, NotificationKind, Post
from realtime.events import Membership as PublicMembership

# Members get the reminder this long before the start (if their preferences want it).
REMINDER_LEAD = timedelta(minutes=10)
MIN_MINUTES, MAX_MINUTES = 5, 8 * 60
# Far enough for any plan; the end time and reminders of a date near year 9999 would overflow.
MAX_AHEAD = timedelta(days=366)
EXCERPT = 160


async def _spotlight_post(post_id: uuid.UUID | None) -> Post | None:
    if post_id is None:
        return None
    row = await queries.post_where((PostRow.id == post_id) & PostRow.deleted_at.is_null())
    if row is None:
        return None
    return post_struct(row, (await authors_of([row]))[row.author])


async def dropin_struct(row: dict[str, Any]) -> Dropin:
    return Dropin(
        id=str(row["id"]),
        circle_id=str(row["circle"]),
        room_id=str(row["room"]),
        title=row["title"],
        starts_at=row["starts_at"],
        duration_minutes=int(row["duration_minutes"]),
        state=row["state"],
        spotlight=str(row["spotlight"]) if row["spotlight"] else None,
        spotlight_post=await _spotlight_post(row["spotlight"]),
        called=await _called(row.get("called")),
    )


async def _called(membership_id: uuid.UUID | None) -> PublicMembership | None:
    """The member called on, while they are still a member (a hand called and then gone shows nobody)."""
    if membership_id is None:
        return None
    person = (
        await Membership.select(Membership.id, Membership.alias, Membership.role)
        .where((Membership.id == membership_id) & Membership.removed_at.is_null())
        .first()
    )
    return membership_struct(person) if person is not None else None


async def hands_of(dropin_id: uuid.UUID) -> list[PublicMembership]:
    rows = (
        await DropinHand.select(
            DropinHand.membership.id.as_alias("id"),
            DropinHand.membership.alias.as_alias("alias"),
            DropinHand.membership.role.as_alias("role"),
        )
        .where((DropinHand.dropin == dropin_id) & DropinHand.membership.removed_at.is_null())
        .order_by(DropinHand.raised_at)
    )
    return [membership_struct(r) for r in rows]


async def lower_hands_of(membership_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Inside the caller's transaction: lower every hand these memberships have up (they left, were removed or
    erased). Returns the drop-in rooms whose queue changed, for `refresh_hands` once committed."""
    if not membership_ids:
        return []
    raised = await DropinHand.select(DropinHand.dropin.room.as_alias("room")).where(
        DropinHand.membership.is_in(membership_ids)
    )
    await DropinHand.delete().where(DropinHand.membership.is_in(membership_ids))
    return list({r["room"] for r in raised})


async def refresh_hands(rooms: list[uuid.UUID], live: Live) -> None:
    """After commit: every instance's sockets in those drop-in rooms get the queue without the lowered hands."""
    for room in rooms:
        await live.hub.refresh_presence(str(room))


async def hands_in_room(room_id: str) -> list[PublicMembership]:
    """The hands queue of the drop-in whose room this is (empty for an ordinary room): for presence frames."""
    rid = queries.as_uuid(room_id)
    row = await DropinRow.select(DropinRow.id, DropinRow.state).where(DropinRow.room == rid).first() if rid else None
    if row is None or row["state"] != "live":
        return []
    return await hands_of(row["id"])


async def _load(account_id: uuid.UUID, dropin_id: str) -> tuple[dict[str, Any], Member]:
    return await load_for(DropinRow, dropin_id, "drop-in", member_of_its_circle(account_id))


async def schedule(account_id: uuid.UUID, circle_id: str, data: DropinCreate) -> Dropin:
    cid = parse_id(circle_id, "circle")
    me = await require_member(account_id, cid)
    require_coach_role(me, "schedule drop-ins")
    require_can_write(me)
    title = " ".join(data.title.split())
    if not title or len(title) > 120:
        raise ClientException("give the drop-in a title of at most 120 characters")
    if not MIN_MINUTES <= data.duration_minutes <= MAX_MINUTES:
        raise ClientException(f"a drop-in lasts {MIN_MINUTES} to {MAX_MINUTES} minutes")
    starts_at = data.starts_at if data.starts_at.tzinfo else data.starts_at.replace(tzinfo=UTC)
    if starts_at < now() - timedelta(hours=1):
        raise ClientException("starts_at is in the past")
    if starts_at > now() + MAX_AHEAD:
        raise ClientException("schedule drop-ins at most a year ahead")
    dropin_id, room_id = uuid.uuid4(), uuid.uuid4()
    async with write_transaction():
        await Room.insert(
            Room(
                id=room_id,
                circle=cid,
                kind="dropin",
                # Room names are at most 80 characters; the full title stays on the drop-in.
                name=(title if "drop-in" in title.lower() else f"Drop-in: {title}")[:80],
                # The agenda is the panel's; the room's topic line would only repeat it.
                topic="",
                last_seq=0,
                created_at=now(),
            )
        )
        await DropinRow.insert(
            DropinRow(
                id=dropin_id,
                circle=cid,
                room=room_id,
                title=title,
                agenda=data.agenda.strip()[:4000],
                starts_at=starts_at,
                duration_minutes=data.duration_minutes,
                state="scheduled",
                created_at=now(),
            )
        )
    row = await DropinRow.select().where(DropinRow.id == dropin_id).first()
    assert row is not None
    return await dropin_struct(row)


async def detail(account_id: uuid.UUID, dropin_id: str, live: Live) -> DropinDetail:
    row, _ = await _load(account_id, dropin_id)
    return await _detail(row, live)


async def _detail(row: dict[str, Any], live: Live) -> DropinDetail:
    base = await dropin_struct(row)
    previous = (
        await DropinRow.select(DropinRow.id, DropinRow.room, DropinRow.title, DropinRow.ended_at)
        .where((DropinRow.circle == row["circle"]) & (DropinRow.state == "ended") & (DropinRow.id != row["id"]))
        .order_by(DropinRow.ended_at, ascending=False)
        .first()
    )
    present = await live.hub.presence.members(str(row["room"])) if row["state"] == "live" else []
    return DropinDetail(
        **{f: getattr(base, f) for f in base.__struct_fields__},
        agenda=row["agenda"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        present=present,
        hands=await hands_of(row["id"]) if row["state"] == "live" else [],
        summary=await _summarise(row) if row["state"] == "ended" else None,
        previous=_previous(previous) if previous else None,
    )


def _previous(row: dict[str, Any]) -> PreviousDropin:
    return PreviousDropin(id=str(row["id"]), room_id=str(row["room"]), title=row["title"], ended_at=row["ended_at"])


async def for_room(room: RoomRow, live: Live) -> DropinDetail | None:
    """The drop-in whose room this is (for its page), or None for an ordinary room."""
    if not room.dropin:
        return None
    row = await DropinRow.select().where(DropinRow.id == room.dropin).first()
    return await _detail(row, live) if row else None


async def for_post(account_id: uuid.UUID, post_id: str) -> str:
    """The live drop-in of the room a post is in (for the coach's Spotlight button); 409 if there is none."""
    _, room, _ = await post_and_access(account_id, post_id)
    if room.dropin_state != "live":
        raise Conflict("there is no live drop-in in this post's room")
    return str(room.dropin)


async def upcoming(account_id: uuid.UUID, circle_id: str) -> list[Dropin]:
    cid = parse_id(circle_id, "circle")
    await require_member(account_id, cid)
    rows = (
        await DropinRow.select()
        .where((DropinRow.circle == cid) & DropinRow.state.is_in(["scheduled", "live"]))
        .order_by(DropinRow.starts_at)
    )
    return [await dropin_struct(r) for r in rows]


async def past(account_id: uuid.UUID, circle_id: str, limit: int = 10) -> list[PreviousDropin]:
    """The circle's history: ended drop-ins, newest first, each with its summary in its room."""
    cid = parse_id(circle_id, "circle")
    await require_member(account_id, cid)
    rows = (
        await DropinRow.select(DropinRow.id, DropinRow.room, DropinRow.title, DropinRow.ended_at)
        .where((DropinRow.circle == cid) & (DropinRow.state == "ended"))
        .order_by(DropinRow.ended_at, ascending=False)
        .limit(limit)
    )
    return [_previous(r) for r in rows]


async def live_for_account(account_id: uuid.UUID) -> list[LiveNow]:
    rows = await DropinRow.select(DropinRow.id, DropinRow.room, DropinRow.title).where(
        (DropinRow.state == "live")
        & DropinRow.circle.is_in(
            Membership.select(Membership.circle).where(
                (Membership.account == account_id) & Membership.removed_at.is_null()
            )
        )
    )
    return [LiveNow(id=str(r["id"]), room_id=str(r["room"]), title=r["title"]) for r in rows]


async def _change(row: dict[str, Any], values: dict[Any, Any], outbox: Outbox) -> dict[str, Any]:
    """Update the drop-in and append its dropin.state event, inside the caller's transaction."""
    await DropinRow.update(values).where(DropinRow.id == row["id"])
    fresh = await DropinRow.select().where(DropinRow.id == row["id"]).first()
    assert fresh is not None
    # The room's access carries the drop-in's state (an ended drop-in's room is read-only).
    outbox.access_changed(fresh["circle"])
    # The spotlighted post's id marks the event, so the post's edits, hiding and deletion can find and rewrite it.
    seq = await outbox.next_seq(fresh["room"])
    event = DropinChanged(room_id=str(fresh["room"]), seq=seq, data=await dropin_struct(fresh))
    await outbox.append(event, post_id=fresh["spotlight"])
    return fresh


async def _notify_circle(
    outbox: Outbox,
    row: dict[str, Any],
    kind: NotificationKind,
    *,
    actor: Member | None,
    members_only: bool = False,
) -> None:
    """Notify the drop-in's circle (its members only, or the coach too) in one INSERT, inside the caller's
    transaction; the frames and pushes go out in the background once the outbox is published."""
    recipients = await notifications.members_of(row["circle"], roles=("member",) if members_only else ROLES)
    await notifications.notify(outbox, kind, recipients, actor, About.room(row))


async def start(account_id: uuid.UUID, dropin_id: str, live: Live) -> Dropin:
    row, me = await _load(account_id, dropin_id)
    require_coach_role(me, "start a drop-in")
    require_can_write(me)
    if row["state"] == "ended":
        raise Conflict("this drop-in has ended; schedule a new one")
    if row["state"] == "live":
        return await dropin_struct(row)
    async with unit_of_work(live) as outbox:
        fresh = await _change(row, {DropinRow.state: "live", DropinRow.started_at: now()}, outbox)
        await _notify_circle(outbox, row, "dropin.live", actor=me)
    # Whoever was already waiting in the room when the door opened takes part, even if they never say a word.
    waiting = await live.hub.presence.members(str(row["room"]))
    await queries.add_participants(row["id"], [uuid.UUID(m.membership_id) for m in waiting])
    return await dropin_struct(fresh)


def _excerpt(body: str) -> str:
    text = " ".join(body.split())
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"


async def _summarise(row: dict[str, Any]) -> Summary:
    participants = (
        await DropinParticipant.select(DropinParticipant.membership.alias.as_alias("alias"))
        .where(DropinParticipant.dropin == row["id"])
        .order_by(DropinParticipant.joined_at)
    )
    posts = await queries.posts_where((PostRow.room == row["room"]) & PostRow.deleted_at.is_null(), by_seq=True)
    authors = await authors_of(posts)
    pinned = (
        {r["post"] for r in await Pin.select(Pin.post).where(Pin.post.is_in([p.id for p in posts]))} if posts else set()
    )

    def item(p: PostRecord) -> SummaryItem:
        return SummaryItem(post_id=str(p.id), alias=authors[p.author].alias, excerpt=_excerpt(p.body))

    visible = [p for p in posts if p.hidden_at is None]
    return Summary(
        participants=list(dict.fromkeys(p["alias"] for p in participants)),
        insights=[item(p) for p in visible if p.id in pinned],
        questions=[item(p) for p in visible if p.kind == "question" and authors[p.author].role == "coach"],
        experiments=[item(p) for p in visible if p.kind == "experiment" and authors[p.author].role == "member"],
    )


async def end(account_id: uuid.UUID, dropin_id: str, live: Live) -> Dropin:
    row, me = await _load(account_id, dropin_id)
    require_coach_role(me, "end a drop-in")
    if row["state"] == "ended":
        return await dropin_struct(row)
    async with unit_of_work(live) as outbox:
        await DropinHand.delete().where(DropinHand.dropin == row["id"])
        fresh = await _change(
            row,
            {
                DropinRow.state: "ended",
                DropinRow.ended_at: now(),
                DropinRow.spotlight: None,
                DropinRow.called: None,
            },
            outbox,
        )
        retired = await notifications.retire(row["room"], ("dropin.live", "dropin.reminder"))
    await notifications.announce_read(retired, live)
    await live.hub.refresh_presence(str(row["room"]))
    return await dropin_struct(fresh)


async def _live_dropin(account_id: uuid.UUID, dropin_id: str) -> tuple[dict[str, Any], Member]:
    row, me = await _load(account_id, dropin_id)
    if row["state"] != "live":
        raise Conflict("this drop-in is not live")
    return row, me


async def raise_hand(account_id: uuid.UUID, dropin_id: str, live: Live) -> list[PublicMembership]:
    row, me = await _live_dropin(account_id, dropin_id)
    require_can_write(me)
    await DropinHand.raw(
        "INSERT INTO dropin_hand (id, dropin, membership, raised_at) VALUES ({}, {}, {}, {}) "
        "ON CONFLICT (dropin, membership) DO NOTHING",
        uuid.uuid4(),
        row["id"],
        me.id,
        now(),
    )
    await queries.add_participants(row["id"], [me.id])
    await live.hub.refresh_presence(str(row["room"]))
    return await hands_of(row["id"])


async def lower_hand(account_id: uuid.UUID, dropin_id: str, live: Live) -> list[PublicMembership]:
    row, me = await _live_dropin(account_id, dropin_id)
    await DropinHand.delete().where((DropinHand.dropin == row["id"]) & (DropinHand.membership == me.id))
    await live.hub.refresh_presence(str(row["room"]))
    return await hands_of(row["id"])


async def _set_spotlight(
    row: dict[str, Any], post_id: uuid.UUID | None, live: Live, *, called: uuid.UUID | None = None
) -> dict[str, Any]:
    """Spotlight a post (or nothing) and say who was called on (only "next hand" calls someone; the coach's own
    spotlight or clearing it calls nobody)."""
    async with unit_of_work(live) as outbox:
        fresh = await _change(row, {DropinRow.spotlight: post_id, DropinRow.called: called}, outbox)
    return fresh


async def spotlight(account_id: uuid.UUID, dropin_id: str, post_id: str | None, live: Live) -> DropinDetail:
    row, me = await _live_dropin(account_id, dropin_id)
    require_coach_role(me, "spotlight a post")
    pid = None
    if post_id is not None:
        pid = queries.as_uuid(post_id)
        post = (
            await PostRow.select(PostRow.id)
            .where(
                (PostRow.id == (pid or uuid.UUID(int=0)))
                & PostRow.deleted_at.is_null()
                & PostRow.room.is_in(
                    Room.select(Room.id).where((Room.circle == row["circle"]) & (Room.kind != "journal"))
                )
            )
            .first()
        )
        if post is None:
            raise ClientException("post_id is not a post in this circle")
    return await _detail(await _set_spotlight(row, pid, live), live)


async def call_next(account_id: uuid.UUID, dropin_id: str, live: Live) -> DropinDetail:
    """The coach calls on the first raised hand: it is lowered, and that member's latest post here is spotlighted."""
    row, me = await _live_dropin(account_id, dropin_id)
    require_coach_role(me, "call on raised hands")
    # Only current members' hands: a hand left by someone who has since gone is never called on.
    first = (
        await DropinHand.select()
        .where((DropinHand.dropin == row["id"]) & DropinHand.membership.removed_at.is_null())
        .order_by(DropinHand.raised_at)
        .first()
    )
    if first is None:
        raise Conflict("no hands are raised")
    await DropinHand.delete().where(DropinHand.id == first["id"])
    latest = (
        await PostRow.select(PostRow.id)
        .where(
            (PostRow.room == row["room"])
            & (PostRow.author == first["membership"])
            & PostRow.deleted_at.is_null()
            & PostRow.hidden_at.is_null()
        )
        .order_by(PostRow.seq, ascending=False)
        .first()
    )
    fresh = await _set_spotlight(row, latest["id"] if latest else None, live, called=first["membership"])
    await live.hub.refresh_presence(str(row["room"]))
    return await _detail(fresh, live)


async def send_reminders(live: Live, settings: Settings | None = None) -> int:
    """Tell each circle about drop-ins starting within the next ten minutes, once. Returns how many drop-ins. With
    `settings` (the app's job), members who want it by email get a mail with the .ics, in the same transaction."""
    due = await DropinRow.select().where(
        (DropinRow.state == "scheduled")
        & DropinRow.reminded_at.is_null()
        & (DropinRow.starts_at <= now() + REMINDER_LEAD)
        & (DropinRow.starts_at > now() - timedelta(minutes=1))
    )
    for row in due:
        async with unit_of_work(live) as outbox:
            taken = await DropinRow.raw(
                "UPDATE dropin SET reminded_at = {} WHERE id = {} AND reminded_at IS NULL RETURNING id",
                now(),
                row["id"],
            )
            if not taken:
                continue  # another instance sent it
            await _notify_circle(outbox, row, "dropin.reminder", actor=None, members_only=True)
            if settings is not None:
                await dropin_mail.send(outbox, row, settings)
    return len(due)


def ics(row: dict[str, Any], url: str) -> str:
    """An iCalendar event (RFC 5545) for one drop-in."""

    def stamp(value: datetime) -> str:
        return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    def escape(text: str) -> str:
        # TEXT values (RFC 5545 3.3.11): every line break, CR, LF or CRLF, is the escape \n; other control
        # characters have no place in a calendar and are dropped, so none can end a line or start a property.
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        text = "".join(ch for ch in text if ch == "\n" or (ch >= " " and ch != "\x7f"))
        return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")

    def fold(line: str) -> str:
        # Content lines are at most 75 octets; longer ones continue on lines that start with a space (3.1).
        out: list[str] = []
        current = b""
        for ch in line:
            encoded = ch.encode()
            if len(current) + len(encoded) > (75 if not out else 74):
                out.append(current.decode())
                current = b""
            current += encoded
        out.append(current.decode())
        return "\r\n ".join(out)

    ends = row["starts_at"] + timedelta(minutes=int(row["duration_minutes"]))
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Kindred//Drop-ins//EN",
        "CALSCALE:GREGORIAN",
        "BEGIN:VEVENT",
        f"UID:{row['id']}@kindred",
        f"DTSTAMP:{stamp(now())}",
        f"DTSTART:{stamp(row['starts_at'])}",
        f"DTEND:{stamp(ends)}",
        f"SUMMARY:{escape('Drop-in: ' + row['title'])}",
        f"DESCRIPTION:{escape((row['agenda'] or '') + chr(10) + chr(10) + 'Join: ' + url)}",
        f"URL:{url}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(fold(line) for line in lines) + "\r\n"


async def calendar(account_id: uuid.UUID, dropin_id: str, room_url: str) -> tuple[str, str]:
    """The drop-in as an iCalendar file, and a file name for it; members only."""
    row, _ = await _load(account_id, dropin_id)
    return ics(row, room_url.format(room_id=row["room"])), calendar_name(row["title"])


def calendar_name(title: str) -> str:
    """A file name for a drop-in's .ics."""
    slug = "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")[:40] or "drop-in"
    return f"kindred-{slug}.ics"
