"""The coach's (and members') gestures: like, pin as key insight, share, tag.

Each is one transaction that changes the post, appends its room event and writes the notifications it causes;
events and notification frames go out after commit. A repeated gesture (liking twice, pinning again with the same
note) changes nothing and consumes no seq.

A post the coach hid is not shared, pinned or tagged: to peers it is not there (404), and its author and the coach,
who still see its text, are told it is hidden (409). Hidden means hidden; the coach shows it again first.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar.exceptions import ClientException, PermissionDeniedException

from app.errors import Conflict, not_found
from app.live import Live
from app.schemas.gestures import Insight, LikeOut, PinOut, TagOut
from app.services import notifications
from app.services.common import (
    load_for,
    member_of_its_circle,
    membership_struct,
    parse_id,
    require_can_write,
    require_coach_role,
    require_member,
    require_readable,
    require_room_open,
)
from app.services.notifications import About
from app.services.outbox import unit_of_work
from app.services.posts import (
    authors_of,
    circle_aliases,
    post_and_access,
    post_fields,
    post_struct,
    shared_from_json,
)
from db import queries
from db.queries import now
from db.rows import Member, PostRecord
from db.tables import Dropin, Membership, Notification, Pin, PostLike, Room, Tag
from db.tables import Post as PostRow
from realtime.events import (
    LikeChanged,
    LikeState,
    NotificationKind,
    PinChanged,
    PinState,
    Post,
    PostCreated,
    SharedFrom,
)
from web.markdown import neutralise_mentions, render

MAX_NOTE = 500


def require_visible(row: PostRecord, me: Member, gesture: str) -> None:
    """A deleted post is not there for anyone; a hidden one is not there for peers, and cannot be `gesture`d by
    those who still see it until the coach shows it again."""
    require_readable(row, me)
    if row.hidden_at is not None:
        if me.role == "coach":
            raise Conflict(f"this post is hidden from the circle; show it again before you {gesture} it")
        raise Conflict(f"your coach has hidden this post; you cannot {gesture} it while it is hidden")


async def _like_state(post_id: uuid.UUID) -> tuple[int, bool]:
    rows = await PostLike.select(PostLike.membership.role.as_alias("role")).where(PostLike.post == post_id)
    return len(rows), any(r["role"] == "coach" for r in rows)


async def _set_like(account_id: uuid.UUID, post_id: str, live: Live, *, liked: bool) -> LikeOut:
    row, room, me = await post_and_access(account_id, post_id)
    require_visible(row, me, "like" if liked else "unlike")
    require_can_write(me)
    require_room_open(room.dropin_state)
    async with unit_of_work(live) as outbox:
        if liked:
            changed = await PostLike.raw(
                "INSERT INTO post_like (id, post, membership, created_at) VALUES ({}, {}, {}, {}) "
                "ON CONFLICT (post, membership) DO NOTHING RETURNING id",
                uuid.uuid4(),
                row.id,
                me.id,
                now(),
            )
        else:
            changed = await PostLike.raw(
                "DELETE FROM post_like WHERE post = {} AND membership = {} RETURNING id", row.id, me.id
            )
        if changed:
            # The seq is taken first: its row lock orders concurrent likes, so each event's count includes every
            # like committed before it.
            seq = await outbox.next_seq(row.room)
            count, by_coach = await _like_state(row.id)
            await PostRow.update({PostRow.like_count: count, PostRow.liked_by_coach: by_coach}).where(
                PostRow.id == row.id
            )
            state = LikeState(post_id=str(row.id), like_count=count, liked_by_coach=by_coach)
            await outbox.append(LikeChanged(room_id=str(row.room), seq=seq, data=state), post_id=row.id)
            kind: NotificationKind = "coach_like" if me.role == "coach" else "like"
            # Like, unlike, like again: the author hears of it once (the first notification stays, read or not).
            if liked and not await Notification.exists().where(
                (Notification.kind == kind) & (Notification.post_id == row.id) & (Notification.actor == me.id)
            ):
                await notifications.notify(outbox, kind, [row.author], me, About.post(room, row))
        else:
            count, by_coach = await _like_state(row.id)
    return LikeOut(like_count=count, liked_by_coach=by_coach, liked_by_me=liked)


async def like(account_id: uuid.UUID, post_id: str, live: Live) -> LikeOut:
    return await _set_like(account_id, post_id, live, liked=True)


async def unlike(account_id: uuid.UUID, post_id: str, live: Live) -> LikeOut:
    return await _set_like(account_id, post_id, live, liked=False)


async def liked_by(membership_id: uuid.UUID, post_ids: list[str]) -> set[str]:
    """Which of these posts the member has liked: one query for a whole page."""
    ids = [u for u in (queries.as_uuid(p) for p in post_ids) if u is not None]
    if not ids:
        return set()
    rows = await PostLike.select(PostLike.post).where((PostLike.membership == membership_id) & PostLike.post.is_in(ids))
    return {str(r["post"]) for r in rows}


async def pin(account_id: uuid.UUID, post_id: str, note: str | None, live: Live) -> PinOut:
    row, room, me = await post_and_access(account_id, post_id)
    require_coach_role(me, "pin key insights")
    require_can_write(me)
    require_visible(row, me, "pin")
    note = (note or "").strip()[:MAX_NOTE] or None
    async with unit_of_work(live) as outbox:
        # The change comes first and only then the seq: the pin row's lock orders concurrent pins, and a pin that
        # changes nothing (same note again) leaves the room's seq and its subscribers alone.
        inserted = await Pin.raw(
            "INSERT INTO pin (id, post, circle, note, pinned_by, pinned_at) VALUES ({}, {}, {}, {}, {}, {}) "
            "ON CONFLICT (post) DO NOTHING RETURNING id",
            uuid.uuid4(),
            row.id,
            room.circle,
            note,
            me.id,
            now(),
        )
        if inserted:
            changed = True
            await PostRow.update({PostRow.pinned: True}).where(PostRow.id == row.id)
            await notifications.notify(outbox, "pin", [row.author], me, About.post(room, row))
        elif note is None:
            changed = bool(
                await Pin.raw("UPDATE pin SET note = NULL WHERE post = {} AND note IS NOT NULL RETURNING id", row.id)
            )
        else:
            changed = bool(
                await Pin.raw(
                    "UPDATE pin SET note = {} WHERE post = {} AND (note IS NULL OR note <> {}) RETURNING id",
                    note,
                    row.id,
                    note,
                )
            )
        if changed:
            seq = await outbox.next_seq(row.room)
            state = PinState(post_id=str(row.id), pinned=True, note=note)
            await outbox.append(PinChanged(room_id=str(row.room), seq=seq, data=state), post_id=row.id)
        current = await Pin.select(Pin.pinned_at).where(Pin.post == row.id).first()
    return PinOut(post_id=str(row.id), pinned=True, note=note, pinned_at=current["pinned_at"] if current else None)


async def unpin(account_id: uuid.UUID, post_id: str, live: Live) -> PinOut:
    row, _room, me = await post_and_access(account_id, post_id)
    require_coach_role(me, "unpin key insights")
    require_can_write(me)
    async with unit_of_work(live) as outbox:
        removed = await Pin.raw("DELETE FROM pin WHERE post = {} RETURNING id", row.id)
        if removed:
            seq = await outbox.next_seq(row.room)
            await PostRow.update({PostRow.pinned: False}).where(PostRow.id == row.id)
            state = PinState(post_id=str(row.id), pinned=False, note=None)
            await outbox.append(PinChanged(room_id=str(row.room), seq=seq, data=state), post_id=row.id)
    return PinOut(post_id=str(row.id), pinned=False, note=None, pinned_at=None)


async def insights(account_id: uuid.UUID, circle_id: str) -> list[Insight]:
    """The circle's key insights: pinned posts, newest pin first.

    Deleted posts are left out, and so are hidden ones for members; the coach sees a hidden one marked `hidden`,
    with its text and reason, so the pin can be taken down or the post shown again.
    """
    cid = parse_id(circle_id, "circle")
    me = await require_member(account_id, cid)
    pins = (
        await Pin.select(Pin.post, Pin.note, Pin.pinned_at)
        .where(Pin.circle == cid)
        .order_by(Pin.pinned_at, ascending=False)
    )
    if not pins:
        return []
    # A pin in a journal stays there: the board is the whole circle's.
    in_rooms = PostRow.room.is_in(Room.select(Room.id).where((Room.circle == cid) & (Room.kind != "journal")))
    rows = {r.id: r for r in await queries.posts_where(PostRow.id.is_in([p["post"] for p in pins]) & in_rooms)}
    shown = [
        (p, rows[p["post"]])
        for p in pins
        if p["post"] in rows
        and rows[p["post"]].deleted_at is None
        and (rows[p["post"]].hidden_at is None or me.role == "coach")
    ]
    authors = await authors_of([row for _, row in shown])
    return [
        Insight(
            **post_fields(post_struct(row, authors[row.author], me)),
            pin_note=p["note"],
            pinned_at=p["pinned_at"],
        )
        for p, row in shown
    ]


async def share(account_id: uuid.UUID, post_id: str, room_id: str, note: str | None, live: Live) -> Post:
    """Share a post into another room of its circle (any member), or of another circle the sharer coaches.

    Across circles the original author is withheld: nothing may link a membership in one circle to another.
    """
    row, source_room, me = await post_and_access(account_id, post_id)
    require_visible(row, me, "share")
    if source_room.kind == "journal" and row.author != me.id:
        raise PermissionDeniedException("only its author can carry a journal post out of the journal")
    target, target_me = await load_for(Room, room_id, "room", member_of_its_circle(account_id))
    target_id = target["id"]
    if target.get("kind") == "journal":
        if target.get("membership") != target_me.id and target_me.role != "coach":
            raise not_found("room")  # someone else's journal is no room of theirs
        raise ClientException("a journal holds what is written in it; share into one of the circle's rooms instead")
    require_can_write(me)
    require_can_write(target_me)
    require_room_open(await dropin_state(target_id))
    across = target["circle"] != source_room.circle
    if across and (me.role != "coach" or target_me.role != "coach"):
        raise PermissionDeniedException("only a coach who runs both circles can share a post across circles")
    if target_id == row.room:
        raise ClientException("the post is already in that room; share it to another room")
    note = (note or "").strip()[:MAX_NOTE] or None
    original_author = (await authors_of([row]))[row.author]
    shared_from = SharedFrom(
        post_id=None if across else str(row.id),
        room_id=None if across else str(row.room),
        author=None if across else original_author,
        note=note,
    )
    # Across circles an @alias named someone in the source circle; in the target the same alias may be anyone else,
    # so the text keeps the @ but mentions nobody (and nobody there is notified).
    body = neutralise_mentions(row.body) if across else row.body
    html, _ = render(body, await circle_aliases(target["circle"]))
    new_id = uuid.uuid4()
    async with unit_of_work(live) as outbox:
        seq = await outbox.next_seq(target_id)
        new_row = PostRecord(
            id=new_id,
            room=target_id,
            author=target_me.id,
            kind=row.kind,
            body=body,
            html=html,
            created_at=now(),
            seq=seq,
            shared_from=shared_from_json(shared_from),
            # Never shown: the copy follows the first original (a share of a share follows the same words).
            origin=row.origin or row.id,
        )
        await PostRow.insert(PostRow(**new_row.columns()))
        post = post_struct(new_row, membership_struct(target_me))
        await outbox.append(PostCreated(room_id=str(target_id), seq=seq, data=post), post_id=new_id)
        # The author hears of it where they can follow it: the new post in their own circle, or (across circles,
        # where they cannot see the target) their own post.
        await notifications.notify(
            outbox,
            "share",
            [row.author],
            me,
            About(source_room.circle, row.room if across else target_id, row.id if across else new_id),
        )
    return post


async def tag(account_id: uuid.UUID, post_id: str, membership_id: str, live: Live) -> TagOut:
    row, room, me = await post_and_access(account_id, post_id)
    require_visible(row, me, "tag anyone in")
    target = (
        await Membership.select()
        .where(
            (Membership.id == (queries.as_uuid(membership_id) or uuid.UUID(int=0)))
            & (Membership.circle == room.circle)
            & Membership.removed_at.is_null()
        )
        .first()
    )
    if target is None:
        raise ClientException("membership_id is not a member of this circle")
    if target["id"] == me.id:
        raise ClientException("you cannot tag yourself")
    if room.kind == "journal" and target["id"] != room.membership and target["role"] != "coach":
        raise ClientException("a journal is its member's and the coach's alone: nobody else can be drawn in")
    require_can_write(me)
    async with unit_of_work(live) as outbox:
        inserted = await Tag.raw(
            "INSERT INTO tag (id, post, membership, tagged_by, created_at) VALUES ({}, {}, {}, {}, {}) "
            "ON CONFLICT (post, membership) DO NOTHING RETURNING id",
            uuid.uuid4(),
            row.id,
            target["id"],
            me.id,
            now(),
        )
        if inserted:
            await notifications.notify(outbox, "tag", [target["id"]], me, About.post(room, row))
    return TagOut(post_id=str(row.id), membership=membership_struct(target))


async def pin_notes(post_ids: list[str]) -> dict[str, str | None]:
    """post id -> the coach's note, for the pinned ones among these posts: one query for a page."""
    ids = [u for u in (queries.as_uuid(p) for p in post_ids) if u is not None]
    if not ids:
        return {}
    rows = await Pin.select(Pin.post, Pin.note).where(Pin.post.is_in(ids))
    return {str(r["post"]): r["note"] for r in rows}


async def share_targets(
    account_id: uuid.UUID, circle_id: uuid.UUID, current_room: uuid.UUID, is_coach: bool
) -> list[dict[str, Any]]:
    """Rooms a post can be shared to: the circle's other rooms; for a coach, also the rooms of circles they coach."""
    mine = await Membership.select(Membership.circle, Membership.role, Membership.circle.name.as_alias("name")).where(
        (Membership.account == account_id) & Membership.removed_at.is_null()
    )
    wanted = [m for m in mine if m["circle"] == circle_id or (is_coach and m["role"] == "coach")]
    rooms = (
        await Room.select(Room.id, Room.name, Room.circle)
        .where(Room.circle.is_in([m["circle"] for m in wanted]) & (Room.id != current_room) & (Room.kind != "journal"))
        .order_by(Room.created_at)
    )
    groups = []
    for m in sorted(wanted, key=lambda m: m["circle"] != circle_id):
        in_circle = [{"id": str(r["id"]), "name": r["name"]} for r in rooms if r["circle"] == m["circle"]]
        if in_circle:
            across = m["circle"] != circle_id
            label = f"{m['name']} (another circle)" if across else f"{m['name']} (this circle)"
            groups.append({"label": label, "rooms": in_circle, "across": across})
    return groups


async def dropin_state(room_id: uuid.UUID) -> str | None:
    row = await Dropin.select(Dropin.state).where(Dropin.room == room_id).first()
    return row["state"] if row else None
