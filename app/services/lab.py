"""The lab: moving an experiment through its stages, listing a circle's experiments, and the reminder when one is due.

Every move is one unit of work: the post's record, state and HTML, the durable room event `experiment.changed`
(replayed like any event), and for a debrief the notification to the circle's coach. The due reminder is claimed
with one conditional UPDATE (`experiment_due_sent_at IS NULL`), in the same transaction as its notification, so it
goes out exactly once however many instances check, and a check after a restart picks up what came due meanwhile.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from litestar.exceptions import ClientException, PermissionDeniedException

from app.errors import Conflict, not_found
from app.live import Live
from app.schemas.lab import ExperimentMoveBody, ExperimentPage
from app.services import experiments, notifications
from app.services.common import can_read, membership_struct, parse_id, require_can_write, require_member
from app.services.notifications import About
from app.services.outbox import unit_of_work
from app.services.posts import authors_of, post_and_access, post_struct
from db import queries
from db.queries import now
from db.rows import Member, as_post
from db.tables import Membership, Room
from db.tables import Post as PostRow
from realtime.events import ExperimentChanged, ExperimentMove, ExperimentStateName, Post
from realtime.events import Membership as PublicMembership
from web.templating import without_record

DEFAULT_PAGE, MAX_PAGE = 30, 100
# How many due experiments one check claims; the next check (30 s later) takes the rest.
DUE_BATCH = 200


async def move(account_id: uuid.UUID, post_id: str, body: ExperimentMoveBody, live: Live) -> Post:
    row, room, me = await post_and_access(account_id, post_id)
    if row.deleted_at is not None or not can_read(row, me):
        raise not_found("post")
    if row.author != me.id:
        raise PermissionDeniedException("only the member who planned this experiment can move it")
    if row.experiment is None:
        raise ClientException("this post carries no experiment record (only posts made with one do)")
    require_can_write(me)
    if row.hidden_at is not None:
        # Its move would travel to every reader of the room, as edits would: both wait until the coach shows it again.
        raise Conflict("your coach has hidden this post; its experiment cannot move while it is hidden")
    record = experiments.move(experiments.decode(row.experiment), body, now())
    body_html = without_record(row.html)
    changed = msgspec.structs.replace(
        row,
        experiment=experiments.encode(record),
        experiment_state=record.state,
        html=body_html + experiments.record_html(record),
    )
    async with unit_of_work(live) as outbox:
        await PostRow.update(
            {
                PostRow.experiment: changed.experiment,
                PostRow.experiment_state: record.state,
                PostRow.html: changed.html,
            }
        ).where(PostRow.id == row.id)
        seq = await outbox.next_seq(row.room)
        data = ExperimentMove(post_id=str(row.id), experiment=record)
        await outbox.append(ExperimentChanged(room_id=str(row.room), seq=seq, data=data), post_id=row.id)
        if record.state == "debriefed":
            coaches = await notifications.members_of(room.circle, roles=("coach",))
            await notifications.notify(outbox, "experiment.debriefed", coaches, me, About.post(room, row))
    return post_struct(changed, membership_struct(me), me)


async def list_experiments(
    account_id: uuid.UUID,
    circle_id: str,
    *,
    state: str | None = None,
    membership_id: str | None = None,
    before: str | None = None,
    limit: int | None = None,
) -> ExperimentPage:
    """The circle's experiments, newest first, as the caller may read them (hidden ones only to their author and the
    coach; deleted ones never)."""
    cid = parse_id(circle_id, "circle")
    me = await require_member(account_id, cid)
    states: tuple[ExperimentStateName, ...] = ("planned", "tried", "debriefed", "abandoned")
    if state is not None and state not in states:
        raise ClientException(f"state must be one of {', '.join(states)}")
    where: Any = PostRow.experiment_state.is_not_null()
    if state is not None:
        where = where & (PostRow.experiment_state == state)
    if membership_id is not None:
        mid = queries.as_uuid(membership_id)
        if mid is None or not await Membership.exists().where((Membership.id == mid) & (Membership.circle == cid)):
            raise ClientException("membership_id is not a member of this circle")
        where = where & (PostRow.author == mid)
    items, next_before = await circle_posts(me, where, before, limit, what="an experiment")
    return ExperimentPage(items=items, next_before=next_before)


async def circle_posts(
    me: Member, where: Any, before: str | None, limit: int | None, *, what: str, journals: bool = True
) -> tuple[list[Post], str | None]:
    """One page of a circle's posts matching `where`, newest first, as `me` may read them: journals only their own
    (all of them for the coach; none at all with `journals=False`), hidden posts only to their author and the coach,
    deleted posts never. `before` is the id of the last post of the previous page (one of this list: `what` says
    what it must be)."""
    size = min(max(limit or DEFAULT_PAGE, 1), MAX_PAGE)
    readable: Any = Room.circle == me.circle
    if not journals:
        readable = readable & (Room.kind != "journal")
    elif me.role != "coach":
        readable = readable & ((Room.kind != "journal") | (Room.membership == me.id))
    where = where & PostRow.room.is_in(Room.select(Room.id).where(readable)) & PostRow.deleted_at.is_null()
    if me.role != "coach":
        where = where & (PostRow.hidden_at.is_null() | (PostRow.author == me.id))
    if before is not None:
        anchor = await queries.post_where((PostRow.id == (queries.as_uuid(before) or uuid.UUID(int=0))) & where)
        if anchor is None:
            raise ClientException(f"before must be the id of {what} in this list")
        where = where & (
            (PostRow.created_at < anchor.created_at)
            | ((PostRow.created_at == anchor.created_at) & (PostRow.id < anchor.id))
        )
    rows = [
        as_post(r)
        for r in await PostRow.select()
        .where(where)
        .order_by(PostRow.created_at, ascending=False)
        .order_by(PostRow.id, ascending=False)
        .limit(size + 1)
    ]
    more = len(rows) > size
    rows = rows[:size]
    authors = await authors_of(rows)
    return [post_struct(r, authors[r.author], me) for r in rows], str(rows[-1].id) if more and rows else None


async def wins(account_id: uuid.UUID, circle_id: str, before: str | None = None) -> tuple[list[Post], str | None]:
    """The circle's small wins wall: top-level posts of kind `win` in its rooms (never a journal's), newest first."""
    me = await require_member(account_id, parse_id(circle_id, "circle"))
    where = (PostRow.kind == "win") & PostRow.parent.is_null()
    return await circle_posts(me, where, before, 24, what="a win", journals=False)


class Lab(msgspec.Struct):
    """The circle's lab page: its experiments by stage (newest first), and what members learned."""

    planned: list[Post]
    tried: list[Post]
    debriefed: list[Post]
    abandoned: list[Post]
    is_coach: bool


async def circle_lab(account_id: uuid.UUID, circle_id: str) -> Lab:
    """Every stage's newest experiments (up to a page each) as the caller may read them."""
    cid = parse_id(circle_id, "circle")
    me = await require_member(account_id, cid)
    stages: dict[str, list[Post]] = {}
    for state in ("planned", "tried", "debriefed", "abandoned"):
        where = PostRow.experiment_state == state
        # The circle's page: its rooms only (a member's journal experiments are in their own lab and journal).
        stages[state], _ = await circle_posts(me, where, None, MAX_PAGE, what="an experiment", journals=False)
    return Lab(**stages, is_coach=me.role == "coach")


class BeliefPoint(msgspec.Struct, frozen=True):
    """One debriefed experiment on the member's chart of belief over time."""

    post_id: str
    assumption: str
    before: int
    after: int
    at: datetime


class MemberLab(msgspec.Struct):
    """One member's lab: what they are trying now, what they learned (with belief before -> after over time), and
    what they set aside."""

    member: PublicMembership
    mine: bool
    open: list[Post]
    learned: list[Post]
    set_aside: list[Post]
    beliefs: list[BeliefPoint]
    # Those of its experiments that are in the member's journal (only they and the coach see them).
    private: set[str]


async def member_lab(account_id: uuid.UUID, circle_id: str, membership_id: str | None) -> MemberLab:
    """A member's own lab (`membership_id` None: the caller's), for that member and the coach only: a peer's
    experiments are in the rooms, but not gathered into a profile of them."""
    cid = parse_id(circle_id, "circle")
    me = await require_member(account_id, cid)
    target = me.id if membership_id is None else queries.as_uuid(membership_id)
    if target != me.id and me.role != "coach":
        raise not_found("lab")
    member = (
        await Membership.select()
        .where(
            (Membership.id == (target or uuid.UUID(int=0)))
            & (Membership.circle == cid)
            & Membership.removed_at.is_null()
        )
        .first()
    )
    if member is None:
        raise not_found("lab")
    posts, _ = await circle_posts(
        me,
        PostRow.experiment_state.is_not_null() & (PostRow.author == member["id"]),
        None,
        MAX_PAGE,
        what="an experiment",
    )
    records = [(p, p.experiment) for p in posts if p.experiment is not None]
    journal_rooms = {
        str(r["id"]) for r in await Room.select(Room.id).where((Room.circle == cid) & (Room.membership == member["id"]))
    }
    learned = [p for p, e in records if e.state == "debriefed"]
    beliefs = sorted(
        (
            BeliefPoint(
                post_id=p.id,
                assumption=e.assumption,
                before=e.belief_before,
                after=e.belief_after if e.belief_after is not None else e.belief_before,
                at=e.debriefed_at or p.created_at,
            )
            for p, e in records
            if e.state == "debriefed"
        ),
        key=lambda b: b.at,
    )
    return MemberLab(
        member=membership_struct(member),
        mine=member["id"] == me.id,
        open=[p for p, e in records if e.state in ("planned", "tried")],
        learned=learned,
        set_aside=[p for p, e in records if e.state == "abandoned"],
        beliefs=beliefs,
        private={p.id for p, _ in records if p.room_id in journal_rooms},
    )


async def send_due(live: Live) -> int:
    """Claim every open experiment whose due time has come and tell its author, once. Returns how many went out."""
    at = now()
    sent = 0
    async with unit_of_work(live) as outbox:
        claimed = await PostRow.raw(
            "UPDATE post SET experiment_due_sent_at = {} WHERE id IN ("
            "SELECT id FROM post WHERE experiment_due_sent_at IS NULL AND experiment_state IN ('planned', 'tried') "
            "AND experiment_due_at <= {} AND deleted_at IS NULL ORDER BY experiment_due_at LIMIT {}"
            ") AND experiment_due_sent_at IS NULL RETURNING id, room, author",
            at,
            at,
            DUE_BATCH,
        )
        if not claimed:
            return 0
        rooms = {
            r["id"]: r["circle"]
            for r in await Room.select(Room.id, Room.circle).where(Room.id.is_in([c["room"] for c in claimed]))
        }
        for row in claimed:
            post_id, room_id = queries.as_uuid(row["id"]), queries.as_uuid(row["room"])
            author = queries.as_uuid(row["author"])
            if post_id is None or room_id is None or author is None:
                continue
            about = About(rooms.get(room_id), room_id, post_id)
            await notifications.notify(outbox, "experiment.due", [author], None, about)
            sent += 1
    return sent
