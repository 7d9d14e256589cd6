"""The home page, signing up, in and out."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.params import FromQuery
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from app import limits
from app.auth import tokens
from app.auth.tokens import Principal
from app.deps import LiveDep, SettingsDep
from app.routes.api_accounts import expired_session_cookie, session_cookie
from app.routes.pages.common import Form, excerpt, page, page_user, safe_next
from app.services import accounts, dropins, notifications
from db.tables import Post as PostRow


@get("/", name="home", include_in_schema=False)
async def home(request: Request[Any, Any, Any]) -> Template:
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        return page("welcome", me=None)
    mine = await accounts.my_circles(user.account_id)
    return page(
        "home",
        me=await page_user(request),
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
            .where(
                (PostRow.room.circle == c["circle_id"])
                # The circle's latest is from its rooms: a journal's words are for its member and the coach only.
                & (PostRow.room.kind != "journal")
                & PostRow.deleted_at.is_null()
                & PostRow.hidden_at.is_null()
            )
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
async def signup(data: Form, settings: SettingsDep) -> Response[Any]:
    next_path = safe_next(data.get("next"))
    try:
        await accounts.register(data.get("email", ""), data.get("password", ""), data.get("name", ""))
        token, _, _ = await accounts.sign_in(data.get("email", ""), data.get("password", ""))
    except HTTPException as exc:
        form = {"email": data.get("email", ""), "name": data.get("name", "")}
        return page("signup", exc.status_code, me=None, next=next_path, form=form, error=exc.detail)
    return Redirect(next_path, status_code=HTTP_303_SEE_OTHER, cookies=[session_cookie(token, settings)])


@get("/signin", include_in_schema=False)
async def signin_form(next: FromQuery[str | None] = None, reset: FromQuery[str | None] = None) -> Template:
    return page("signin", me=None, next=safe_next(next), form={}, error=None, reset_done=reset == "done")


@post("/signin", include_in_schema=False, opt={"rate": "login"})
async def signin(request: Request[Any, Any, Any], data: Form, settings: SettingsDep, live: LiveDep) -> Response[Any]:
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
        await live.tokens_ended(previous.account_id, previous.token_id)
    return Redirect(next_path, status_code=HTTP_303_SEE_OTHER, cookies=[session_cookie(token, settings)])


@post("/signout", include_in_schema=False)
async def signout(request: Request[Any, Any, Any], settings: SettingsDep, live: LiveDep) -> Response[Any]:
    user = request.scope.get("user")
    if isinstance(user, Principal):
        await tokens.revoke(user.token_id)
        await live.signed_out(user.account_id, user.token_id)
    return Redirect("/", status_code=HTTP_303_SEE_OTHER, cookies=[expired_session_cookie(settings)])


ROUTES: list[Any] = [home, signup_form, signup, signin_form, signin, signout]
