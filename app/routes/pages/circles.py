"""Opening a circle, its page, invites, rooms, the welcome card, and joining by an invite."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.exceptions import ClientException, HTTPException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from app.auth.tokens import Principal
from app.deps import SettingsDep, base_url
from app.routes.pages.common import Form, form_body, fragment, page, page_user, who
from app.schemas import CircleCreate, InviteCreate, RoomCreate
from app.services import accounts, circles, dropins, journals, moderation, safe_alias


@get("/circles/new", include_in_schema=False)
async def new_circle_form(request: Request[Any, Any, Any]) -> Template:
    who(request)
    return page("circle_new", me=await page_user(request), form={}, error=None)


@post("/circles/new", include_in_schema=False, opt={"rate": "circle"})
async def new_circle(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    user = who(request)
    form = {k: data.get(k, "") for k in ("name", "commonality", "norms", "coach_alias")}
    try:
        body = form_body(CircleCreate, {**form, "coach_alias": form["coach_alias"].strip() or None})
        circle = await circles.create_circle(user.account_id, body)
    except HTTPException as exc:
        return page("circle_new", exc.status_code, me=await page_user(request), form=form, error=exc.detail)
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
    journal_unread = journals_unread = 0
    if membership.role == "coach":
        journals_unread = sum((await journals.unread_by_journal(membership)).values())
    else:
        _, journal_unread = await journals.my_journal(user.account_id, circle_id)
    return page(
        "circle",
        journal_unread=journal_unread,
        journals_unread=journals_unread,
        welcome=membership.role != "coach" and membership.welcomed_at is None,
        alias_warnings=safe_alias.warnings(membership.alias),
        already=already == "1",
        closed=await circles.closed_state(circle_id),
        open_reports=len(await moderation.reports(user.account_id, circle_id)) if membership.role == "coach" else 0,
        me=await page_user(request),
        circle=circle,
        membership=membership,
        rooms=await circles.rooms(user.account_id, circle_id),
        members=await circles.members(user.account_id, circle_id),
        dropins=await dropins.upcoming(user.account_id, circle_id),
        past_dropins=await dropins.past(user.account_id, circle_id),
    )


@post("/circles/{circle_id:str}/invites", include_in_schema=False, opt={"rate": "invite"})
async def create_invite(
    request: Request[Any, Any, Any], circle_id: FromPath[str], data: Form, settings: SettingsDep
) -> Template:
    user = who(request)
    # An empty choice is "unlimited" uses and the default lifetime.
    fields = {
        "max_uses": data.get("max_uses", "").strip() or None,
        "expires_in_hours": data.get("hours", "").strip() or None,
    }
    invite = await circles.create_invite(
        user.account_id, circle_id, form_body(InviteCreate, fields), base_url(request, settings)
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
    return page("join", me=await page_user(request), circle=circle, code=code, form={}, error=None)


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
            me=await page_user(request),
            circle=circle,
            code=code,
            form={"alias": data.get("alias", "")},
            error=exc.detail,
        )
    return Redirect(f"/circles/{membership.circle_id}?welcome=1", status_code=HTTP_303_SEE_OTHER)


ROUTES: list[Any] = [new_circle_form, new_circle, circle_page, create_invite, create_room, join_page, join, welcomed]
