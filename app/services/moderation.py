"""Moderation: the coach hides or removes posts (with a reason the author sees), pauses or removes members, and works
through members' reports. Every action is live and lands in the circle's audit log in the same transaction."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import msgspec
from litestar.exceptions import ClientException, PermissionDeniedException

from app.errors import Conflict, not_found
from app.live import Live
from app.schemas.moderation import AuditEntry, FormerMember, MuteOut, ReportOut, Resolution
from app.services import audit, dropins, notifications
from app.services.common import (
    load_for,
    member_of_its_circle,
    membership_struct,
    parse_id,
    require_coach_role,
    require_member,
    require_readable,
)
from app.services.notifications import About
from app.services.outbox import Outbox, unit_of_work
from app.services.posts import authors_of, follow_original, post_and_access, post_struct, remove_post
from db import queries
from db.engine import write_transaction
from db.queries import now
from db.rows import Member, PostRecord, RoomRow, as_member
from db.tables import Membership, ModerationLog, Report
from db.tables import Post as PostRow
from realtime.events import Post, PostUpdated, encoder

MAX_REASON = 500
# A pause longer than this is a removal; the coach should say so.
MAX_MUTE_MINUTES = 60 * 24 * 30


def _reason(reason: str | None, *, required: bool = False) -> str | None:
    cleaned = (reason or "").strip()[:MAX_REASON] or None
    if required and cleaned is None:
        raise ClientException("give a reason: the member will read it")
    return cleaned


# Moderation actions are written to the circle's audit log.
_log = audit.record


async def _coach_on_post(account_id: uuid.UUID, post_id: str) -> tuple[PostRecord, RoomRow, Member]:
    row, room, me = await post_and_access(account_id, post_id)
    require_coach_role(me, "moderate posts")
    if row.deleted_at is not None:
        raise not_found("post")
    return row, room, me


async def _set_hidden(outbox: Outbox, row: PostRecord, me: Member, reason: str | None) -> None:
    """Hide (reason given) or restore (None) inside the caller's transaction; the log keeps only the peer view."""
    seq = await outbox.next_seq(row.room)
    hidden_at = now() if reason is not None else None
    changed = msgspec.structs.replace(row, hidden_at=hidden_at, moderation_reason=reason)
    await PostRow.update({PostRow.hidden_at: hidden_at, PostRow.moderation_reason: reason}).where(PostRow.id == row.id)
    peer_view = post_struct(changed, (await authors_of([row]))[row.author])
    await queries.rewrite_post_events(row.id, encoder.encode(peer_view))
    await outbox.append(PostUpdated(room_id=str(row.room), seq=seq, data=peer_view), post_id=row.id)
    await follow_original(outbox, changed, peer_view, "hidden" if reason is not None else "restored")


async def hide_post(account_id: uuid.UUID, post_id: str, reason: str | None, live: Live) -> Post:
    row, room, me = await _coach_on_post(account_id, post_id)
    text = _reason(reason, required=True)
    async with unit_of_work(live) as outbox:
        await _set_hidden(outbox, row, me, text)
        await _log(room.circle, me, "hide", post_id=row.id, reason=text)
        await notifications.notify(
            outbox, "moderation", [row.author], me, About.post(room, row), reason=f"Your post was hidden: {text}"
        )
    fresh = await queries.post_where(PostRow.id == row.id)
    assert fresh is not None
    return post_struct(fresh, (await authors_of([fresh]))[fresh.author], me)


async def restore_post(account_id: uuid.UUID, post_id: str, live: Live) -> Post:
    row, room, me = await _coach_on_post(account_id, post_id)
    if row.hidden_at is None:
        raise Conflict("that post is not hidden")
    if row.hidden_with_origin:
        raise Conflict("this share is hidden because the post it shares is hidden; show the original again instead")
    async with unit_of_work(live) as outbox:
        await _set_hidden(outbox, row, me, None)
        await _log(room.circle, me, "restore", post_id=row.id)
    fresh = await queries.post_where(PostRow.id == row.id)
    assert fresh is not None
    return post_struct(fresh, (await authors_of([fresh]))[fresh.author], me)


async def remove_post_with_reason(account_id: uuid.UUID, post_id: str, reason: str | None, live: Live) -> None:
    row, room, me = await _coach_on_post(account_id, post_id)
    text = _reason(reason, required=True)
    async with unit_of_work(live) as outbox:
        await remove_post(outbox, row, reason=text)
        await _log(room.circle, me, "remove", post_id=row.id, reason=text)
        await notifications.notify(
            outbox,
            "moderation",
            [row.author],
            me,
            About(room.circle, row.room),
            reason=f"Your post was removed: {text}",
        )


async def _target_member(account_id: uuid.UUID, circle_id: str, membership_id: str) -> tuple[uuid.UUID, Member, Member]:
    cid = parse_id(circle_id, "circle")
    me = await require_member(account_id, cid)
    target = (
        await Membership.select()
        .where(
            (Membership.id == parse_id(membership_id, "member"))
            & (Membership.circle == cid)
            & Membership.removed_at.is_null()
        )
        .first()
    )
    if target is None:
        raise not_found("member")
    return cid, me, as_member(target)


async def mute(
    account_id: uuid.UUID, circle_id: str, membership_id: str, minutes: int, reason: str | None, live: Live
) -> MuteOut:
    cid, me, target = await _target_member(account_id, circle_id, membership_id)
    require_coach_role(me, "pause a member's posting")
    if target.role == "coach":
        raise ClientException("a coach cannot be paused")
    if not 1 <= minutes <= MAX_MUTE_MINUTES:
        raise ClientException(f"pause for 1 to {MAX_MUTE_MINUTES:,} minutes (30 days); longer is a removal")
    text = _reason(reason)
    until = now() + timedelta(minutes=minutes)
    async with unit_of_work(live) as outbox:
        await Membership.update({Membership.muted_until: until, Membership.mute_reason: text}).where(
            Membership.id == target.id
        )
        await _log(cid, me, "mute", member=target.id, reason=text)
        outbox.access_changed(cid)
        await notifications.notify(
            outbox,
            "moderation",
            [target.id],
            me,
            About(cid),
            reason=f"Your coach paused your posting until {until:%d %b %Y, %H:%M} UTC" + (f": {text}" if text else ""),
        )
    return MuteOut(membership_id=str(target.id), muted_until=until, reason=text)


async def unmute(account_id: uuid.UUID, circle_id: str, membership_id: str, live: Live) -> MuteOut:
    cid, me, target = await _target_member(account_id, circle_id, membership_id)
    require_coach_role(me, "resume a member's posting")
    async with unit_of_work(live) as outbox:
        await Membership.update({Membership.muted_until: None, Membership.mute_reason: None}).where(
            Membership.id == target.id
        )
        await _log(cid, me, "unmute", member=target.id)
        outbox.access_changed(cid)
        await notifications.notify(outbox, "moderation", [target.id], me, About(cid), reason="You can post again.")
    return MuteOut(membership_id=str(target.id), muted_until=None, reason=None)


async def remove_member(
    account_id: uuid.UUID, circle_id: str, membership_id: str, reason: str | None, live: Live
) -> None:
    """The coach removes a member, or a member leaves. Their sockets stop receiving the circle at once."""
    cid, me, target = await _target_member(account_id, circle_id, membership_id)
    leaving = target.id == me.id
    if not leaving and me.role != "coach":
        raise PermissionDeniedException("only the circle's coach can remove someone else")
    if target.role == "coach":
        raise Conflict("a circle keeps its coach; close the circle instead")
    text = _reason(reason)
    async with write_transaction():
        # Someone who leaves may come back with an invite; someone the coach removed may not, until the coach says so.
        await Membership.update(
            {
                Membership.removed_at: now(),
                Membership.ended_by: "left" if leaving else "removed",
                Membership.rejoin_blocked: not leaving,
            }
        ).where(Membership.id == target.id)
        await _log(cid, me, "leave" if leaving else "remove_member", member=target.id, reason=text)
        lowered = await dropins.lower_hands_of([target.id])
    await live.revoke(target.account, cid)
    await dropins.refresh_hands(lowered, live)


def _former(row: dict[str, Any]) -> FormerMember:
    return FormerMember(
        membership_id=str(row["id"]),
        alias=row["alias"],
        ended_by="removed" if row["ended_by"] == "removed" else "left",
        ended_at=row["removed_at"],
        rejoin_blocked=bool(row["rejoin_blocked"]),
    )


async def former_members(account_id: uuid.UUID, circle_id: str) -> list[FormerMember]:
    """Who left or was removed, newest first; erased accounts are not listed (there is no one to let back)."""
    cid = parse_id(circle_id, "circle")
    me = await require_member(account_id, cid)
    require_coach_role(me, "see who left the circle")
    rows = (
        await Membership.select(
            Membership.id, Membership.alias, Membership.ended_by, Membership.removed_at, Membership.rejoin_blocked
        )
        .where(
            (Membership.circle == cid)
            & Membership.removed_at.is_not_null()
            & Membership.ended_by.is_in(["left", "removed"])
        )
        .order_by(Membership.removed_at, ascending=False)
        .limit(200)
    )
    return [_former(r) for r in rows]


async def allow_rejoin(account_id: uuid.UUID, circle_id: str, membership_id: str) -> FormerMember:
    """Lift a removal: the account may join again with an invite (it is not let in by this alone)."""
    cid = parse_id(circle_id, "circle")
    me = await require_member(account_id, cid)
    require_coach_role(me, "let a removed member back")
    target = (
        await Membership.select()
        .where(
            (Membership.id == parse_id(membership_id, "member"))
            & (Membership.circle == cid)
            & Membership.removed_at.is_not_null()
            & Membership.ended_by.is_in(["left", "removed"])
        )
        .first()
    )
    if target is None:
        raise not_found("member")
    if not target["rejoin_blocked"]:
        raise Conflict("that member is not barred from rejoining")
    async with write_transaction():
        await Membership.update({Membership.rejoin_blocked: False}).where(Membership.id == target["id"])
        await _log(cid, me, "allow_rejoin", member=target["id"])
    return _former({**target, "rejoin_blocked": False})


async def report(account_id: uuid.UUID, post_id: str, reason: str | None, live: Live) -> ReportOut:
    row, room, me = await post_and_access(account_id, post_id)
    require_readable(row, me)
    if me.circle_closed_at is not None:
        # A muted member may still report (safety does not wait); a closed circle has no coach on duty to read it.
        raise Conflict("this circle has been closed by its coach; reports are no longer taken")
    if row.author == me.id:
        raise ClientException("you cannot report your own post; edit or delete it instead")
    text = _reason(reason, required=True)
    assert text is not None
    existing = await Report.select().where((Report.post == row.id) & (Report.reporter == me.id)).first()
    if existing is not None and existing["resolved_at"] is None:
        # Still open: the coach has it; a second tap sends nothing new.
        return await _report_out(existing, me)
    report_id = existing["id"] if existing is not None else uuid.uuid4()
    async with unit_of_work(live) as outbox:
        if existing is not None:
            # The coach looked at it before and the post is (again) there to read: reporting it again reopens the
            # report with the new reason, back at the top of the coach's queue. The earlier outcome stays in the
            # audit log.
            await Report.update(
                {Report.reason: text, Report.created_at: now(), Report.resolved_at: None, Report.resolution: None}
            ).where(Report.id == report_id)
            await _log(room.circle, me, "report_reopened", post_id=row.id, reason=text)
        else:
            await Report.insert(
                Report(
                    id=report_id,
                    post=row.id,
                    circle=room.circle,
                    reporter=me.id,
                    reason=text,
                    created_at=now(),
                )
            )
        coaches = await notifications.members_of(room.circle, roles=("coach",))
        await notifications.notify(outbox, "report", coaches, me, About.post(room, row))
    created = await Report.select().where(Report.id == report_id).first()
    assert created is not None
    return await _report_out(created, me)


async def _report_out(row: dict[str, Any], viewer: Member) -> ReportOut:
    post_row = await queries.post_where(PostRow.id == row["post"])
    assert post_row is not None
    people = await queries.memberships_by_id([row["reporter"], post_row.author])
    return ReportOut(
        id=str(row["id"]),
        post=post_struct(post_row, membership_struct(people[post_row.author]), viewer),
        reporter=membership_struct(people[row["reporter"]]),
        reason=row["reason"],
        created_at=row["created_at"],
        resolved_at=row["resolved_at"],
        resolution=row["resolution"],
    )


async def reports(account_id: uuid.UUID, circle_id: str, *, open_only: bool = True) -> list[ReportOut]:
    cid = parse_id(circle_id, "circle")
    me = await require_member(account_id, cid)
    require_coach_role(me, "read reports")
    query = Report.select().where(Report.circle == cid)
    if open_only:
        query = query.where(Report.resolved_at.is_null())
    rows = await query.order_by(Report.created_at).limit(200)
    return [await _report_out(r, me) for r in rows]


async def resolve(
    account_id: uuid.UUID, report_id: str, action: Resolution, reason: str | None, live: Live
) -> ReportOut:
    row, me = await load_for(Report, report_id, "report", member_of_its_circle(account_id))
    rid = row["id"]
    require_coach_role(me, "resolve reports")
    if row["resolved_at"] is not None:
        raise Conflict("this report has already been resolved")
    post_id = str(row["post"])
    if action == "hide":
        await hide_post(account_id, post_id, reason, live)
    elif action == "remove":
        await remove_post_with_reason(account_id, post_id, reason, live)
    resolution = {"dismiss": "dismissed", "hide": "hidden", "remove": "removed"}[action]
    async with write_transaction():
        # Resolving one report resolves every open report on the same post: the coach has dealt with the post.
        await Report.update({Report.resolved_at: now(), Report.resolution: resolution}).where(
            (Report.post == row["post"]) & Report.resolved_at.is_null()
        )
        if action == "dismiss":
            await _log(row["circle"], me, "report_dismissed", post_id=row["post"], reason=_reason(reason))
    fresh = await Report.select().where(Report.id == rid).first()
    assert fresh is not None
    return await _report_out(fresh, me)


async def audit_log(account_id: uuid.UUID, circle_id: str, limit: int = 200) -> list[AuditEntry]:
    cid = parse_id(circle_id, "circle")
    me = await require_member(account_id, cid)
    require_coach_role(me, "read the moderation log")
    rows = (
        await ModerationLog.select()
        .where(ModerationLog.circle == cid)
        .order_by(ModerationLog.created_at, ascending=False)
        .limit(limit)
    )
    people = await queries.memberships_by_id(
        [r["actor"] for r in rows] + [r["member"] for r in rows if r["member"] is not None]
    )
    return [
        AuditEntry(
            id=str(r["id"]),
            action=r["action"],
            actor=membership_struct(people[r["actor"]]),
            post_id=str(r["post_id"]) if r["post_id"] else None,
            member=membership_struct(people[r["member"]]) if r["member"] in people else None,
            reason=r["reason"],
            created_at=r["created_at"],
        )
        for r in rows
    ]
