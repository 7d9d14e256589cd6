"""A person's rights over their data: export it, change their alias, change their password, delete their account;
and a coach's right to close a circle (archived at once, deleted after a grace period)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

import msgspec
from litestar.exceptions import ClientException, PermissionDeniedException

from app.auth import passwords, tokens
from app.errors import Conflict
from app.live import Live
from app.schemas import CircleClosed, MyMembership, Preferences
from app.services import audit, dropins, notifications, preferences
from app.services.circles import ALIAS_TAKEN, alias_columns, alias_taken, clean_alias
from app.services.common import is_unique_violation, parse_id, require_can_write, require_coach_role, require_member
from app.services.outbox import Outbox
from app.services.posts import decode_shared_from, remove_post, shared_from_json
from db import queries
from db.engine import write_transaction
from db.queries import now
from db.tables import (
    Account,
    AuthToken,
    Circle,
    DropinParticipant,
    Membership,
    Notification,
    NotificationPreference,
    Pin,
    PostLike,
    PushSubscription,
    Report,
    Room,
    RoomEvent,
    Tag,
)
from db.tables import Post as PostRow
from realtime.events import Dropin, Post, SharedFrom, encode_event, encoder, event_decoder
from realtime.events import Membership as PublicMembership

# How long a closed circle can still be reopened before it and everything in it is deleted.
CLOSE_GRACE = timedelta(days=30)
FORMER_MEMBER = "Former member"


class ExportPost(msgspec.Struct):
    id: str
    circle: str
    room: str
    kind: str
    body: str
    created_at: datetime
    edited_at: datetime | None
    deleted: bool
    parent_id: str | None
    # Set when the post is a share: where it came from (as peers saw it) and the note.
    shared_from: SharedFrom | None = None
    pinned: bool = False


class ExportMembership(msgspec.Struct):
    circle_id: str
    circle: str
    alias: str
    role: str
    joined_at: datetime
    left_at: datetime | None
    ended_by: str | None = None
    coach_sees_identity: bool = False
    muted_until: datetime | None = None


class ExportReport(msgspec.Struct):
    """A report this account filed: the post it was about (by id) and its own words."""

    post_id: str
    circle: str
    reason: str
    created_at: datetime
    resolution: str | None


class ExportPin(msgspec.Struct):
    """A post this account pinned as a key insight (as a coach)."""

    post_id: str
    circle: str
    note: str | None
    pinned_at: datetime


class ExportTag(msgspec.Struct):
    """A tag this account made (`by_me`) or received: the post, and the other member by alias."""

    post_id: str
    circle: str
    by_me: bool
    other: str
    created_at: datetime


class ExportDropin(msgspec.Struct):
    dropin_id: str
    circle: str
    title: str
    starts_at: datetime
    joined_at: datetime


class ExportPush(msgspec.Struct):
    endpoint: str
    created_at: datetime


class ExportNotification(msgspec.Struct):
    id: str
    kind: str
    circle_id: str | None
    post_id: str | None
    actor: str | None
    text: str
    created_at: datetime
    read: bool


class Export(msgspec.Struct):
    """Everything Kindred holds about one account, in one document."""

    exported_at: datetime
    account: dict[str, Any]
    memberships: list[ExportMembership]
    posts: list[ExportPost]
    likes: list[str]
    notifications: list[ExportNotification]
    reports: list[ExportReport]
    pins: list[ExportPin]
    tags: list[ExportTag]
    dropins: list[ExportDropin]
    push_subscriptions: list[ExportPush]
    notification_preferences: Preferences


async def export(account_id: uuid.UUID) -> Export:
    account = (
        await Account.select(Account.id, Account.email, Account.name, Account.created_at, Account.timezone)
        .where(Account.id == account_id)
        .first()
    )
    assert account is not None
    memberships = await Membership.select(
        Membership.id,
        Membership.circle,
        Membership.alias,
        Membership.role,
        Membership.joined_at,
        Membership.removed_at,
        Membership.ended_by,
        Membership.coach_sees_identity,
        Membership.muted_until,
        Membership.circle.name.as_alias("circle_name"),
    ).where(Membership.account == account_id)
    mids = [m["id"] for m in memberships]
    circle_of = {m["id"]: m["circle_name"] for m in memberships}
    circle_by_id = {m["circle"]: m["circle_name"] for m in memberships}
    post_rows = (
        await PostRow.select(
            PostRow.id,
            PostRow.author,
            PostRow.kind,
            PostRow.body,
            PostRow.created_at,
            PostRow.edited_at,
            PostRow.deleted_at,
            PostRow.parent,
            PostRow.shared_from,
            PostRow.pinned,
            PostRow.room.name.as_alias("room_name"),
        )
        .where(PostRow.author.is_in(mids))
        .order_by(PostRow.created_at)
        if mids
        else []
    )
    likes = await PostLike.select(PostLike.post).where(PostLike.membership.is_in(mids)) if mids else []
    return Export(
        exported_at=now(),
        account={
            "id": str(account["id"]),
            "email": account["email"],
            "name": account["name"],
            "created_at": account["created_at"].isoformat(),
        },
        memberships=[
            ExportMembership(
                circle_id=str(m["circle"]),
                circle=m["circle_name"],
                alias=m["alias"],
                role=m["role"],
                joined_at=m["joined_at"],
                left_at=m["removed_at"],
                ended_by=m["ended_by"],
                coach_sees_identity=bool(m["coach_sees_identity"]),
                muted_until=m["muted_until"],
            )
            for m in memberships
        ],
        posts=[
            ExportPost(
                id=str(p["id"]),
                circle=circle_of[p["author"]],
                room=p["room_name"],
                kind=p["kind"],
                body=p["body"],
                created_at=p["created_at"],
                edited_at=p["edited_at"],
                deleted=p["deleted_at"] is not None,
                parent_id=str(p["parent"]) if p["parent"] else None,
                shared_from=decode_shared_from(p["shared_from"]) if p["shared_from"] else None,
                pinned=bool(p["pinned"]),
            )
            for p in post_rows
        ],
        likes=[str(like["post"]) for like in likes],
        notifications=await _export_notifications(account_id),
        reports=await _export_reports(mids, circle_of),
        pins=await _export_pins(mids, circle_of),
        tags=await _export_tags(mids, circle_of),
        dropins=await _export_dropins(mids, circle_by_id),
        push_subscriptions=[
            ExportPush(endpoint=r["endpoint"], created_at=r["created_at"])
            for r in await PushSubscription.select(PushSubscription.endpoint, PushSubscription.created_at).where(
                PushSubscription.account == account_id
            )
        ],
        notification_preferences=await preferences.get(account_id),
    )


async def _export_notifications(account_id: uuid.UUID) -> list[ExportNotification]:
    """Every notification, not a page of them."""
    rows = (
        await Notification.select()
        .where(Notification.account == account_id)
        .order_by(Notification.created_at, ascending=False)
    )
    actors = await queries.memberships_by_id(r["actor"] for r in rows if r["actor"] is not None)
    out = []
    for r in rows:
        actor = actors[r["actor"]]["alias"] if r["actor"] in actors else None
        out.append(
            ExportNotification(
                id=str(r["id"]),
                kind=r["kind"],
                circle_id=str(r["circle"]) if r["circle"] else None,
                post_id=str(r["post_id"]) if r["post_id"] else None,
                actor=actor,
                text=notifications.describe(r["kind"], actor, r["reason"]),
                created_at=r["created_at"],
                read=r["read_at"] is not None,
            )
        )
    return out


async def _export_reports(mids: list[uuid.UUID], circle_of: dict[uuid.UUID, str]) -> list[ExportReport]:
    if not mids:
        return []
    rows = await Report.select().where(Report.reporter.is_in(mids)).order_by(Report.created_at)
    return [
        ExportReport(
            post_id=str(r["post"]),
            circle=circle_of[r["reporter"]],
            reason=r["reason"],
            created_at=r["created_at"],
            resolution=r["resolution"],
        )
        for r in rows
    ]


async def _export_pins(mids: list[uuid.UUID], circle_of: dict[uuid.UUID, str]) -> list[ExportPin]:
    if not mids:
        return []
    rows = await Pin.select().where(Pin.pinned_by.is_in(mids)).order_by(Pin.pinned_at)
    return [
        ExportPin(post_id=str(r["post"]), circle=circle_of[r["pinned_by"]], note=r["note"], pinned_at=r["pinned_at"])
        for r in rows
    ]


async def _export_tags(mids: list[uuid.UUID], circle_of: dict[uuid.UUID, str]) -> list[ExportTag]:
    if not mids:
        return []
    rows = await Tag.select().where(Tag.membership.is_in(mids) | Tag.tagged_by.is_in(mids)).order_by(Tag.created_at)
    people = await queries.memberships_by_id([r["membership"] for r in rows] + [r["tagged_by"] for r in rows])
    out = []
    for r in rows:
        by_me = r["tagged_by"] in circle_of
        mine, other = (r["tagged_by"], r["membership"]) if by_me else (r["membership"], r["tagged_by"])
        out.append(
            ExportTag(
                post_id=str(r["post"]),
                circle=circle_of[mine],
                by_me=by_me,
                other=people[other]["alias"] if other in people else "",
                created_at=r["created_at"],
            )
        )
    return out


async def _export_dropins(mids: list[uuid.UUID], circle_by_id: dict[uuid.UUID, str]) -> list[ExportDropin]:
    if not mids:
        return []
    rows = await DropinParticipant.select(
        DropinParticipant.joined_at,
        DropinParticipant.dropin.id.as_alias("dropin_id"),
        DropinParticipant.dropin.title.as_alias("title"),
        DropinParticipant.dropin.circle.as_alias("circle"),
        DropinParticipant.dropin.starts_at.as_alias("starts_at"),
    ).where(DropinParticipant.membership.is_in(mids))
    return [
        ExportDropin(
            dropin_id=str(r["dropin_id"]),
            circle=circle_by_id.get(r["circle"], ""),
            title=r["title"],
            starts_at=r["starts_at"],
            joined_at=r["joined_at"],
        )
        for r in rows
    ]


async def _rewrite_author_alias(membership_id: uuid.UUID, alias: str) -> None:
    """Make the alias a member left behind unrecoverable from anything peers can read. Runs inside the caller's
    transaction. The member's posts (rows are joined at read time) and their events in the room log get the new
    alias; shares naming them as `shared_from.author` too; and @mentions of them in other people's posts keep the
    writer's words but lose the link to the membership, so the old alias cannot be tied to the new one."""
    mid = str(membership_id)
    link = f'<span class="mention" data-membership="{mid}">'
    events = await RoomEvent.select(RoomEvent.id, RoomEvent.room, RoomEvent.seq, RoomEvent.type, RoomEvent.data).where(
        RoomEvent.type.is_in(["post.created", "post.updated", "dropin.state"]) & RoomEvent.data.like(f"%{mid}%")
    )
    for e in events:
        event = event_decoder.decode(encode_event(str(e["room"]), e["seq"], e["type"], e["data"].encode()))
        data: Post | Dropin
        if isinstance(event.data, Post):
            data = _relabel(event.data, mid, alias)
            data.html = data.html.replace(link, '<span class="mention">')
        elif isinstance(event.data, Dropin) and (event.data.spotlight_post is not None or event.data.called):
            # A drop-in's state carries its spotlighted post, author and all, and the member called on.
            data = event.data
            if event.data.spotlight_post is not None:
                spotlit = _relabel(event.data.spotlight_post, mid, alias)
                spotlit.html = spotlit.html.replace(link, '<span class="mention">')
                data.spotlight_post = spotlit
            if data.called is not None and data.called.membership_id == mid:
                data.called = msgspec.structs.replace(data.called, alias=alias)
        else:
            continue
        await RoomEvent.update({RoomEvent.data: encoder.encode(data).decode()}).where(RoomEvent.id == e["id"])
    for row in await PostRow.select(PostRow.id, PostRow.html, PostRow.shared_from).where(
        PostRow.html.like(f"%{link}%") | PostRow.shared_from.like(f"%{mid}%")
    ):
        values: dict[Any, Any] = {PostRow.html: row["html"].replace(link, '<span class="mention">')}
        if row["shared_from"]:
            shared = decode_shared_from(row["shared_from"])
            if shared.author is not None and shared.author.membership_id == mid:
                relabelled = msgspec.structs.replace(shared.author, alias=alias)
                values[PostRow.shared_from] = shared_from_json(msgspec.structs.replace(shared, author=relabelled))
        await PostRow.update(values).where(PostRow.id == row["id"])


def _relabel(post: Post, membership_id: str, alias: str) -> Post:
    if post.author.membership_id == membership_id:
        post.author = msgspec.structs.replace(post.author, alias=alias)
    shared = post.shared_from
    if shared is not None and shared.author is not None and shared.author.membership_id == membership_id:
        post.shared_from = msgspec.structs.replace(shared, author=msgspec.structs.replace(shared.author, alias=alias))
    return post


async def change_alias(account_id: uuid.UUID, circle_id: str, alias: str, live: Live) -> MyMembership:
    cid = parse_id(circle_id, "circle")
    me = await require_member(account_id, cid)
    # A new alias is a new face in the circle: not while muted, not in a closed (read-only) circle.
    require_can_write(me)
    alias = clean_alias(alias)
    try:
        async with write_transaction():
            if clash := await alias_taken(cid, alias, account_id, except_membership=me["id"]):
                raise Conflict(clash)
            await Membership.update(alias_columns(alias)).where(Membership.id == me["id"])
            await _rewrite_author_alias(me["id"], alias)
    except Exception as exc:
        if is_unique_violation(exc):
            raise Conflict(ALIAS_TAKEN) from None
        raise
    rooms = [r["id"] for r in await Room.select(Room.id).where(Room.circle == cid)]
    who = PublicMembership(membership_id=str(me["id"]), alias=alias, role=me["role"])
    await live.alias_changed(account_id, cid, who, rooms)
    return MyMembership(membership_id=str(me["id"]), circle_id=str(cid), alias=alias, role=me["role"])


async def change_password(account_id: uuid.UUID, current_token: uuid.UUID, current: str, new: str, live: Live) -> None:
    account = (
        await Account.select(Account.email, Account.name, Account.password_hash).where(Account.id == account_id).first()
    )
    assert account is not None
    # Judged before the current password is checked, so a weak new one never costs a guess of the current one.
    problem = passwords.password_problem(new, email=account["email"], name=account["name"])
    if problem:
        raise ClientException(problem)
    if not await passwords.verify_password(account["password_hash"], current):
        raise PermissionDeniedException(WRONG_PASSWORD)
    hashed = await passwords.hash_password(new)
    await Account.update({Account.password_hash: hashed, Account.password_changed_at: now()}).where(
        Account.id == account_id
    )
    # Every other sign-in ends, and every socket closes (this sign-in's sockets reconnect with its token).
    await tokens.revoke_all(account_id, except_token=current_token)
    await live.signed_out(account_id, None)


# 403, not 401: the caller is signed in (401 means "not signed in" in the contract); this proves it is them.
WRONG_PASSWORD = "that is not your current password; type it again (after a few wrong tries you must wait a while)"


async def _refuse_orphaning(account_id: uuid.UUID) -> None:
    """A coach who deletes their account would leave open circles with nobody to run, reopen or close them. They are
    asked to close those first: members are told, can read on for the grace period, and the coach decides when."""
    coached = await Membership.select(Membership.circle, Membership.circle.name.as_alias("circle_name")).where(
        (Membership.account == account_id)
        & (Membership.role == "coach")
        & Membership.removed_at.is_null()
        & Membership.circle.closed_at.is_null()
    )
    alone = []
    for m in coached:
        others = await Membership.exists().where(
            (Membership.circle == m["circle"])
            & (Membership.role == "coach")
            & Membership.removed_at.is_null()
            & (Membership.account != account_id)
        )
        if not others:
            alone.append(m["circle_name"])
    if alone:
        names = ", ".join(f"“{name}”" for name in sorted(alone))
        raise Conflict(
            f"you are the only coach of {names}: close {'that circle' if len(alone) == 1 else 'those circles'} first "
            "(its members are told and can still read it for 30 days), then delete your account"
        )


async def delete_account(
    account_id: uuid.UUID, password: str, posts: Literal["anonymize", "remove"], live: Live
) -> None:
    """Erase the account: its email, name, password, sign-ins and notifications. Posts are removed, or stay as
    "Former member" (the account's choice); either way no alias of theirs remains anywhere."""
    await _refuse_orphaning(account_id)
    account = (
        await Account.select(Account.password_hash)
        .where((Account.id == account_id) & Account.deleted_at.is_null())
        .first()
    )
    if account is None or not await passwords.verify_password(account["password_hash"], password):
        raise PermissionDeniedException(WRONG_PASSWORD)
    memberships = await Membership.select().where(Membership.account == account_id)
    outbox = Outbox()
    async with write_transaction():
        for m in memberships:
            if posts == "remove":
                rows = await PostRow.select().where((PostRow.author == m["id"]) & PostRow.deleted_at.is_null())
                for row in rows:
                    await remove_post(outbox, row, reason=None)
            # The alias is freed and replaced everywhere; the membership stays only as the author of kept posts.
            former = f"{FORMER_MEMBER} {str(m['id'])[:4]}"
            await Membership.update(
                {
                    **alias_columns(former),
                    Membership.removed_at: m["removed_at"] or now(),
                    Membership.ended_by: m["ended_by"] or "deleted",
                    Membership.mute_reason: None,
                }
            ).where(Membership.id == m["id"])
            await _rewrite_author_alias(m["id"], former)
        # The account row is kept (erased) rather than deleted, so nothing cascades: what is personal goes here.
        mids = [m["id"] for m in memberships]
        lowered: list[uuid.UUID] = []
        if mids:
            await Report.delete().where(Report.reporter.is_in(mids))
            lowered = await dropins.lower_hands_of(mids)
        await Notification.delete().where(Notification.account == account_id)
        await NotificationPreference.delete().where(NotificationPreference.account == account_id)
        await PushSubscription.delete().where(PushSubscription.account == account_id)
        await AuthToken.delete().where(AuthToken.account == account_id)
        await Account.update(
            {
                Account.email: f"deleted-{account_id}@deleted.invalid",
                Account.name: "",
                Account.password_hash: "",
                Account.deleted_at: now(),
                Account.timezone: "UTC",
                Account.quiet_start: None,
                Account.quiet_end: None,
            }
        ).where(Account.id == account_id)
    await outbox.publish(live)
    await dropins.refresh_hands(lowered, live)
    for m in memberships:
        rooms = [r["id"] for r in await Room.select(Room.id).where(Room.circle == m["circle"])]
        gone = PublicMembership(membership_id=str(m["id"]), alias=f"{FORMER_MEMBER} {str(m['id'])[:4]}", role=m["role"])
        await live.alias_changed(account_id, m["circle"], gone, rooms)
        await live.revoke(account_id, m["circle"])
    await live.signed_out(account_id, None)


async def close_circle(account_id: uuid.UUID, circle_id: str, live: Live) -> CircleClosed:
    cid = parse_id(circle_id, "circle")
    me = await require_member(account_id, cid)
    require_coach_role(me, "close the circle")
    closed_at, delete_after = now(), now() + CLOSE_GRACE
    outbox = Outbox()
    async with write_transaction():
        await Circle.update({Circle.closed_at: closed_at, Circle.delete_after: delete_after}).where(Circle.id == cid)
        await audit.record(cid, me, "close")
        members = await Membership.select(Membership.id).where(
            (Membership.circle == cid) & Membership.removed_at.is_null()
        )
        await notifications.notify(
            outbox,
            kind="circle.closed",
            recipients=[m["id"] for m in members],
            actor=me,
            circle_id=cid,
            room_id=None,
            post_id=None,
            reason=f"Your coach closed this circle. It stays readable until {delete_after:%d %b %Y}, then it is deleted.",
        )
    await outbox.publish(live)
    return CircleClosed(id=str(cid), closed_at=_iso(closed_at), delete_after=_iso(delete_after))


async def reopen_circle(account_id: uuid.UUID, circle_id: str) -> CircleClosed:
    cid = parse_id(circle_id, "circle")
    me = await require_member(account_id, cid)
    require_coach_role(me, "reopen the circle")
    async with write_transaction():
        await Circle.update({Circle.closed_at: None, Circle.delete_after: None}).where(Circle.id == cid)
        await audit.record(cid, me, "reopen")
    return CircleClosed(id=str(cid), closed_at=None, delete_after=None)


async def purge_closed_circles() -> int:
    """Delete circles whose grace period has passed, with everything in them (cascading). Returns how many."""
    due = await Circle.select(Circle.id).where(Circle.delete_after.is_not_null() & (Circle.delete_after <= now()))
    for circle in due:
        await Circle.delete().where(Circle.id == circle["id"])
    return len(due)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


async def closed_state(circle_id: str) -> dict[str, Any] | None:
    """When and until when the circle is closed, or None while it is open."""
    row = (
        await Circle.select(Circle.closed_at, Circle.delete_after)
        .where((Circle.id == parse_id(circle_id, "circle")) & Circle.closed_at.is_not_null())
        .first()
    )
    return row
