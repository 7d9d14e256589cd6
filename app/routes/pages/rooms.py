"""A room's page and its threads, a thread's page, and writing, editing and deleting posts."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, delete, get, patch, post
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from app.deps import LiveDep
from app.routes.pages import care as care_pages
from app.routes.pages.common import Form, excerpt, fragment, page, page_user, who
from app.schemas import PostCreate
from app.services import care, care_actions, circles, dropins, gestures, journals, posts, search
from db.rows import Member, RoomRow
from db.tables import Post as PostRow
from realtime.events import PostKind

KINDS: dict[str, PostKind] = {
    "reflection": "reflection",
    "experiment": "experiment",
    "win": "win",
    "question": "question",
}


async def viewer_context(membership: Member, threads: list[Any]) -> dict[str, Any]:
    """What one page of threads needs to know about its reader: which posts they liked, and the pins' notes."""
    ids = [t.id for t in _walk(threads)]
    return {"liked": await gestures.liked_by(membership.id, ids), "pin_notes": await gestures.pin_notes(ids)}


def _walk(threads: list[Any]) -> list[Any]:
    out = []
    for thread in threads:
        out.append(thread)
        out.extend(_walk(getattr(thread, "replies", [])))
    return out


@get("/rooms/{room_id:str}", include_in_schema=False)
async def room_page(request: Request[Any, Any, Any], room_id: FromPath[str], live: LiveDep) -> Template:
    user = who(request)
    # The room (and its last seq) before its posts: a post committed in between is then on the page or in the
    # socket's `since` replay, never in neither (the page drops a replayed post it already shows).
    _, room, _ = await posts.room_and_membership(user.account_id, room_id)
    threads, next_before = await posts.threads_page(user.account_id, room_id, None)
    frame, membership = await _in_room(request, room)
    journal_owner, journal_unread = None, 0
    if room.kind == "journal":
        await journals.mark_read(membership, room)
        journal_owner = await journals.owner_alias(room)
    elif membership.role != "coach":
        _, journal_unread = await journals.my_journal(user.account_id, str(room.circle))
    return page(
        "room",
        **frame,
        journal_owner=journal_owner,
        journal_unread=journal_unread,
        rooms=await circles.rooms(user.account_id, str(room.circle)),
        threads=threads,
        next_before=next_before,
        dropin=await dropins.for_room(room, live),
        pinned_by_coach=await coach_pins(room.id),
        **await viewer_context(membership, threads),
    )


async def _in_room(request: Request[Any, Any, Any], room: RoomRow) -> tuple[dict[str, Any], Member]:
    """What every page inside a room shows around its content: the reader, the circle, who they are there, and the
    aliases the composer can @mention (everyone but themself)."""
    user = who(request)
    circle, membership = await circles.get_circle(user.account_id, str(room.circle))
    members = await circles.members(user.account_id, circle.id)
    frame = {
        "me": await page_user(request),
        "circle": circle,
        "membership": membership,
        "room": room,
        "aliases": [m.alias for m in members if m.membership_id != str(membership.id)],
        "collapse_themes": await care_actions.themes_of(membership.id),
    }
    return frame, membership


async def coach_pins(room_id: Any) -> list[dict[str, Any]]:
    """The coach's own top-level posts in a room that they pinned (a welcome, the room's purpose): shown at the top
    of the room, newest first, above the conversation (where they also stay, in their place)."""
    rows: list[dict[str, Any]] = (
        await PostRow.select(PostRow.id, PostRow.html, PostRow.author.alias.as_alias("alias"))
        .where(
            (PostRow.room == room_id)
            & PostRow.pinned.eq(True)
            & PostRow.parent.is_null()
            & PostRow.deleted_at.is_null()
            & PostRow.hidden_at.is_null()
            & (PostRow.author.role == "coach")
        )
        .order_by(PostRow.created_at, ascending=False)
        .limit(3)
    )
    return [{"id": str(r["id"]), "alias": r["alias"], "excerpt": excerpt(r["html"], 280)} for r in rows]


@get("/rooms/{room_id:str}/threads", include_in_schema=False)
async def older_threads(
    request: Request[Any, Any, Any], room_id: FromPath[str], before: FromQuery[str | None] = None
) -> Template:
    user = who(request)
    threads, next_before = await posts.threads_page(user.account_id, room_id, before)
    _, _, membership = await posts.room_and_membership(user.account_id, room_id)
    return fragment(
        "threads",
        threads=threads,
        next_before=next_before,
        room_id=room_id,
        collapse_themes=await care_actions.themes_of(membership.id),
        **await viewer_context(membership, threads),
    )


@post("/rooms/{room_id:str}/posts", include_in_schema=False, opt={"rate": "post"})
async def create_post(
    request: Request[Any, Any, Any], room_id: FromPath[str], data: Form, live: LiveDep
) -> Template | Redirect:
    user = who(request)
    kind: PostKind = KINDS.get(data.get("kind", ""), "reflection")
    # Care (docs/care.md): a draft that raises a concern answers with the care interstitial first.
    stop, where = await care_pages.checked_post(request, room_id, data, live)
    if stop is not None:
        return stop
    if where not in ("room", "journal"):
        raise ClientException("where must be room (everyone here) or journal (just your coach)")
    target = room_id
    parent_id = data.get("parent_id") or None
    if where == "journal":
        # "Just my coach": the member's journal in this room's circle, whichever room they wrote from. A reply
        # moved there becomes a journal entry of its own (its thread is in another room).
        target = await _journal_of(user.account_id, room_id)
        parent_id = None if target != room_id else parent_id
    created = await posts.create_post(
        user.account_id,
        target,
        PostCreate(
            body=data.get("body", ""),
            kind=kind,
            parent_id=parent_id,
            client_id=data.get("client_id") or None,
            content_note=data.get("content_note") or None,
            reply_wish=care.reply_wish(data.get("reply_wish") or None),
        ),
        live,
    )
    if not request.headers.get("hx-request"):
        # Without JavaScript (the composer and the care interstitial are plain forms too): back to the room.
        return Redirect(f"/rooms/{room_id}#post-{created.id}", status_code=HTTP_303_SEE_OTHER)
    if target != room_id:
        # Not for this room's list: the composer (or the slot under the post replied to) says where it went.
        slot = f"#reply-slot-{data['parent_id']}" if data.get("parent_id") else "#composer-status"
        return _journal_sent(created, slot)
    return fragment("post", post=created)


async def _journal_of(account_id: Any, room_id: str) -> str:
    """The id of the member's journal in the circle of this room (the room itself when it is that journal)."""
    _, room, _ = await posts.room_and_membership(account_id, room_id)
    if room.kind == "journal":
        return room_id
    journal, _ = await journals.my_journal(account_id, str(room.circle))
    return journal.id


def _journal_sent(created: Any, slot: str, restore: Any = None) -> Template:
    """The note that a post went to the journal, shown in `slot`; `restore` is a post whose edit form it closes."""
    return Template(
        "fragments/journal_sent.html",
        context={"post": created, "restore": restore},
        headers={"HX-Retarget": slot, "HX-Reswap": "innerHTML"},
    )


@get("/posts/{post_id:str}", include_in_schema=False)
async def thread_page(request: Request[Any, Any, Any], post_id: FromPath[str]) -> Template:
    """The whole thread a post belongs to, scrolled to that post."""
    user = who(request)
    # The room (with its last seq) before the thread, as on the room page: nothing committed in between is missed.
    row, room, _ = await posts.post_and_access(user.account_id, post_id)
    root_id = str(row.thread_root or row.id)
    root = await posts.get_thread(user.account_id, root_id)
    frame, membership = await _in_room(request, room)
    # An experiment's page shows others who tested a similar assumption (search, behind the same walls).
    similar = (await search.similar_experiments(user.account_id, root_id)).items if root.experiment else []
    return page(
        "thread", **frame, thread=root, focus=post_id, similar=similar, **await viewer_context(membership, [root])
    )


@get("/posts/{post_id:str}/reply", include_in_schema=False)
async def reply_form(
    request: Request[Any, Any, Any], post_id: FromPath[str], kind: FromQuery[str | None] = None
) -> Template:
    """The reply form under a post; `?kind=question` is the coach's "Ask a question" (the server still decides who
    may ask one: a member's question-kind reply is an ordinary question)."""
    user = who(request)
    target = await posts.get_thread(user.account_id, post_id)
    return fragment("reply_form", post=target, kind="question" if kind == "question" else None)


POST_FORMS = ("pin", "hide", "remove", "report")


@get("/posts/{post_id:str}/form/{which:str}", include_in_schema=False)
async def post_form(request: Request[Any, Any, Any], post_id: FromPath[str], which: FromPath[str]) -> Template:
    """A small in-page form for what needs a few words (instead of a browser prompt): the pin's note, the reason to
    hide or remove, a report."""
    user = who(request)
    if which not in POST_FORMS:
        raise NotFoundException("there is no such form: pin, hide, remove or report")
    target = await posts.get_thread(user.account_id, post_id)
    return fragment("post_form", post=target, which=which)


@get("/posts/{post_id:str}/edit", include_in_schema=False)
async def edit_form(request: Request[Any, Any, Any], post_id: FromPath[str]) -> Template:
    user = who(request)
    target = await posts.get_thread(user.account_id, post_id)
    return fragment("edit_form", post=target)


@get("/posts/{post_id:str}/main", include_in_schema=False)
async def post_main(request: Request[Any, Any, Any], post_id: FromPath[str]) -> Template:
    user = who(request)
    return fragment("post_main", post=await posts.get_thread(user.account_id, post_id))


@patch("/posts/{post_id:str}", include_in_schema=False, opt={"rate": "edit"})
async def edit_post(request: Request[Any, Any, Any], post_id: FromPath[str], data: Form, live: LiveDep) -> Template:
    user = who(request)
    # Care (docs/care.md): an edit whose new text raises a concern answers with the care interstitial first,
    # under the post, while the edit form stays open.
    where = care_pages.decided(data)
    if where is None:
        row, room, _ = await posts.post_and_access(user.account_id, post_id)
        origin = care_pages.Gate(mode="edit", room_id=str(room.id), circle_id=str(room.circle), post_id=post_id)
        if row.body != data.get("body", "") or data.get("care"):
            stop = await care_pages.gate(request, origin, room.kind, data, live)
            if stop is not None:
                return stop
    elif where == "journal":
        # "Move it to my journal": this version goes there as an entry of its own; the post stays as it was.
        row, room, _ = await posts.post_and_access(user.account_id, post_id)
        created = await posts.create_post(
            user.account_id,
            await _journal_of(user.account_id, str(room.id)),
            PostCreate(body=data.get("body", ""), content_note=data.get("content_note") or None),
            live,
        )
        return _journal_sent(created, f"#reply-slot-{post_id}", await posts.get_thread(user.account_id, post_id))
    edited = await posts.edit_post(
        user.account_id,
        post_id,
        data.get("body", ""),
        live,
        # Absent from the form (an older page): left as they are.
        content_note=data.get("content_note", msgspec.UNSET),
        reply_wish=care.reply_wish(data.get("reply_wish") or None) if "reply_wish" in data else msgspec.UNSET,
    )
    return fragment("post_main", post=edited)


@delete("/posts/{post_id:str}", include_in_schema=False, status_code=200)
async def delete_post(request: Request[Any, Any, Any], post_id: FromPath[str], live: LiveDep) -> Template:
    user = who(request)
    await posts.delete_post(user.account_id, post_id, live)
    return fragment("post_deleted")


ROUTES: list[Any] = [
    room_page,
    older_threads,
    create_post,
    thread_page,
    reply_form,
    post_form,
    edit_form,
    post_main,
    edit_post,
    delete_post,
]
