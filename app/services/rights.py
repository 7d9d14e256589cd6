"""A person's rights over their data: export it, change their alias, change their password, delete their account;
and a coach's right to close a circle (archived at once, deleted after a grace period)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

import msgspec
from litestar.exceptions import ClientException, NotAuthorizedException

from app.auth import passwords, tokens
from app.errors import Conflict
from app.live import Live
from app.schemas import CircleClosed, MyMembership
from app.services import notifications
from app.services.circles import clean_alias
from app.services.common import is_unique_violation, parse_id, require_coach_role, require_member
from app.services.outbox import Outbox
from app.services.posts import decode_shared_from, remove_post, shared_from_json
from db.engine import write_transaction
from db.queries import now
from db.tables import (
    Account,
    AuthToken,
    Circle,
    Membership,
    Notification,
    PostLike,
    PushSubscription,
    RoomEvent,
)
from db.tables import Post as PostRow
from realtime.events import Post, encode_event, encoder, event_decoder

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


class ExportMembership(msgspec.Struct):
    circle_id: str
    circle: str
    alias: str
    role: str
    joined_at: datetime
    left_at: datetime | None


class Export(msgspec.Struct):
    """Everything Kindred holds about one account, in one document."""

    exported_at: datetime
    account: dict[str, Any]
    memberships: list[ExportMembership]
    posts: list[ExportPost]
    likes: list[str]
    notifications: list[dict[str, Any]]


async def export(account_id: uuid.UUID) -> Export:
    account = (
        await Account.select(Account.id, Account.email, Account.name, Account.created_at)
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
        Membership.circle.name.as_alias("circle_name"),
    ).where(Membership.account == account_id)
    mids = [m["id"] for m in memberships]
    circle_of = {m["id"]: m["circle_name"] for m in memberships}
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
            PostRow.room.name.as_alias("room_name"),
        )
        .where(PostRow.author.is_in(mids))
        .order_by(PostRow.created_at)
        if mids
        else []
    )
    likes = await PostLike.select(PostLike.post).where(PostLike.membership.is_in(mids)) if mids else []
    notes = await notifications.feed(account_id, limit=100)
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
            )
            for p in post_rows
        ],
        likes=[str(like["post"]) for like in likes],
        notifications=[msgspec.to_builtins(n) for n in notes],
    )


async def _rewrite_author_alias(membership_id: uuid.UUID, alias: str) -> None:
    """Make the alias a member left behind unrecoverable from anything peers can read. Runs inside the caller's
    transaction. The member's posts (rows are joined at read time) and their events in the room log get the new
    alias; shares naming them as `shared_from.author` too; and @mentions of them in other people's posts keep the
    writer's words but lose the link to the membership, so the old alias cannot be tied to the new one."""
    mid = str(membership_id)
    link = f'<span class="mention" data-membership="{mid}">'
    events = await RoomEvent.select(RoomEvent.id, RoomEvent.room, RoomEvent.seq, RoomEvent.type, RoomEvent.data).where(
        RoomEvent.type.is_in(["post.created", "post.updated"]) & RoomEvent.data.like(f"%{mid}%")
    )
    for e in events:
        event = event_decoder.decode(encode_event(str(e["room"]), e["seq"], e["type"], e["data"].encode()))
        if not isinstance(event.data, Post):
            continue
        post = _relabel(event.data, mid, alias)
        post.html = post.html.replace(link, '<span class="mention">')
        await RoomEvent.update({RoomEvent.data: encoder.encode(post).decode()}).where(RoomEvent.id == e["id"])
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


async def change_alias(account_id: uuid.UUID, circle_id: str, alias: str) -> MyMembership:
    cid = parse_id(circle_id, "circle")
    me = await require_member(account_id, cid)
    alias = clean_alias(alias)
    try:
        async with write_transaction():
            await Membership.update({Membership.alias: alias, Membership.alias_key: alias.casefold()}).where(
                Membership.id == me["id"]
            )
            await _rewrite_author_alias(me["id"], alias)
    except Exception as exc:
        if is_unique_violation(exc):
            raise Conflict("that alias is taken in this circle; choose another") from None
        raise
    return MyMembership(membership_id=str(me["id"]), circle_id=str(cid), alias=alias, role=me["role"])


async def change_password(account_id: uuid.UUID, current_token: uuid.UUID, current: str, new: str, live: Live) -> None:
    account = (
        await Account.select(Account.email, Account.name, Account.password_hash).where(Account.id == account_id).first()
    )
    assert account is not None
    if not await passwords.verify_password(account["password_hash"], current):
        raise NotAuthorizedException("your current password is not right")
    problem = passwords.password_problem(new, email=account["email"], name=account["name"])
    if problem:
        raise ClientException(problem)
    hashed = await passwords.hash_password(new)
    await Account.update({Account.password_hash: hashed, Account.password_changed_at: now()}).where(
        Account.id == account_id
    )
    # Every other sign-in ends, and every socket closes (this sign-in's sockets reconnect with its token).
    await tokens.revoke_all(account_id, except_token=current_token)
    await live.signed_out(account_id, None)


async def delete_account(
    account_id: uuid.UUID, password: str, posts: Literal["anonymize", "remove"], live: Live
) -> None:
    """Erase the account: its email, name, password, sign-ins and notifications. Posts are removed, or stay as
    "Former member" (the account's choice); either way no alias of theirs remains anywhere."""
    account = (
        await Account.select(Account.password_hash)
        .where((Account.id == account_id) & Account.deleted_at.is_null())
        .first()
    )
    if account is None or not await passwords.verify_password(account["password_hash"], password):
        raise NotAuthorizedException("your password is not right")
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
                    Membership.alias: former,
                    Membership.alias_key: former.casefold(),
                    Membership.removed_at: m["removed_at"] or now(),
                }
            ).where(Membership.id == m["id"])
            await _rewrite_author_alias(m["id"], former)
        await Notification.delete().where(Notification.account == account_id)
        await PushSubscription.delete().where(PushSubscription.account == account_id)
        await AuthToken.delete().where(AuthToken.account == account_id)
        await Account.update(
            {
                Account.email: f"deleted-{account_id}@deleted.invalid",
                Account.name: "",
                Account.password_hash: "",
                Account.deleted_at: now(),
            }
        ).where(Account.id == account_id)
    await outbox.publish(live)
    for m in memberships:
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
    await Circle.update({Circle.closed_at: None, Circle.delete_after: None}).where(Circle.id == cid)
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
