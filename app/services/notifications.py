"""Notifications: written in the same transaction as the change that causes them, delivered after commit.

A notification names its actor by membership (alias and role in that circle), never by account. Who gets what, and
how, follows each recipient's preferences: per kind, per circle (a circle can be muted), with quiet hours in their
own time zone. A coach's gestures always reach the feed. `notify` costs the same few queries and one INSERT for any
circle up to a thousand recipients (one more of each per further thousand); frames and pushes go out from a
background worker, so no request waits on push services.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from litestar.exceptions import ClientException

from app.live import Delivery, Live
from app.services.common import membership_struct
from app.services.outbox import Outbox
from db import queries
from db.queries import chunks, now
from db.rows import Member, PostRecord, RoomRow
from db.tables import Account, Circle, Membership, NotificationPreference
from db.tables import Notification as NotificationRow
from realtime.events import ROLES, Notification, NotificationKind, Role

DEFAULT_PAGE, MAX_PAGE = 30, 100

# What each kind says, by alias only. `{actor}` is the actor's alias, `{reason}` a moderation reason.
KIND_TEXT: dict[NotificationKind, str] = {
    "reply": "{actor} replied to your post",
    "question": "{actor} asked you a question about your post",
    "mention": "{actor} mentioned you",
    "tag": "{actor} drew you into a thread",
    "like": "{actor} liked your post",
    "coach_like": "{actor} appreciated your post",
    "pin": "{actor} pinned your post as a key insight",
    "share": "{actor} shared your post",
    "moderation": "{reason}",
    "report": "{actor} reported a post",
    "circle.closed": "{reason}",
    "circle.privacy": "{reason}",
    "dropin.live": "{actor} has started a drop-in. Join now",
    "dropin.reminder": "A drop-in starts in 10 minutes",
    "experiment.due": "Time to look back at your experiment. How did it go?",
    "experiment.debriefed": "{actor} debriefed an experiment",
    "care.concern": "{actor} would like you to know they are having a hard time",
}
KINDS = tuple(KIND_TEXT)
KIND_LABELS: dict[NotificationKind, str] = {
    "reply": "Replies to my posts",
    "question": "My coach's questions",
    "mention": "Mentions",
    "tag": "Being drawn into a thread",
    "like": "Likes from peers",
    "coach_like": "My coach's likes",
    "pin": "My posts pinned as key insights",
    "share": "My posts shared",
    "moderation": "Notes from my coach",
    "report": "Reports (coaches)",
    "circle.closed": "A circle closing",
    "circle.privacy": "Changes to what my coach can see",
    "dropin.live": "Drop-ins going live",
    "dropin.reminder": "Drop-in reminders",
    "experiment.due": "My experiments coming due",
    "experiment.debriefed": "Members' debriefed experiments (coaches)",
    "care.concern": "A member asking me to check in on them (coaches)",
}


class Channels(msgspec.Struct):
    in_app: bool = True
    browser: bool = True
    push: bool = True
    # By email: the kind's entries go into the member's digest; a drop-in reminder is a mail of its own.
    email: bool = False


# What reaches a digest by default: what someone did about you and your experiments coming due. Drop-in reminders
# are a mail of their own 10 minutes before the start, so they are off by default (the digest lists upcoming
# drop-ins anyway). Migration kindred_2026_12_07t09_28_00_000000 holds a copy.
EMAIL_DEFAULT = frozenset({"question", "reply", "mention", "tag", "coach_like", "pin", "share", "experiment.due"})

# Defaults: everything in the feed; peers' likes do not interrupt (no browser notification, no push).
DEFAULTS: dict[str, Channels] = {
    kind: Channels(browser=kind != "like", push=kind not in ("like", "report"), email=kind in EMAIL_DEFAULT)
    for kind in KINDS
}


def describe(kind: str, actor: str | None, reason: str | None) -> str:
    template = KIND_TEXT.get(kind, "Something happened in your circle")  # type: ignore[call-overload]
    assert isinstance(template, str)
    return template.format(actor=actor or "Someone", reason=reason or "A note from your coach")


def time_zone(name: str | None) -> ZoneInfo | None:
    """The IANA time zone called `name`, or None if there is none. ZoneInfo refuses bad names in more ways than
    ZoneInfoNotFoundError: IsADirectoryError for a region ("America"), ValueError for paths and non-zone files."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def in_quiet_hours(account: dict[str, Any], at: datetime) -> bool:
    start, end = account.get("quiet_start"), account.get("quiet_end")
    if start is None or end is None or start == end:
        return False
    zone = time_zone(account.get("timezone"))
    local = at.astimezone(zone) if zone is not None else at
    minute = local.hour * 60 + local.minute
    if start < end:
        return bool(start <= minute < end)
    return bool(minute >= start or minute < end)


def resolve(kind: str, circle_id: uuid.UUID | None, rows: list[dict[str, Any]]) -> Channels:
    """The most specific preference wins: this kind in this circle, then the circle muted as a whole, then this
    kind everywhere, then the default."""
    by_key = {(r["circle"], r["kind"]): r for r in rows}
    for key in ((circle_id, kind), (circle_id, "*"), (None, kind)):
        row = by_key.get(key) if key[0] is not None or key == (None, kind) else None
        if row is not None:
            return Channels(in_app=row["in_app"], browser=row["browser"], push=row["push"], email=bool(row["email"]))
    return msgspec.structs.replace(DEFAULTS.get(kind, Channels()))


class About(msgspec.Struct, frozen=True):
    """What a notification is about: where opening it leads, narrowest first (a post, else a room, else a circle)."""

    circle_id: uuid.UUID | None
    room_id: uuid.UUID | None = None
    post_id: uuid.UUID | None = None

    @classmethod
    def post(cls, room: RoomRow, post: PostRecord) -> About:
        """A post (a row with `id` and `room`) in `room` (a row with `circle`)."""
        return cls(room.circle, post.room, post.id)

    @classmethod
    def room(cls, row: dict[str, Any]) -> About:
        """A room, from any row with `circle` and `room` (a drop-in, say)."""
        return cls(row["circle"], row["room"])


async def members_of(circle_id: uuid.UUID, *, roles: tuple[Role, ...] = ROLES) -> list[uuid.UUID]:
    """The current memberships of a circle with one of these roles: the recipients of a circle-wide notice."""
    rows = await Membership.select(Membership.id).where(
        (Membership.circle == circle_id) & Membership.removed_at.is_null() & Membership.role.is_in(list(roles))
    )
    return [r["id"] for r in rows]


async def notify(
    outbox: Outbox,
    kind: NotificationKind,
    recipients: Iterable[uuid.UUID],
    actor: Member | None,
    about: About,
    *,
    reason: str | None = None,
) -> None:
    """Notify the accounts behind `recipients` (membership ids), never the actor themself.

    Must run inside the caller's write transaction; delivery starts when the caller publishes its outbox.
    """
    circle_id, room_id, post_id = about.circle_id, about.room_id, about.post_id
    wanted = list({m for m in recipients if actor is None or m != actor.id})
    if not wanted:
        return
    # However many recipients: one look-up per thousand of them for memberships, preferences and clocks, and one
    # INSERT per thousand rows (both backends cap a statement's parameters at 32,766). Never a query per recipient.
    accounts: set[Any] = set()
    for part in chunks(wanted):
        accounts.update(
            r["account"]
            for r in await Membership.select(Membership.account).where(
                Membership.id.is_in(part) & Membership.removed_at.is_null()
            )
        )
    if actor is not None:
        accounts.discard(actor.account)
    if not accounts:
        return
    ids = list(accounts)
    here: Any = NotificationPreference.circle.is_null()
    if circle_id is not None:
        here = here | (NotificationPreference.circle == circle_id)
    by_account: dict[Any, list[dict[str, Any]]] = {}
    clocks: dict[Any, dict[str, Any]] = {}
    for part in chunks(ids):
        for row in await NotificationPreference.select().where(
            NotificationPreference.account.is_in(part) & NotificationPreference.kind.is_in([kind, "*"]) & here
        ):
            by_account.setdefault(row["account"], []).append(row)
        for row in await Account.select(Account.id, Account.timezone, Account.quiet_start, Account.quiet_end).where(
            Account.id.is_in(part)
        ):
            clocks[row["id"]] = row
    circle = await Circle.select(Circle.name).where(Circle.id == circle_id).first() if circle_id else None
    created = now()
    actor_struct = membership_struct(actor) if actor is not None else None
    text = describe(kind, actor_struct.alias if actor_struct else None, reason)
    coach_gesture = actor is not None and actor.role == "coach"
    target = target_url(post_id, room_id, circle_id, kind)
    inserts = []
    for account_id in ids:
        channels = resolve(kind, circle_id, by_account.get(account_id, []))
        channels.in_app = channels.in_app or coach_gesture
        if in_quiet_hours(clocks.get(account_id, {}), created):
            channels.browser = channels.push = False
        if not (channels.in_app or channels.browser or channels.push):
            continue
        note_id = uuid.uuid4()
        notification = Notification(
            id=str(note_id),
            kind=kind,
            circle_id=_s(circle_id),
            room_id=_s(room_id),
            post_id=_s(post_id),
            actor=actor_struct,
            created_at=created,
            read=False,
            reason=reason,
            text=text,
        )
        if channels.in_app:
            inserts.append(
                NotificationRow(
                    id=note_id,
                    account=account_id,
                    kind=kind,
                    circle=circle_id,
                    room=room_id,
                    post_id=post_id,
                    actor=actor.id if actor is not None else None,
                    reason=reason,
                    created_at=created,
                    read_at=None,
                )
            )
        outbox.deliver(
            Delivery(
                account_id=account_id,
                notification=notification,
                # Browser notifications are shown by the reader's open pages, so they travel as frames even when
                # the feed is off for this kind; the frame then says it is not in the feed (no bell count).
                frame=channels.in_app or channels.browser,
                alert=channels.browser,
                push=channels.push,
                in_feed=channels.in_app,
                target=target,
                title=circle["name"] if circle else "Kindred",
            )
        )
    for rows in chunks(inserts):
        await NotificationRow.insert(*rows)


def _s(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


async def feed(
    account_id: uuid.UUID, *, unread: bool = False, limit: int | None = None, before: str | None = None
) -> list[Notification]:
    """Newest first, in pages. Order and paging are by (created_at, id): one write notifies many accounts at the same
    instant, so created_at alone has ties, and paging by it alone would skip some of them."""
    size = min(max(limit or DEFAULT_PAGE, 1), MAX_PAGE)
    query = NotificationRow.select().where(NotificationRow.account == account_id)
    if unread:
        query = query.where(NotificationRow.read_at.is_null())
    if before:
        anchor = (
            await NotificationRow.select(NotificationRow.id, NotificationRow.created_at)
            .where(
                (NotificationRow.id == (queries.as_uuid(before) or uuid.UUID(int=0)))
                & (NotificationRow.account == account_id)
            )
            .first()
        )
        if anchor is None:
            raise ClientException("before must be the id of one of your notifications")
        query = query.where(
            (NotificationRow.created_at < anchor["created_at"])
            | ((NotificationRow.created_at == anchor["created_at"]) & (NotificationRow.id < anchor["id"]))
        )
    rows = await query.order_by(NotificationRow.created_at, NotificationRow.id, ascending=False).limit(size)
    return await _structs(rows)


async def one(account_id: uuid.UUID, notification_id: str) -> Notification | None:
    nid = queries.as_uuid(notification_id)
    rows = await NotificationRow.select().where(
        (NotificationRow.id == (nid or uuid.UUID(int=0))) & (NotificationRow.account == account_id)
    )
    found = await _structs(rows)
    return found[0] if found else None


async def _structs(rows: list[dict[str, Any]]) -> list[Notification]:
    actors = await queries.memberships_by_id(r["actor"] for r in rows if r["actor"] is not None)
    out = []
    for r in rows:
        actor = membership_struct(actors[r["actor"]]) if r["actor"] in actors else None
        out.append(
            Notification(
                id=str(r["id"]),
                kind=r["kind"],
                circle_id=_s(r["circle"]),
                room_id=_s(r["room"]),
                post_id=_s(r["post_id"]),
                actor=actor,
                created_at=r["created_at"],
                read=r["read_at"] is not None,
                reason=r["reason"],
                text=describe(r["kind"], actor.alias if actor else None, r["reason"]),
            )
        )
    return out


async def unread_count(account_id: uuid.UUID) -> int:
    return int(
        await NotificationRow.count().where((NotificationRow.account == account_id) & NotificationRow.read_at.is_null())
    )


async def mark_read(account_id: uuid.UUID, ids: list[str] | None, everything: bool, live: Live) -> None:
    """Mark some (or all) of the account's notifications read; every open page of the account then lowers its bell."""
    if not everything and not ids:
        raise ClientException('send {"ids": [...]} or {"all": true}')
    query = NotificationRow.update({NotificationRow.read_at: now()}).where(
        (NotificationRow.account == account_id) & NotificationRow.read_at.is_null()
    )
    if not everything:
        parsed = [u for u in (queries.as_uuid(i) for i in ids or []) if u is not None]
        if not parsed:
            return
        query = query.where(NotificationRow.id.is_in(parsed))
    if await query.returning(NotificationRow.id):
        await live.notifications_read(account_id, await unread_count(account_id))


async def retire(room_id: uuid.UUID, kinds: tuple[str, ...]) -> list[uuid.UUID]:
    """Inside the caller's transaction: mark read every unread notification of these kinds about this room (a
    drop-in that has ended: its "join now" and reminder notices have nothing left to offer). Returns the accounts
    whose bells changed, for `announce_read` once committed."""
    rows = (
        await NotificationRow.update({NotificationRow.read_at: now()})
        .where(
            (NotificationRow.room == room_id)
            & NotificationRow.kind.is_in(list(kinds))
            & NotificationRow.read_at.is_null()
        )
        .returning(NotificationRow.account)
    )
    return list({r["account"] for r in rows})


async def announce_read(accounts: list[uuid.UUID], live: Live) -> None:
    """After commit: every open page of these accounts gets its new unread count (`notifications.read`)."""
    for account_id in accounts:
        await live.notifications_read(account_id, await unread_count(account_id))


async def open_target(account_id: uuid.UUID, notification_id: str, live: Live) -> str:
    """Mark one notification read and say where it leads (see target_url)."""
    nid = queries.as_uuid(notification_id)
    row = (
        await NotificationRow.select()
        .where((NotificationRow.id == (nid or uuid.UUID(int=0))) & (NotificationRow.account == account_id))
        .first()
    )
    if row is None:
        return "/notifications"
    if row["read_at"] is None:
        await mark_read(account_id, [str(row["id"])], False, live)
    return target_url(row["post_id"], row["room"], row["circle"], row["kind"])


def target_url(
    post_id: uuid.UUID | None, room_id: uuid.UUID | None, circle_id: uuid.UUID | None, kind: str = ""
) -> str:
    """Where a notification leads: the thread scrolled to the post, else the room, else the circle, else the feed; an
    experiment that has come due opens its debrief ("How did it go?")."""
    if post_id is not None and kind == "experiment.due":
        return f"/posts/{post_id}/debrief"
    if post_id is not None:
        return f"/posts/{post_id}"
    if room_id is not None:
        return f"/rooms/{room_id}"
    if circle_id is not None:
        return f"/circles/{circle_id}"
    return "/notifications"
