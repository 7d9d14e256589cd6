"""Posts and threads. Every change writes its room event in the same transaction and is published after commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Literal

import msgspec
from litestar.exceptions import ClientException, PermissionDeniedException

from app.errors import Conflict, not_found
from app.live import Live
from app.schemas import PostCreate, PostListItem, PostPage, PostThread
from app.services import care, experiments, notifications
from app.services.common import (
    is_unique_violation,
    load_for,
    membership_struct,
    parse_id,
    require_can_write,
    require_readable,
    require_room_open,
)
from app.services.notifications import About
from app.services.outbox import Outbox, unit_of_work
from db import queries
from db.queries import now
from db.rows import Member, PostRecord, RoomRow, as_post
from db.tables import Dropin as DropinRow
from db.tables import Membership, Room, RoomEvent
from db.tables import Post as PostRow
from realtime.events import (
    Dropin,
    DropinChanged,
    NotificationKind,
    Post,
    PostCreated,
    PostDeleted,
    PostRef,
    PostUpdated,
    ReplyWish,
    SharedFrom,
    encoder,
)
from realtime.events import Membership as PublicMembership
from web.markdown import neutralise_mentions, render, render_off_loop

MAX_BODY = 20_000
# The post table's client_id column size (the API checks it too; the pages reach the service directly).
CLIENT_ID_MAX = 64
_shared_from_decoder = msgspec.json.Decoder(SharedFrom)
_dropin_decoder = msgspec.json.Decoder(Dropin)


def shared_from_json(shared_from: SharedFrom) -> str:
    return encoder.encode(shared_from).decode()


def decode_shared_from(raw: str) -> SharedFrom:
    return _shared_from_decoder.decode(raw)


DEFAULT_PAGE, MAX_PAGE = 20, 100


def post_struct(row: PostRecord, author: PublicMembership, viewer: Member | None = None) -> Post:
    """The post as `viewer` may see it. With no viewer it is the peer view, which is what events carry: a post the
    coach hid has no text in it, and no reason. Its author and the coach see the text and the reason."""
    hidden = row.hidden_at is not None
    # A share hidden with its original holds someone else's hidden words: only the coach sees them, not the sharer.
    own = viewer is not None and viewer.id == row.author and not row.hidden_with_origin
    privileged = viewer is not None and (viewer.role == "coach" or own)
    blank = hidden and not privileged
    return Post(
        id=str(row.id),
        room_id=str(row.room),
        parent_id=str(row.parent) if row.parent else None,
        author=author,
        kind=row.kind,
        body="" if blank else row.body,
        html="" if blank else row.html,
        created_at=row.created_at,
        edited_at=row.edited_at,
        like_count=int(row.like_count),
        liked_by_coach=bool(row.liked_by_coach),
        pinned=bool(row.pinned),
        shared_from=decode_shared_from(row.shared_from) if row.shared_from else None,
        seq=int(row.seq),
        deleted=row.deleted_at is not None,
        hidden=hidden,
        moderation_reason=row.moderation_reason if hidden and privileged else None,
        experiment=experiments.decode(row.experiment) if row.experiment and not blank else None,
        content_note=row.content_note,
        reply_wish=care.reply_wish(row.reply_wish),
    )


def check_body(body: str) -> str:
    if not body.strip():
        raise ClientException("write something first: the post body is empty")
    if len(body) > MAX_BODY:
        raise ClientException(f"a post is at most {MAX_BODY:,} characters; this one has {len(body):,}")
    return body


async def circle_aliases(circle_id: uuid.UUID) -> dict[str, str]:
    """casefolded alias -> membership id, for rendering @mentions."""
    rows = await Membership.select(Membership.id, Membership.alias_key).where(
        (Membership.circle == circle_id) & Membership.removed_at.is_null()
    )
    return {r["alias_key"]: str(r["id"]) for r in rows}


async def _access(account_id: uuid.UUID, room_id: uuid.UUID) -> tuple[RoomRow, Member]:
    found = await queries.room_access(account_id, room_id)
    if found is None:
        raise not_found("room")
    return found


async def post_and_access(account_id: uuid.UUID, post_id: str) -> tuple[PostRecord, RoomRow, Member]:
    row, (room, membership) = await load_for(
        PostRow, post_id, "post", lambda post: queries.room_access(account_id, post["room"])
    )
    return as_post(row), room, membership


async def authors_of(rows: Sequence[PostRecord]) -> dict[uuid.UUID, PublicMembership]:
    by_id = await queries.memberships_by_id(r.author for r in rows)
    return {k: membership_struct(v) for k, v in by_id.items()}


async def create_post(account_id: uuid.UUID, room_id: str, data: PostCreate, live: Live) -> Post:
    rid = parse_id(room_id, "room")
    # Remembered per instance (app/auth/cache.py) and dropped by every change to it; `room.last_seq` is not read here.
    access = await live.caches.access(account_id, rid, lambda: queries.room_access(account_id, rid))
    if access is None:
        raise not_found("room")
    room, me = access
    require_can_write(me)
    require_room_open(room.dropin_state)
    author = membership_struct(me)
    care.check_note(data.content_note)
    record = None
    if data.experiment is not None:
        if data.kind != "experiment":
            raise ClientException(
                'experiment is only for posts of kind "experiment"; send kind "experiment" or leave it out'
            )
        if data.parent_id is not None:
            raise ClientException("an experiment is a post of its own, not a reply: leave parent_id out")
        record = experiments.plan(data.experiment, now())
    # An experiment's record says what it is about; its body (a note around it) may stay empty.
    body = data.body if record is not None and not data.body.strip() else check_body(data.body)
    if len(body) > MAX_BODY:
        raise ClientException(f"a post is at most {MAX_BODY:,} characters; this one has {len(body):,}")
    if data.client_id is not None and not 1 <= len(data.client_id) <= CLIENT_ID_MAX:
        raise ClientException(f"client_id must be 1 to {CLIENT_ID_MAX} characters")
    if data.client_id is not None:
        existing = await queries.post_where((PostRow.author == me.id) & (PostRow.client_id == data.client_id))
        if existing is not None:
            return post_struct(existing, author)
    parent_id: uuid.UUID | None = None
    thread_root: uuid.UUID | None = None
    parent_author: uuid.UUID | None = None
    if data.parent_id is not None:
        found = (
            await PostRow.select()
            .where((PostRow.id == (queries.as_uuid(data.parent_id) or uuid.UUID(int=0))) & (PostRow.room == rid))
            .first()
        )
        if found is None:
            raise ClientException("parent_id is not a post in this room")
        parent = as_post(found)
        if parent.deleted_at is not None:
            raise ClientException("that post was deleted; reply to the thread instead")
        require_readable(parent, me)
        parent_id, thread_root = parent.id, parent.thread_root or parent.id
        parent_author = parent.author
    # Aliases are only needed to resolve @mentions; most posts have none, and skip the query.
    aliases = await circle_aliases(room.circle) if "@" in body else {}
    html, mentioned = await render_off_loop(body, aliases) if body.strip() else ("", [])
    if record is not None:
        html += experiments.record_html(record)
    post_id = uuid.uuid4()
    row = PostRecord(
        id=post_id,
        room=rid,
        parent=parent_id,
        thread_root=thread_root,
        author=me.id,
        kind=data.kind,
        body=body,
        html=html,
        created_at=now(),
        client_id=data.client_id,
        experiment=experiments.encode(record) if record is not None else None,
        experiment_state=record.state if record is not None else None,
        experiment_due_at=record.due_at if record is not None else None,
        content_note=care.clean_note(data.content_note),
        reply_wish=data.reply_wish,
    )
    outbox = Outbox()
    try:
        # (An experiment takes the transaction: the one statement writes the columns every post has.)
        plain = record is None and row.content_note is None and row.reply_wish is None
        if parent_author is None and not mentioned and plain and queries.single_statement_writes():
            # Nobody to notify: the seq, the post and its event go in one statement (see queries.insert_post).
            row.seq = -1  # the placeholder the statement replaces with the real seq
            post = post_struct(row, author)
            post.seq = row.seq = await queries.insert_post(row.columns(), encoder.encode(post), outbox.record)
            await outbox.publish(live)  # the statement has committed
        else:
            async with unit_of_work(live, outbox):
                row.seq = seq = await outbox.next_seq(rid)
                await PostRow.insert(PostRow(**row.columns()))
                post = post_struct(row, author)
                await outbox.append(PostCreated(room_id=str(rid), seq=seq, data=post), post_id=post_id)
                await _notify_for_post(outbox, row, me, room, parent_author, mentioned)
    except Exception as exc:
        if data.client_id is not None and is_unique_violation(exc):
            # The same client_id raced in twice; the other request's post is the one.
            existing = await queries.post_where((PostRow.author == me.id) & (PostRow.client_id == data.client_id))
            if existing is not None:
                return post_struct(existing, author)
        raise
    if room.dropin_state == "live" and room.dropin is not None:
        await queries.add_participants(room.dropin, [me.id])
    return post


async def _notify_for_post(
    outbox: Outbox,
    row: PostRecord,
    me: Member,
    room: RoomRow,
    parent_author: uuid.UUID | None,
    mentioned: list[str],
) -> None:
    """A reply tells the parent's author (a coach's question says so); @mentions tell each member named once."""
    about = About.post(room, row)
    if room.kind == "journal":
        # Nobody but the journal's member and the coach hears of what is written in it.
        allowed = {room.membership, *await notifications.members_of(room.circle, roles=("coach",))}
        parent_author = parent_author if parent_author in allowed else None
        mentioned = [m for m in mentioned if queries.as_uuid(m) in allowed]
    if parent_author is not None:
        kind: NotificationKind = "question" if me.role == "coach" and row.kind == "question" else "reply"
        await notifications.notify(outbox, kind, [parent_author], me, about)
    others = [uuid.UUID(m) for m in mentioned if uuid.UUID(m) != parent_author]
    if others:
        await notifications.notify(outbox, "mention", others, me, about)


async def list_posts(account_id: uuid.UUID, room_id: str, before: str | None, limit: int | None) -> PostPage:
    rid = parse_id(room_id, "room")
    _room, me = await _access(account_id, rid)
    size = min(max(limit or DEFAULT_PAGE, 1), MAX_PAGE)
    query = PostRow.select().where((PostRow.room == rid) & PostRow.parent.is_null())
    if before:
        anchor = (
            await PostRow.select(PostRow.seq)
            .where(
                (PostRow.id == (queries.as_uuid(before) or uuid.UUID(int=0)))
                & (PostRow.room == rid)
                & PostRow.parent.is_null()
            )
            .first()
        )
        if anchor is None:
            raise ClientException("before must be the id of a top-level post in this room")
        query = query.where(PostRow.seq < anchor["seq"])
    rows = [as_post(r) for r in await query.order_by(PostRow.seq, ascending=False).limit(size + 1)]
    more = len(rows) > size
    rows = rows[:size]
    counts = await queries.reply_counts(r.id for r in rows)
    authors = await authors_of(rows)
    items = [
        PostListItem(**post_fields(post_struct(r, authors[r.author], me)), reply_count=counts.get(r.id, 0))
        for r in rows
        # A deleted post stays only as the anchor of replies that are still there.
        if r.deleted_at is None or counts.get(r.id, 0) > 0
    ]
    return PostPage(items=items, next_before=str(rows[-1].id) if more and rows else None)


def _children(rows: list[PostRecord]) -> dict[str, list[PostRecord]]:
    """parent id -> its replies, oldest first."""
    children: dict[str, list[PostRecord]] = {}
    for r in sorted(rows, key=lambda r: r.seq):
        if r.parent is not None:
            children.setdefault(str(r.parent), []).append(r)
    return children


def _tree(
    row: PostRecord,
    children: dict[str, list[PostRecord]],
    authors: dict[uuid.UUID, PublicMembership],
    viewer: Member,
) -> PostThread | None:
    """A post with its replies (oldest first); a deleted post survives only as the anchor of live replies."""
    replies = [t for t in (_tree(c, children, authors, viewer) for c in children.get(str(row.id), [])) if t is not None]
    if row.deleted_at is not None and not replies:
        return None
    return PostThread(**post_fields(post_struct(row, authors[row.author], viewer)), replies=replies)


def post_fields(post: Post) -> dict[str, Any]:
    return {f: getattr(post, f) for f in post.__struct_fields__}


async def get_thread(account_id: uuid.UUID, post_id: str) -> PostThread:
    row, _room, me = await post_and_access(account_id, post_id)
    root = row.thread_root or row.id
    rows = [
        as_post(r)
        for r in await PostRow.select()
        .where((PostRow.thread_root == root) | (PostRow.id == root))
        .order_by(PostRow.seq)
    ]
    thread = _tree(row, _children(rows), await authors_of(rows), me)
    if thread is None:
        raise not_found("post")
    return thread


async def edit_post(
    account_id: uuid.UUID,
    post_id: str,
    body: str,
    live: Live,
    *,
    content_note: str | msgspec.UnsetType | None = msgspec.UNSET,
    reply_wish: ReplyWish | msgspec.UnsetType | None = msgspec.UNSET,
) -> Post:
    row, room, me = await post_and_access(account_id, post_id)
    if row.deleted_at is not None:
        raise not_found("post")
    if row.author != me.id:
        raise PermissionDeniedException("only the author can edit a post")
    require_can_write(me)
    require_room_open(room.dropin_state)
    if row.hidden_at is not None:
        raise Conflict("your coach has hidden this post; it cannot be edited while hidden")
    if row.shared_from:
        raise Conflict(
            "a share shows its original's words, which only their author can change; delete the share instead"
        )
    body = check_body(body)
    care.check_note(content_note if isinstance(content_note, str) else None)
    aliases = await circle_aliases(room.circle)
    html, mentioned = await render_off_loop(body, aliases)
    if row.experiment:
        html += experiments.record_html(experiments.decode(row.experiment))
    _, already = await render_off_loop(row.body, aliases)
    async with unit_of_work(live) as outbox:
        seq = await outbox.next_seq(row.room)
        row = msgspec.structs.replace(row, body=body, html=html, edited_at=now())
        values: dict[Any, Any] = {PostRow.body: body, PostRow.html: html, PostRow.edited_at: row.edited_at}
        if content_note is not msgspec.UNSET:
            row.content_note = values[PostRow.content_note] = care.clean_note(content_note)
        if reply_wish is not msgspec.UNSET:
            row.reply_wish = values[PostRow.reply_wish] = reply_wish
        await PostRow.update(values).where(PostRow.id == row.id)
        post = post_struct(row, membership_struct(me))
        # The log keeps no earlier wording: replay shows the post as it is now.
        await queries.rewrite_post_events(row.id, _encode(post))
        await outbox.append(PostUpdated(room_id=str(row.room), seq=seq, data=post), post_id=row.id)
        await follow_original(outbox, row, post, "edited")
        await _notify_for_post(outbox, row, me, room, None, [m for m in mentioned if m not in already])
    return post


async def delete_post(account_id: uuid.UUID, post_id: str, live: Live) -> None:
    row, _room, me = await post_and_access(account_id, post_id)
    if row.deleted_at is not None:
        raise not_found("post")
    if row.author != me.id and me.role != "coach":
        raise PermissionDeniedException("only the author or the circle's coach can delete a post")
    if me.circle_closed_at is not None:
        raise Conflict("this circle has been closed by its coach; it is read-only now")
    async with unit_of_work(live) as outbox:
        await remove_post(outbox, row, reason=None)


async def remove_post(outbox: Outbox, row: PostRecord, *, reason: str | None) -> None:
    """Delete a post inside the caller's transaction: its text is scrubbed from the post and from every event that
    carried it, and a post.deleted event records the removal."""
    seq = await outbox.next_seq(row.room)
    author = (await authors_of([row]))[row.author]
    gone = msgspec.structs.replace(
        row, body="", html="", deleted_at=now(), moderation_reason=reason, experiment=None, experiment_state=None
    )
    # An experiment's record is its author's words too: it goes with the text.
    await PostRow.update(
        {
            PostRow.body: "",
            PostRow.html: "",
            PostRow.deleted_at: gone.deleted_at,
            PostRow.moderation_reason: reason,
            PostRow.experiment: None,
            PostRow.experiment_state: None,
        }
    ).where(PostRow.id == row.id)
    await queries.rewrite_post_events(row.id, _encode(post_struct(gone, author)))
    ref = PostRef(id=str(row.id), room_id=str(row.room))
    await outbox.append(PostDeleted(room_id=str(row.room), seq=seq, data=ref), post_id=row.id)
    await follow_original(outbox, gone, None, "deleted")


Change = Literal["edited", "hidden", "restored", "deleted"]


async def follow_original(outbox: Outbox, row: PostRecord, peer_view: Post | None, change: Change) -> None:
    """Everything that embeds a post's words follows the post, inside the caller's transaction (the post's own
    events are the caller's; `peer_view` is the post as peers now see it, None once it is gone):

    - the drop-in states that spotlight it, in the log and (for a drop-in that still shows it) live;
    - its shares: gone when it is gone, hidden while it is hidden, its current words after an edit.
    """
    await _follow_in_dropins(outbox, row.id, peer_view)
    copies = [
        as_post(c) for c in await PostRow.select().where((PostRow.origin == row.id) & PostRow.deleted_at.is_null())
    ]
    for copy in copies:
        if change == "deleted":
            await remove_post(outbox, copy, reason=None)
        elif change == "edited":
            await _copy_words(outbox, copy, row)
        elif change == "hidden" and copy.hidden_at is None:
            await _set_copy_hidden(outbox, copy, True)
        elif change == "restored" and copy.hidden_with_origin:
            await _set_copy_hidden(outbox, copy, False)


async def _republish_copy(outbox: Outbox, copy: PostRecord) -> None:
    seq = await outbox.next_seq(copy.room)
    view = post_struct(copy, (await authors_of([copy]))[copy.author])
    await queries.rewrite_post_events(copy.id, _encode(view))
    await outbox.append(PostUpdated(room_id=str(copy.room), seq=seq, data=view), post_id=copy.id)
    await _follow_in_dropins(outbox, copy.id, view)


async def _copy_words(outbox: Outbox, copy: PostRecord, original: PostRecord) -> None:
    shared = decode_shared_from(copy.shared_from) if copy.shared_from else None
    across = shared is not None and shared.post_id is None
    # As when it was shared: across circles an @alias names nobody in the target circle.
    body = neutralise_mentions(original.body) if across else original.body
    circle = await Room.select(Room.circle).where(Room.id == copy.room).first()
    html, _ = render(body, await circle_aliases(circle["circle"]) if circle else {})
    copy = msgspec.structs.replace(copy, body=body, html=html, edited_at=original.edited_at or now())
    await PostRow.update({PostRow.body: body, PostRow.html: html, PostRow.edited_at: copy.edited_at}).where(
        PostRow.id == copy.id
    )
    await _republish_copy(outbox, copy)


async def _set_copy_hidden(outbox: Outbox, copy: PostRecord, hidden: bool) -> None:
    hidden_at = now() if hidden else None
    copy = msgspec.structs.replace(copy, hidden_at=hidden_at, hidden_with_origin=hidden, moderation_reason=None)
    await PostRow.update(
        {PostRow.hidden_at: hidden_at, PostRow.hidden_with_origin: hidden, PostRow.moderation_reason: None}
    ).where(PostRow.id == copy.id)
    await _republish_copy(outbox, copy)


async def _follow_in_dropins(outbox: Outbox, post_id: uuid.UUID, peer_view: Post | None) -> None:
    """Drop-in states embed their spotlighted post: rewrite every stored one that carries this post, and give a
    drop-in that spotlights it now a fresh state (without it, once it is gone)."""
    stored = await RoomEvent.select(RoomEvent.id, RoomEvent.room, RoomEvent.data).where(
        (RoomEvent.post_id == post_id) & (RoomEvent.type == "dropin.state")
    )
    for event in stored:
        state = _dropin_decoder.decode(event["data"])
        state.spotlight_post = peer_view
        await RoomEvent.update({RoomEvent.data: encoder.encode(state).decode()}).where(RoomEvent.id == event["id"])
        outbox.rewrote(event["room"])
    for dropin in await DropinRow.select(DropinRow.id, DropinRow.room).where(DropinRow.spotlight == post_id):
        latest = (
            await RoomEvent.select(RoomEvent.data)
            .where((RoomEvent.room == dropin["room"]) & (RoomEvent.type == "dropin.state"))
            .order_by(RoomEvent.seq, ascending=False)
            .first()
        )
        if latest is None:
            continue
        state = _dropin_decoder.decode(latest["data"])
        state.spotlight_post = peer_view
        if peer_view is None:
            state.spotlight = None
            await DropinRow.update({DropinRow.spotlight: None}).where(DropinRow.id == dropin["id"])
        seq = await outbox.next_seq(dropin["room"])
        changed = DropinChanged(room_id=str(dropin["room"]), seq=seq, data=state)
        await outbox.append(changed, post_id=post_id if peer_view else None)


def _encode(post: Post) -> bytes:
    return encoder.encode(post)


async def threads_page(
    account_id: uuid.UUID, room_id: str, before: str | None, limit: int | None = DEFAULT_PAGE
) -> tuple[list[PostThread], str | None]:
    """A page of top-level posts with their whole reply trees, in three queries whatever the page size."""
    page = await list_posts(account_id, room_id, before, limit)
    _rid, _room, me = await room_and_membership(account_id, room_id)
    roots = [queries.as_uuid(p.id) for p in page.items]
    wanted = [r for r in roots if r is not None]
    rows = [as_post(r) for r in await PostRow.select().where(PostRow.thread_root.is_in(wanted))] if wanted else []
    children = _children(rows)
    authors = await authors_of(rows)
    threads = []
    for item in page.items:
        replies = [t for t in (_tree(c, children, authors, me) for c in children.get(item.id, [])) if t is not None]
        fields = post_fields(item)
        fields.pop("reply_count", None)
        threads.append(PostThread(**fields, replies=replies))
    return threads, page.next_before


async def room_and_membership(account_id: uuid.UUID, room_id: str) -> tuple[uuid.UUID, RoomRow, Member]:
    rid = parse_id(room_id, "room")
    room, membership = await _access(account_id, rid)
    return rid, room, membership
