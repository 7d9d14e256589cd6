"""A person's right to their data: everything Kindred holds about them, as one JSON document (GET /me/export)."""

from __future__ import annotations

import uuid

from app.schemas.export import (
    Export,
    ExportDropin,
    ExportMembership,
    ExportNotification,
    ExportPin,
    ExportPost,
    ExportPush,
    ExportReport,
    ExportTag,
)
from app.services import notifications, preferences
from app.services.posts import decode_shared_from
from db import queries
from db.queries import now
from db.tables import (
    Account,
    DropinParticipant,
    Membership,
    Notification,
    Pin,
    PostLike,
    PushSubscription,
    Report,
    Tag,
)
from db.tables import Post as PostRow


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
