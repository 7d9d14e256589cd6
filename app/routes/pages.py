"""The HTMX pages: a second front over the same services as the JSON API.

Full pages work as plain HTML forms (no script needed to sign up, open a circle or join); inside a room, htmx posts,
replies and edits in place, and the page's socket brings everyone else's changes live.
"""

from __future__ import annotations

import html as html_text
import re
import uuid
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar
from urllib.parse import quote, unquote

import msgspec
from litestar import Request, Response, Router, delete, get, patch, post, put
from litestar.datastructures import State
from litestar.exceptions import ClientException, HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import File, Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from app import limits
from app.auth import tokens
from app.auth.tokens import Principal
from app.deps import base_url
from app.routes.api_accounts import expired_session_cookie, session_cookie
from app.schemas import (
    CircleCreate,
    CircleUpdate,
    InviteCreate,
    LiveNow,
    MuteBody,
    PostCreate,
    Preferences,
    Resolution,
    RoomCreate,
)
from app.services import accounts, circles, dropins, gestures, moderation, notifications, posts, preferences
from app.settings import Settings
from db.tables import Dropin as DropinRow
from db.tables import Post as PostRow
from db.tables import Room
from realtime.events import PostKind, encoder
from web.templating import STATIC

Form = URLEncodedBody[dict[str, str]]
T = TypeVar("T")
RESOLUTIONS: dict[str, Resolution] = {"dismiss": "dismiss", "hide": "hide", "remove": "remove"}
KINDS: dict[str, PostKind] = {
    "reflection": "reflection",
    "experiment": "experiment",
    "win": "win",
    "question": "question",
}


class SignInRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def _redirect_to_sign_in(request: Request[Any, Any, Any], exc: SignInRequired) -> Response[Any]:
    target = f"/signin?next={quote(exc.next_path)}"
    if request.headers.get("hx-request"):
        # A partial request would swap the sign-in page into a fragment; send the whole window there instead.
        return Response(None, status_code=204, headers={"HX-Redirect": target})
    return Redirect(target, status_code=HTTP_303_SEE_OTHER)


def _page_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """4xx on a page: a readable page for navigations, an inline message for htmx swaps. The exception's own headers
    (Retry-After on a 429) go out with either."""
    headers = dict(exc.headers or {})
    if request.headers.get("hx-request"):
        # Every htmx form has an id and, beside it, an element `<id>-error` for messages; buttons use the flash.
        trigger = request.headers.get("hx-trigger")
        headers.update({"HX-Retarget": f"#{trigger}-error" if trigger else "#flash", "HX-Reswap": "innerHTML"})
        return Template(
            "fragments/error.html", context={"message": exc.detail}, status_code=exc.status_code, headers=headers
        )
    return Template(
        "pages/error.html",
        context={"status": exc.status_code, "message": exc.detail, "me": None},
        status_code=exc.status_code,
        headers=headers,
    )


def who(request: Request[Any, Any, Any]) -> Principal:
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        raise SignInRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return user


def prompt_answer(request: Request[Any, Any, Any]) -> str | None:
    """What the reader typed into an `hx-prompt`. A header is Latin-1 only, so htmx sends text beyond it (curly quotes,
    dashes, emoji) percent-encoded and says so in `HX-Prompt-URI-AutoEncoded`."""
    answer = request.headers.get("hx-prompt")
    if answer is not None and request.headers.get("hx-prompt-uri-autoencoded") == "true":
        return unquote(answer)
    return answer


async def typed(request: Request[Any, Any, Any], field: str) -> str | None:
    """A few words typed for an action: the in-page form's field, or (older pages, scripts) an `hx-prompt` answer."""
    if "urlencoded" in request.headers.get("content-type", "") or "multipart" in request.headers.get(
        "content-type", ""
    ):
        value = (await request.form()).get(field)
        if isinstance(value, str):
            return value
    return prompt_answer(request)


def safe_next(value: str | None) -> str:
    """Only same-site paths: `//evil.example` or `https://...` would make sign-in an open redirect."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def form_body(kind: type[T], fields: dict[str, Any]) -> T:
    """A page form as the API's own body struct. `msgspec.convert` runs the struct's constraints (lengths, bounds),
    which its constructor does not; lax mode turns the form's strings into numbers. Bad input is a 400 that says
    which field, never a 500."""
    try:
        return msgspec.convert(fields, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise ClientException(f"check the form: {exc}") from None


def page(name: str, status_code: int = 200, **context: Any) -> Template:
    return Template(f"pages/{name}.html", context=context, status_code=status_code)


def fragment(name: str, status_code: int = 200, **context: Any) -> Template:
    return Template(f"fragments/{name}.html", context=context, status_code=status_code)


class PageUser(msgspec.Struct):
    """What the page frame shows about its reader (their own name is theirs to see)."""

    name: str
    email: str
    unread: int
    # Drop-ins live now in the reader's circles: a banner on every page until they end.
    live_dropins: list[LiveNow]


async def _me(request: Request[Any, Any, Any]) -> PageUser | None:
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        return None
    me = await accounts.me(user.account_id)
    return PageUser(
        name=me.name,
        email=me.email,
        unread=await notifications.unread_count(user.account_id),
        live_dropins=await dropins.live_for_account(user.account_id),
    )


# --- accounts ------------------------------------------------------------------------------------------------------


@get("/", name="home", include_in_schema=False)
async def home(request: Request[Any, Any, Any]) -> Template:
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        return page("welcome", me=None)
    mine = await accounts.my_circles(user.account_id)
    return page(
        "home",
        me=await _me(request),
        circles=mine,
        coaches=any(c["role"] == "coach" for c in mine),
        news=await circle_news(user.account_id, mine),
    )


class CircleNews(msgspec.Struct):
    """What a circle's card on the home page says is new: the reader's unread notifications there, the latest post
    (a few words of it), and the next drop-in."""

    unread: int
    latest: str | None
    latest_by: str | None
    next_dropin: Any


async def circle_news(account_id: uuid.UUID, mine: list[dict[str, Any]]) -> dict[str, CircleNews]:
    unread: dict[str, int] = {}
    for note in await notifications.feed(account_id, unread=True, limit=100):
        if note.circle_id:
            unread[note.circle_id] = unread.get(note.circle_id, 0) + 1
    out: dict[str, CircleNews] = {}
    for c in mine:
        cid = str(c["circle_id"])
        latest = (
            await PostRow.select(PostRow.html, PostRow.author.alias.as_alias("alias"))
            .where((PostRow.room.circle == c["circle_id"]) & PostRow.deleted_at.is_null() & PostRow.hidden_at.is_null())
            .order_by(PostRow.created_at, ascending=False)
            .first()
        )
        coming = await dropins.upcoming(account_id, cid)
        out[cid] = CircleNews(
            unread=unread.get(cid, 0),
            latest=excerpt(latest["html"]) if latest else None,
            latest_by=latest["alias"] if latest else None,
            next_dropin=coming[0] if coming else None,
        )
    return out


@get("/signup", include_in_schema=False)
async def signup_form(next: FromQuery[str | None] = None) -> Template:
    return page("signup", me=None, next=safe_next(next), form={}, error=None)


@post("/signup", include_in_schema=False, opt={"rate": "signup"})
async def signup(data: Form, state: State) -> Response[Any]:
    settings: Settings = state["settings"]
    next_path = safe_next(data.get("next"))
    try:
        await accounts.register(data.get("email", ""), data.get("password", ""), data.get("name", ""))
        token, _, _ = await accounts.sign_in(data.get("email", ""), data.get("password", ""))
    except HTTPException as exc:
        form = {"email": data.get("email", ""), "name": data.get("name", "")}
        return page("signup", exc.status_code, me=None, next=next_path, form=form, error=exc.detail)
    return Redirect(next_path, status_code=HTTP_303_SEE_OTHER, cookies=[session_cookie(token, settings)])


@get("/signin", include_in_schema=False)
async def signin_form(next: FromQuery[str | None] = None) -> Template:
    return page("signin", me=None, next=safe_next(next), form={}, error=None)


@post("/signin", include_in_schema=False, opt={"rate": "login"})
async def signin(request: Request[Any, Any, Any], data: Form, state: State) -> Response[Any]:
    settings: Settings = state["settings"]
    next_path = safe_next(data.get("next"))
    try:
        async with limits.failures_only(request, wrong=401):
            token, _, _ = await accounts.sign_in(data.get("email", ""), data.get("password", ""))
    except HTTPException as exc:
        return page(
            "signin", exc.status_code, me=None, next=next_path, form={"email": data.get("email", "")}, error=exc.detail
        )
    # Whatever session the browser arrived with is ended: a fresh token is the only way in (no session fixation).
    previous = request.scope.get("user")
    if isinstance(previous, Principal):
        await tokens.revoke(previous.token_id)
    return Redirect(next_path, status_code=HTTP_303_SEE_OTHER, cookies=[session_cookie(token, settings)])


@post("/signout", include_in_schema=False)
async def signout(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    settings: Settings = state["settings"]
    user = request.scope.get("user")
    if isinstance(user, Principal):
        await tokens.revoke(user.token_id)
        await state["live"].signed_out(user.account_id, user.token_id)
    return Redirect("/", status_code=HTTP_303_SEE_OTHER, cookies=[expired_session_cookie(settings)])


# --- circles -------------------------------------------------------------------------------------------------------


@get("/circles/new", include_in_schema=False)
async def new_circle_form(request: Request[Any, Any, Any]) -> Template:
    who(request)
    return page("circle_new", me=await _me(request), form={}, error=None)


@post("/circles/new", include_in_schema=False, opt={"rate": "circle"})
async def new_circle(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    user = who(request)
    form = {k: data.get(k, "") for k in ("name", "commonality", "norms", "coach_alias")}
    try:
        body = form_body(CircleCreate, {**form, "coach_alias": form["coach_alias"].strip() or None})
        circle = await circles.create_circle(user.account_id, body)
    except HTTPException as exc:
        return page("circle_new", exc.status_code, me=await _me(request), form=form, error=exc.detail)
    return Redirect(f"/circles/{circle.id}", status_code=HTTP_303_SEE_OTHER)


@get("/circles/{circle_id:str}", include_in_schema=False)
async def circle_page(
    request: Request[Any, Any, Any],
    circle_id: FromPath[str],
    welcome: FromQuery[str | None] = None,
    already: FromQuery[str | None] = None,
) -> Template:
    """The circle. A new member gets a welcome card until they put it away (`Membership.welcomed_at`, so once on
    every device); someone who opened an invite to a circle they are already in (`?already=1`) is told under which
    alias they are here. (`?welcome=1`, which the join redirect still sends, no longer decides anything.)"""
    user = who(request)
    circle, membership = await circles.get_circle(user.account_id, circle_id)
    return page(
        "circle",
        welcome=membership["role"] != "coach" and membership.get("welcomed_at") is None,
        already=already == "1",
        closed=await circles.closed_state(circle_id),
        open_reports=len(await moderation.reports(user.account_id, circle_id)) if membership["role"] == "coach" else 0,
        me=await _me(request),
        circle=circle,
        membership=membership,
        rooms=await circles.rooms(user.account_id, circle_id),
        members=await circles.members(user.account_id, circle_id),
        dropins=await dropins.upcoming(user.account_id, circle_id),
        past_dropins=await dropins.past(user.account_id, circle_id),
    )


@post("/circles/{circle_id:str}/invites", include_in_schema=False, opt={"rate": "invite"})
async def create_invite(
    request: Request[Any, Any, Any], circle_id: FromPath[str], data: Form, state: State
) -> Template:
    user = who(request)
    # An empty choice is "unlimited" uses and the default lifetime.
    fields = {
        "max_uses": data.get("max_uses", "").strip() or None,
        "expires_in_hours": data.get("hours", "").strip() or None,
    }
    invite = await circles.create_invite(
        user.account_id, circle_id, form_body(InviteCreate, fields), base_url(request, state["settings"])
    )
    return fragment("invite", invite=invite)


@post("/circles/{circle_id:str}/rooms", include_in_schema=False, opt={"rate": "room"})
async def create_room(request: Request[Any, Any, Any], circle_id: FromPath[str], data: Form) -> Response[Any]:
    user = who(request)
    body = form_body(RoomCreate, {"name": data.get("name", ""), "topic": data.get("topic", "")})
    room = await circles.create_room(user.account_id, circle_id, body)
    if request.headers.get("hx-request"):
        return Response(None, status_code=204, headers={"HX-Redirect": f"/rooms/{room.id}"})
    return Redirect(f"/rooms/{room.id}", status_code=HTTP_303_SEE_OTHER)


@post("/circles/{circle_id:str}/welcomed", include_in_schema=False, status_code=200)
async def welcomed(request: Request[Any, Any, Any], circle_id: FromPath[str], data: Form) -> Response[Any]:
    """Put the welcome card away: "Got it" (htmx, the card goes) or its next step (a plain form: on to the room's
    composer). Either way it does not come back."""
    user = who(request)
    target = f"/circles/{circle_id}"
    room_id = (data.get("next") or "").strip()
    if room_id:
        rooms = await circles.rooms(user.account_id, circle_id)
        if not any(r.id == room_id for r in rooms):
            raise ClientException("next must be a room of this circle")
        target = f"/rooms/{room_id}#composer"
    await circles.put_welcome_away(user.account_id, circle_id)
    if request.headers.get("hx-request") and not room_id:
        return Response("", status_code=200, media_type="text/html")
    return Redirect(target, status_code=HTTP_303_SEE_OTHER)


@get("/join/{code:str}", include_in_schema=False)
async def join_page(request: Request[Any, Any, Any], code: FromPath[str]) -> Response[Any]:
    circle = await circles.invite_circle(code)
    user = request.scope.get("user")
    # Already in this circle: no alias to ask for; the circle's page says under which alias they are there.
    if isinstance(user, Principal) and any(
        str(c["circle_id"]) == str(circle["id"]) for c in await accounts.my_circles(user.account_id)
    ):
        return Redirect(f"/circles/{circle['id']}?already=1", status_code=HTTP_303_SEE_OTHER)
    return page("join", me=await _me(request), circle=circle, code=code, form={}, error=None)


@post("/join/{code:str}", include_in_schema=False, opt={"rate": "join"})
async def join(request: Request[Any, Any, Any], code: FromPath[str], data: Form) -> Response[Any]:
    user = who(request)
    circle = await circles.invite_circle(code)
    try:
        membership = await circles.join(user.account_id, code, data.get("alias", ""))
    except HTTPException as exc:
        if exc.status_code == 409 and "already a member" in str(exc.detail):
            return Redirect(f"/circles/{circle['id']}?already=1", status_code=HTTP_303_SEE_OTHER)
        return page(
            "join",
            exc.status_code,
            me=await _me(request),
            circle=circle,
            code=code,
            form={"alias": data.get("alias", "")},
            error=exc.detail,
        )
    return Redirect(f"/circles/{membership.circle_id}?welcome=1", status_code=HTTP_303_SEE_OTHER)


# --- rooms and posts -----------------------------------------------------------------------------------------------


async def viewer_context(membership: dict[str, Any], threads: list[Any]) -> dict[str, Any]:
    """What one page of threads needs to know about its reader: which posts they liked, and the pins' notes."""
    ids = [t.id for t in _walk(threads)]
    return {"liked": await gestures.liked_by(membership["id"], ids), "pin_notes": await gestures.pin_notes(ids)}


def _walk(threads: list[Any]) -> list[Any]:
    out = []
    for thread in threads:
        out.append(thread)
        out.extend(_walk(getattr(thread, "replies", [])))
    return out


@get("/rooms/{room_id:str}", include_in_schema=False)
async def room_page(request: Request[Any, Any, Any], room_id: FromPath[str], state: State) -> Template:
    user = who(request)
    # The room (and its last seq) before its posts: a post committed in between is then on the page or in the
    # socket's `since` replay, never in neither (the page drops a replayed post it already shows).
    _, room, _ = await posts.room_and_membership(user.account_id, room_id)
    threads, next_before = await posts.threads_page(user.account_id, room_id, None)
    circle, membership = await circles.get_circle(user.account_id, str(room["circle"]))
    members = await circles.members(user.account_id, circle.id)
    return page(
        "room",
        me=await _me(request),
        circle=circle,
        membership=membership,
        room=room,
        rooms=await circles.rooms(user.account_id, str(room["circle"])),
        threads=threads,
        next_before=next_before,
        aliases=[m.alias for m in members if m.membership_id != str(membership["id"])],
        dropin=await dropins.for_room(room, state["live"]),
        pinned_by_coach=await coach_pins(room["id"]),
        **await viewer_context(membership, threads),
    )


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
        **await viewer_context(membership, threads),
    )


@post("/rooms/{room_id:str}/posts", include_in_schema=False, opt={"rate": "post"})
async def create_post(request: Request[Any, Any, Any], room_id: FromPath[str], data: Form, state: State) -> Template:
    user = who(request)
    kind: PostKind = KINDS.get(data.get("kind", ""), "reflection")
    created = await posts.create_post(
        user.account_id,
        room_id,
        PostCreate(
            body=data.get("body", ""),
            kind=kind,
            parent_id=data.get("parent_id") or None,
            client_id=data.get("client_id") or None,
        ),
        state["live"],
    )
    return fragment("post", post=created)


@get("/posts/{post_id:str}", include_in_schema=False)
async def thread_page(request: Request[Any, Any, Any], post_id: FromPath[str]) -> Template:
    """The whole thread a post belongs to, scrolled to that post."""
    user = who(request)
    # The room (with its last seq) before the thread, as on the room page: nothing committed in between is missed.
    row, room, _ = await posts.post_and_access(user.account_id, post_id)
    root_id = str(row["thread_root"] or row["id"])
    root = await posts.get_thread(user.account_id, root_id)
    circle, membership = await circles.get_circle(user.account_id, str(room["circle"]))
    members = await circles.members(user.account_id, circle.id)
    return page(
        "thread",
        me=await _me(request),
        circle=circle,
        membership=membership,
        room=room,
        thread=root,
        focus=post_id,
        aliases=[m.alias for m in members if m.membership_id != str(membership["id"])],
        **await viewer_context(membership, [root]),
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
async def edit_post(request: Request[Any, Any, Any], post_id: FromPath[str], data: Form, state: State) -> Template:
    user = who(request)
    edited = await posts.edit_post(user.account_id, post_id, data.get("body", ""), state["live"])
    return fragment("post_main", post=edited)


@delete("/posts/{post_id:str}", include_in_schema=False, status_code=200)
async def delete_post(request: Request[Any, Any, Any], post_id: FromPath[str], state: State) -> Template:
    user = who(request)
    await posts.delete_post(user.account_id, post_id, state["live"])
    return fragment("post_deleted")


# --- gestures ------------------------------------------------------------------------------------------------------


@post("/posts/{post_id:str}/like", include_in_schema=False, opt={"rate": "gesture"})
async def toggle_like(request: Request[Any, Any, Any], post_id: FromPath[str], state: State) -> Template:
    user = who(request)
    _, _, membership = await posts.post_and_access(user.account_id, post_id)
    liked = post_id in await gestures.liked_by(membership["id"], [post_id])
    change = gestures.unlike if liked else gestures.like
    result = await change(user.account_id, post_id, state["live"])
    like = {"post_id": post_id, "like_count": result.like_count, "liked_by_coach": result.liked_by_coach}
    # Whether *this reader* likes it travels as an event on the button they pressed; the shared state is the body.
    trigger = encoder.encode({"kindred:liked": {"liked": result.liked_by_me}}).decode()
    return Template("fragments/likes.html", context={"like": like}, headers={"HX-Trigger": trigger})


@put("/posts/{post_id:str}/pin", include_in_schema=False, opt={"rate": "gesture"})
async def pin_post(request: Request[Any, Any, Any], post_id: FromPath[str], state: State) -> Template:
    user = who(request)
    result = await gestures.pin(user.account_id, post_id, await typed(request, "note"), state["live"])
    return fragment("pin", pin=result)


@delete("/posts/{post_id:str}/pin", include_in_schema=False, status_code=200, opt={"rate": "gesture"})
async def unpin_post(request: Request[Any, Any, Any], post_id: FromPath[str], state: State) -> Template:
    user = who(request)
    return fragment("pin", pin=await gestures.unpin(user.account_id, post_id, state["live"]))


@get("/posts/{post_id:str}/share", include_in_schema=False)
async def share_form(request: Request[Any, Any, Any], post_id: FromPath[str]) -> Template:
    user = who(request)
    row, room, membership = await posts.post_and_access(user.account_id, post_id)
    gestures.require_visible(row, membership, "share")
    groups = await gestures.share_targets(user.account_id, room["circle"], row["room"], membership["role"] == "coach")
    across = any(g["across"] for g in groups)
    return fragment("share_form", post={"id": post_id}, groups=groups, across=across)


@post("/posts/{post_id:str}/share", include_in_schema=False, opt={"rate": "gesture"})
async def share_post(request: Request[Any, Any, Any], post_id: FromPath[str], data: Form, state: State) -> Template:
    user = who(request)
    shared = await gestures.share(user.account_id, post_id, data.get("room_id", ""), data.get("note"), state["live"])
    room = await Room.select(Room.name).where(Room.id == uuid.UUID(shared.room_id)).first()
    name = room["name"] if room else "the room"
    return fragment("done", message=f"Shared to {name}.", slot=f"reply-slot-{post_id}")


@get("/posts/{post_id:str}/tag", include_in_schema=False)
async def tag_form(request: Request[Any, Any, Any], post_id: FromPath[str]) -> Template:
    user = who(request)
    row, room, membership = await posts.post_and_access(user.account_id, post_id)
    gestures.require_visible(row, membership, "tag anyone in")
    everyone = await circles.members(user.account_id, str(room["circle"]))
    others = [m for m in everyone if m.membership_id != str(membership["id"])]
    return fragment("tag_form", post={"id": post_id}, members=others)


@post("/posts/{post_id:str}/tag", include_in_schema=False, opt={"rate": "gesture"})
async def tag_member(request: Request[Any, Any, Any], post_id: FromPath[str], data: Form, state: State) -> Template:
    user = who(request)
    tagged = await gestures.tag(user.account_id, post_id, data.get("membership_id", ""), state["live"])
    return fragment("done", message=f"{tagged.membership.alias} was notified.", slot=f"reply-slot-{post_id}")


@get("/circles/{circle_id:str}/insights", include_in_schema=False)
async def insights_page(request: Request[Any, Any, Any], circle_id: FromPath[str]) -> Template:
    user = who(request)
    circle, membership = await circles.get_circle(user.account_id, circle_id)
    room_names = {r.id: r.name for r in await circles.rooms(user.account_id, circle_id)}
    return page(
        "insights",
        me=await _me(request),
        circle=circle,
        membership=membership,
        insights=await gestures.insights(user.account_id, circle_id),
        room_names=room_names,
    )


# --- safety --------------------------------------------------------------------------------------------------------


@put("/posts/{post_id:str}/hidden", include_in_schema=False)
async def hide_post(request: Request[Any, Any, Any], post_id: FromPath[str], state: State) -> Template:
    user = who(request)
    hidden = await moderation.hide_post(user.account_id, post_id, await typed(request, "reason"), state["live"])
    return fragment("post_main", post=hidden)


@delete("/posts/{post_id:str}/hidden", include_in_schema=False, status_code=200)
async def restore_post(request: Request[Any, Any, Any], post_id: FromPath[str], state: State) -> Template:
    user = who(request)
    return fragment("post_main", post=await moderation.restore_post(user.account_id, post_id, state["live"]))


@post("/posts/{post_id:str}/removal", include_in_schema=False, status_code=200)
async def remove_post(request: Request[Any, Any, Any], post_id: FromPath[str], state: State) -> Template:
    user = who(request)
    reason = await typed(request, "reason")
    await moderation.remove_post_with_reason(user.account_id, post_id, reason, state["live"])
    return fragment("post_deleted")


@post("/posts/{post_id:str}/report", include_in_schema=False, status_code=200, opt={"rate": "report"})
async def report_post(request: Request[Any, Any, Any], post_id: FromPath[str], state: State) -> Template:
    user = who(request)
    reason = await typed(request, "reason")
    if not (reason or "").strip():
        raise ClientException("Say in a few words what is wrong, so your coach knows what to look at.")
    asked_at = datetime.now(UTC)
    report = await moderation.report(user.account_id, post_id, reason, state["live"])
    # One open report per member and post: a second tap while it is open answers with it; once the coach has looked
    # at it, reporting again reopens it (moderation.report).
    if report.created_at < asked_at:
        message = "You already reported this post; your coach has your report and will look at it."
    else:
        message = "Thank you. Your coach will look at it."
    return fragment("done", message=message, slot=f"reply-slot-{post_id}")


@put("/circles/{circle_id:str}/members/{membership_id:str}/mute", include_in_schema=False)
async def mute_member(
    request: Request[Any, Any, Any], circle_id: FromPath[str], membership_id: FromPath[str], data: Form, state: State
) -> Template:
    user = who(request)
    body = form_body(MuteBody, {"minutes": data.get("minutes", "").strip(), "reason": data.get("reason") or None})
    muted = await moderation.mute(user.account_id, circle_id, membership_id, body.minutes, body.reason, state["live"])
    assert muted.muted_until is not None
    return fragment(
        "done", message=f"Paused until {muted.muted_until:%d %b, %H:%M} UTC.", slot=f"member-{membership_id}-result"
    )


@delete("/circles/{circle_id:str}/members/{membership_id:str}/mute", include_in_schema=False, status_code=200)
async def unmute_member(
    request: Request[Any, Any, Any], circle_id: FromPath[str], membership_id: FromPath[str], state: State
) -> Template:
    user = who(request)
    await moderation.unmute(user.account_id, circle_id, membership_id, state["live"])
    return fragment("done", message="They can post again.", slot=f"member-{membership_id}-result")


@post("/circles/{circle_id:str}/members/{membership_id:str}/remove", include_in_schema=False, status_code=200)
async def remove_member(
    request: Request[Any, Any, Any], circle_id: FromPath[str], membership_id: FromPath[str], state: State
) -> Template:
    user = who(request)
    reason = await typed(request, "reason")
    await moderation.remove_member(user.account_id, circle_id, membership_id, reason, state["live"])
    return fragment("done", message="Removed from the circle.", slot=f"member-{membership_id}-result")


@post("/circles/{circle_id:str}/members/{membership_id:str}/allow-rejoin", include_in_schema=False, status_code=200)
async def allow_rejoin(
    request: Request[Any, Any, Any], circle_id: FromPath[str], membership_id: FromPath[str]
) -> Template:
    user = who(request)
    await moderation.allow_rejoin(user.account_id, circle_id, membership_id)
    return fragment("done", message="They can join again with an invite link.", slot=f"former-{membership_id}-result")


@post("/circles/{circle_id:str}/identity", include_in_schema=False)
async def set_identity(
    request: Request[Any, Any, Any], circle_id: FromPath[str], data: Form, state: State
) -> Response[Any]:
    user = who(request)
    visible = data.get("coach_sees_identity") == "on"
    await circles.update_circle(user.account_id, circle_id, CircleUpdate(coach_sees_identity=visible), state["live"])
    return Redirect(f"/circles/{circle_id}", status_code=HTTP_303_SEE_OTHER)


@get("/circles/{circle_id:str}/moderation", include_in_schema=False)
async def moderation_page(request: Request[Any, Any, Any], circle_id: FromPath[str]) -> Template:
    user = who(request)
    circle, membership = await circles.get_circle(user.account_id, circle_id)
    return page(
        "moderation",
        me=await _me(request),
        circle=circle,
        membership=membership,
        reports=await moderation.reports(user.account_id, circle_id),
        resolved=[r for r in await moderation.reports(user.account_id, circle_id, open_only=False) if r.resolved_at][
            -20:
        ][::-1],
        audit=await moderation.audit_log(user.account_id, circle_id),
        former=await moderation.former_members(user.account_id, circle_id),
    )


async def moderation_circle(report: Any) -> str:
    room = await Room.select(Room.circle).where(Room.id == uuid.UUID(report.post.room_id)).first()
    assert room is not None
    return str(room["circle"])


@post("/reports/{report_id:str}/resolve", include_in_schema=False, status_code=200)
async def resolve_report(
    request: Request[Any, Any, Any], report_id: FromPath[str], data: Form, state: State
) -> Template:
    user = who(request)
    action = RESOLUTIONS.get(data.get("action", ""))
    if action is None:
        raise ClientException("choose dismiss, hide or remove")
    resolved = await moderation.resolve(
        user.account_id,
        report_id,
        action,
        data.get("reason"),
        state["live"],
    )
    # The log rides along (out of band), so the page shows what was just done without a reload.
    circle_id = await moderation_circle(resolved)
    return fragment("report", report=resolved, audit_oob=await moderation.audit_log(user.account_id, circle_id))


@post("/circles/{circle_id:str}/close", include_in_schema=False)
async def close_circle(request: Request[Any, Any, Any], circle_id: FromPath[str], state: State) -> Response[Any]:
    user = who(request)
    await circles.close_circle(user.account_id, circle_id, state["live"])
    return Redirect(f"/circles/{circle_id}", status_code=HTTP_303_SEE_OTHER)


@post("/circles/{circle_id:str}/reopen", include_in_schema=False)
async def reopen_circle(request: Request[Any, Any, Any], circle_id: FromPath[str]) -> Response[Any]:
    user = who(request)
    await circles.reopen_circle(user.account_id, circle_id)
    if request.headers.get("hx-request"):
        return Response(None, status_code=204, headers={"HX-Redirect": f"/circles/{circle_id}"})
    return Redirect(f"/circles/{circle_id}", status_code=HTTP_303_SEE_OTHER)


async def _account_page(request: Request[Any, Any, Any], status: int = 200, **context: Any) -> Template:
    user = who(request)
    context.setdefault("message", None)
    context.setdefault("error", None)
    return page("account", status, me=await _me(request), circles=await accounts.my_circles(user.account_id), **context)


@get("/account", include_in_schema=False)
async def account_page(request: Request[Any, Any, Any]) -> Template:
    return await _account_page(request)


@post("/account/alias/{circle_id:str}", include_in_schema=False, opt={"rate": "alias"})
async def change_alias(request: Request[Any, Any, Any], circle_id: FromPath[str], data: Form, state: State) -> Template:
    user = who(request)
    try:
        changed = await circles.change_alias(user.account_id, circle_id, data.get("alias", ""), state["live"])
    except HTTPException as exc:
        return await _account_page(request, exc.status_code, error=exc.detail)
    return await _account_page(request, message=f"You now appear as {changed.alias} in that circle.")


@post("/account/password", include_in_schema=False, opt={"rate": "reauth"})
async def change_password(request: Request[Any, Any, Any], data: Form, state: State) -> Template:
    user = who(request)
    try:
        async with limits.failures_only(request, wrong=403):
            await accounts.change_password(
                user.account_id,
                user.token_id,
                data.get("current_password", ""),
                data.get("new_password", ""),
                state["live"],
            )
    except HTTPException as exc:
        return await _account_page(request, exc.status_code, error=exc.detail)
    return await _account_page(request, message="Password changed. Your other devices are signed out.")


@post("/account/delete", include_in_schema=False, opt={"rate": "reauth"})
async def delete_account(request: Request[Any, Any, Any], data: Form, state: State) -> Response[Any]:
    user = who(request)
    choice: Literal["anonymize", "remove"] = "remove" if data.get("posts") == "remove" else "anonymize"
    try:
        async with limits.failures_only(request, wrong=403):
            await accounts.delete_account(user.account_id, data.get("password", ""), choice, state["live"])
    except HTTPException as exc:
        return await _account_page(request, exc.status_code, error=exc.detail)
    settings: Settings = state["settings"]
    return Redirect("/", status_code=HTTP_303_SEE_OTHER, cookies=[expired_session_cookie(settings)])


# --- notifications ---------------------------------------------------------------------------------------------------

CHANNEL_LABELS = {"in_app": "in Kindred", "browser": "browser notification", "push": "push"}
# Offered in the time zone field; any IANA name is accepted.
COMMON_ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/Madrid",
    "Europe/Amsterdam",
    "Europe/Stockholm",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Africa/Johannesburg",
)


TAGS = re.compile(r"<[^>]+>")
EXCERPT = 80


def excerpt(rendered: str, size: int = EXCERPT) -> str:
    """About `size` characters of a post's sanitised HTML as plain text, cut at a word where one is near."""
    text = " ".join(html_text.unescape(TAGS.sub(" ", rendered)).split())
    if len(text) <= size:
        return text
    cut = text[: size - 1]
    if " " in cut[size // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:—-") + "…"


class NoteContext(msgspec.Struct):
    """What a notification's entry shows besides its sentence: a few words of the post, and whether the drop-in it
    announced is over (then its "join now" is retired)."""

    excerpts: dict[str, str]
    dropins: dict[str, tuple[str, str]]  # room id -> (title, state) of the drop-ins the notifications are about


async def note_context(notes: list[Any], circle_ids: set[str]) -> NoteContext:
    # Only posts still there for everyone (not deleted, not hidden), in circles the reader is still in.
    ids = {uuid.UUID(n.post_id) for n in notes if n.post_id and n.circle_id in circle_ids}
    excerpts: dict[str, str] = {}
    if ids:
        rows = await PostRow.select(PostRow.id, PostRow.html).where(
            PostRow.id.is_in(list(ids)) & PostRow.deleted_at.is_null() & PostRow.hidden_at.is_null()
        )
        excerpts = {str(r["id"]): excerpt(r["html"]) for r in rows}
    rooms = {uuid.UUID(n.room_id) for n in notes if n.kind.startswith("dropin.") and n.room_id}
    found: dict[str, tuple[str, str]] = {}
    if rooms:
        rows = await DropinRow.select(DropinRow.room, DropinRow.title, DropinRow.state).where(
            DropinRow.room.is_in(list(rooms))
        )
        found = {str(r["room"]): (r["title"], r["state"]) for r in rows}
    return NoteContext(excerpts=excerpts, dropins=found)


@get("/notifications", include_in_schema=False)
async def notifications_page(request: Request[Any, Any, Any], before: FromQuery[str | None] = None) -> Template:
    user = who(request)
    items = await notifications.feed(user.account_id, limit=50, before=before)
    prefs = await preferences.get(user.account_id)
    zone = notifications.time_zone(prefs.timezone) or UTC
    days: list[tuple[str, list[Any]]] = []
    for note in items:
        day = note.created_at.astimezone(zone).strftime("%A, %d %B %Y")
        if not days or days[-1][0] != day:
            days.append((day, []))
        days[-1][1].append(note)
    circle_names = {str(c["circle_id"]): c["circle_name"] for c in await accounts.my_circles(user.account_id)}
    return page(
        "notifications",
        me=await _me(request),
        days=days,
        circle_names=circle_names,
        context=await note_context(items, set(circle_names)),
        unread=await notifications.unread_count(user.account_id),
        next_before=items[-1].id if len(items) == 50 else None,
    )


@post("/notifications/read-all", include_in_schema=False)
async def read_all(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    user = who(request)
    await notifications.mark_read(user.account_id, None, True, state["live"])
    return Redirect("/notifications", status_code=HTTP_303_SEE_OTHER)


@post("/notifications/{notification_id:str}/read", include_in_schema=False)
async def read_one(request: Request[Any, Any, Any], notification_id: FromPath[str], state: State) -> Template:
    """One notification marked read in place (htmx): the answer is its entry, now read."""
    user = who(request)
    await notifications.mark_read(user.account_id, [notification_id], False, state["live"])
    note = await notifications.one(user.account_id, notification_id)
    if note is None:
        raise NotFoundException("that notification is not yours, or no longer exists")
    circle_names = {str(c["circle_id"]): c["circle_name"] for c in await accounts.my_circles(user.account_id)}
    context = await note_context([note], set(circle_names))
    return fragment("notification", note=note, circle_names=circle_names, context=context)


@get("/notifications/{notification_id:str}/open", include_in_schema=False)
async def open_notification(
    request: Request[Any, Any, Any], notification_id: FromPath[str], state: State
) -> Response[Any]:
    user = who(request)
    target = await notifications.open_target(user.account_id, notification_id, state["live"])
    return Redirect(target, status_code=HTTP_303_SEE_OTHER)


async def _settings_page(request: Request[Any, Any, Any], status: int = 200, **context: Any) -> Template:
    user = who(request)
    context.setdefault("message", None)
    context.setdefault("error", None)
    return page(
        "notification_settings",
        status,
        me=await _me(request),
        prefs=await preferences.get(user.account_id),
        kind_labels=notifications.KIND_LABELS,
        channel_labels=CHANNEL_LABELS,
        zones=COMMON_ZONES,
        circles=await accounts.my_circles(user.account_id),
        **context,
    )


@get("/settings/notifications", include_in_schema=False)
async def notification_settings(request: Request[Any, Any, Any]) -> Template:
    return await _settings_page(request)


@post("/settings/notifications", include_in_schema=False)
async def save_notification_settings(request: Request[Any, Any, Any]) -> Template:
    user = who(request)
    form = await request.form()
    # Plain values into msgspec.convert, so every rule of the API's Preferences (HH:MM quiet hours...) holds here too.
    quiet = None
    if form.get("quiet") == "on":
        quiet = {"start": str(form.get("quiet_start") or ""), "end": str(form.get("quiet_end") or "")}
    raw = {
        "timezone": str(form.get("timezone") or "UTC").strip(),
        "quiet_hours": quiet,
        "kinds": {
            kind: {channel: form.get(f"{kind}.{channel}") == "on" for channel in CHANNEL_LABELS}
            for kind in notifications.KINDS
        },
        "muted_circles": [str(m) for m in form.getall("mute", [])],
        "circles": {
            str(c["circle_id"]): {
                kind: {channel: form.get(f"c.{c['circle_id']}.{kind}.{channel}") == "on" for channel in CHANNEL_LABELS}
                for kind in notifications.KINDS
                if form.get(f"c.{c['circle_id']}.{kind}") == "own"
            }
            for c in await accounts.my_circles(user.account_id)
        },
    }
    try:
        prefs = msgspec.convert(raw, Preferences)
        await preferences.put(user.account_id, prefs)
    except msgspec.ValidationError as exc:
        return await _settings_page(request, 400, error=_form_problem(exc))
    except HTTPException as exc:
        return await _settings_page(request, exc.status_code, error=exc.detail)
    return await _settings_page(request, message="Saved.")


def _form_problem(exc: msgspec.ValidationError) -> str:
    """What to fix, in the form's words rather than msgspec's."""
    where = str(exc)
    if "quiet_hours" in where:
        return "Quiet hours: give the start and the end as HH:MM, from 00:00 to 23:59 (for example 22:00 and 07:00)."
    if "timezone" in where:
        return "Time zone: use an IANA name of a place, like Europe/Berlin (at most 64 characters)."
    return f"Please check the form: {where}"


@get("/sw.js", include_in_schema=False)
async def service_worker() -> File:
    # Served from the root so its scope can be the whole site; never cached, so an update reaches browsers.
    return File(
        STATIC / "sw.js",
        media_type="text/javascript",
        content_disposition_type="inline",
        headers={"Service-Worker-Allowed": "/", "Cache-Control": "no-cache"},
    )


ROUTES: list[Any] = [
    home,
    signup_form,
    signup,
    signin_form,
    signin,
    signout,
    new_circle_form,
    new_circle,
    circle_page,
    create_invite,
    create_room,
    join_page,
    join,
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
    toggle_like,
    pin_post,
    unpin_post,
    share_form,
    share_post,
    tag_form,
    tag_member,
    insights_page,
    hide_post,
    restore_post,
    remove_post,
    report_post,
    mute_member,
    unmute_member,
    remove_member,
    allow_rejoin,
    set_identity,
    moderation_page,
    resolve_report,
    close_circle,
    reopen_circle,
    account_page,
    change_alias,
    welcomed,
    change_password,
    delete_account,
    notifications_page,
    read_all,
    read_one,
    open_notification,
    notification_settings,
    save_notification_settings,
    service_worker,
]
# Shared with the other page routers (drop-ins): how a page answers a missing sign-in and a 4xx.
PAGE_ERRORS: dict[Any, Any] = {SignInRequired: _redirect_to_sign_in, HTTPException: _page_error}
router = Router(path="/", route_handlers=ROUTES, exception_handlers=PAGE_ERRORS, include_in_schema=False)
