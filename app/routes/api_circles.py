"""/api/v1: circles, invites, members, rooms."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, patch, post
from litestar.params import FromPath, JSONBody

from app.deps import LiveDep, PrincipalDep, SettingsDep, base_url
from app.schemas import (
    AliasBody,
    CircleClosed,
    CircleCreate,
    CircleOut,
    CircleUpdate,
    InviteCreate,
    InviteOut,
    Join,
    MemberWithIdentity,
    MyMembership,
    RoomCreate,
    RoomOut,
)
from app.services import circles, journals
from realtime.events import Membership


@post("/circles", summary="Open a circle; its creator becomes its coach", opt={"rate": "circle"})
async def create_circle(data: JSONBody[CircleCreate], principal: PrincipalDep) -> CircleOut:
    return await circles.create_circle(principal.account_id, data)


@get("/circles/{circle_id:str}", summary="A circle (members only)")
async def get_circle(circle_id: FromPath[str], principal: PrincipalDep) -> CircleOut:
    circle, _ = await circles.get_circle(principal.account_id, circle_id)
    return circle


@patch(
    "/circles/{circle_id:str}",
    summary="Change a circle (coach). Extension.",
    description=(
        "Turning `coach_sees_identity` on applies only to members who join afterwards (each member's consent is "
        "taken when they join); turning it off hides every member's identity from the coach, for good. Either change "
        "is written to the audit log and every member is notified."
    ),
)
async def update_circle(
    circle_id: FromPath[str], data: JSONBody[CircleUpdate], principal: PrincipalDep, live: LiveDep
) -> CircleOut:
    return await circles.update_circle(principal.account_id, circle_id, data, live)


@post("/circles/{circle_id:str}/invites", summary="Make an invite link (coach)", opt={"rate": "invite"})
async def create_invite(
    circle_id: FromPath[str],
    principal: PrincipalDep,
    request: Request[Any, Any, Any],
    settings: SettingsDep,
    data: JSONBody[InviteCreate | None] = None,
) -> InviteOut:
    return await circles.create_invite(
        principal.account_id, circle_id, data or InviteCreate(), base_url(request, settings)
    )


@post("/invites/{code:str}/join", summary="Join a circle under an alias", opt={"rate": "join"})
async def join(code: FromPath[str], data: JSONBody[Join], principal: PrincipalDep) -> MyMembership:
    return await circles.join(principal.account_id, code, data.alias)


@get("/circles/{circle_id:str}/members", summary="Members by alias (the coach also sees identities if allowed)")
async def list_members(
    circle_id: FromPath[str], principal: PrincipalDep
) -> list[Membership] | list[MemberWithIdentity]:
    return await circles.members(principal.account_id, circle_id)


@post("/circles/{circle_id:str}/rooms", summary="Open a room (coach)", opt={"rate": "room"})
async def create_room(circle_id: FromPath[str], data: JSONBody[RoomCreate], principal: PrincipalDep) -> RoomOut:
    return await circles.create_room(principal.account_id, circle_id, data)


@get("/circles/{circle_id:str}/rooms", summary="The circle's rooms")
async def list_rooms(circle_id: FromPath[str], principal: PrincipalDep) -> list[RoomOut]:
    return await circles.rooms(principal.account_id, circle_id)


ROUTES: list[Any] = [
    create_circle,
    get_circle,
    update_circle,
    create_invite,
    join,
    list_members,
    create_room,
    list_rooms,
]


@patch(
    "/circles/{circle_id:str}/membership", summary="Change your alias in a circle. Extension.", opt={"rate": "alias"}
)
async def change_alias(
    circle_id: FromPath[str], data: JSONBody[AliasBody], principal: PrincipalDep, live: LiveDep
) -> MyMembership:
    return await circles.change_alias(principal.account_id, circle_id, data.alias, live)


@post(
    "/circles/{circle_id:str}/close",
    summary="Close a circle: read-only now, deleted after 30 days (coach)",
    status_code=200,
)
async def close_circle(circle_id: FromPath[str], principal: PrincipalDep, live: LiveDep) -> CircleClosed:
    return await circles.close_circle(principal.account_id, circle_id, live)


@post(
    "/circles/{circle_id:str}/reopen", summary="Reopen a closed circle within its grace period (coach)", status_code=200
)
async def reopen_circle(circle_id: FromPath[str], principal: PrincipalDep, live: LiveDep) -> CircleClosed:
    return await circles.reopen_circle(principal.account_id, circle_id, live)


ROUTES.extend([change_alias, close_circle, reopen_circle])


@get("/memberships/{membership_id:str}/journal", summary="A member's journal: only they and the coach read it")
async def journal(membership_id: FromPath[str], principal: PrincipalDep) -> RoomOut:
    return await journals.journal(principal.account_id, membership_id)


@get("/circles/{circle_id:str}/journals", summary="Every member's journal (coach)")
async def circle_journals(circle_id: FromPath[str], principal: PrincipalDep) -> list[RoomOut]:
    return await journals.journals(principal.account_id, circle_id)


ROUTES.extend([journal, circle_journals])
