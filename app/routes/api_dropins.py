"""/api/v1: live drop-in sessions."""

from __future__ import annotations

from typing import Any

from litestar import delete, get, post, put
from litestar.params import FromPath, JSONBody

from app.deps import LiveDep, PrincipalDep
from app.schemas import DropinCreate, DropinDetail
from app.schemas.dropins import SpotlightBody
from app.services import dropins
from realtime.events import Dropin, Membership


@post("/circles/{circle_id:str}/dropins", summary="Schedule a drop-in (coach)", opt={"rate": "room"})
async def schedule(circle_id: FromPath[str], data: JSONBody[DropinCreate], principal: PrincipalDep) -> Dropin:
    return await dropins.schedule(principal.account_id, circle_id, data)


@get("/circles/{circle_id:str}/dropins", summary="Upcoming and live drop-ins of a circle. Extension.")
async def upcoming(circle_id: FromPath[str], principal: PrincipalDep) -> list[Dropin]:
    return await dropins.upcoming(principal.account_id, circle_id)


@get("/dropins/{dropin_id:str}", summary="A drop-in: state, who is here, raised hands, spotlight")
async def get_dropin(dropin_id: FromPath[str], principal: PrincipalDep, live: LiveDep) -> DropinDetail:
    return await dropins.detail(principal.account_id, dropin_id, live)


@post("/dropins/{dropin_id:str}/start", summary="Go live (coach)", status_code=200)
async def start(dropin_id: FromPath[str], principal: PrincipalDep, live: LiveDep) -> Dropin:
    return await dropins.start(principal.account_id, dropin_id, live)


@post(
    "/dropins/{dropin_id:str}/end", summary="End: the room becomes read-only, with a summary (coach)", status_code=200
)
async def end(dropin_id: FromPath[str], principal: PrincipalDep, live: LiveDep) -> Dropin:
    return await dropins.end(principal.account_id, dropin_id, live)


@put("/dropins/{dropin_id:str}/hand", summary="Raise your hand", opt={"rate": "gesture"})
async def raise_hand(dropin_id: FromPath[str], principal: PrincipalDep, live: LiveDep) -> list[Membership]:
    return await dropins.raise_hand(principal.account_id, dropin_id, live)


@delete("/dropins/{dropin_id:str}/hand", summary="Lower your hand", status_code=200, opt={"rate": "gesture"})
async def lower_hand(dropin_id: FromPath[str], principal: PrincipalDep, live: LiveDep) -> list[Membership]:
    return await dropins.lower_hand(principal.account_id, dropin_id, live)


@post(
    "/dropins/{dropin_id:str}/hands/next", summary="Call on the first raised hand (coach). Extension.", status_code=200
)
async def call_next(dropin_id: FromPath[str], principal: PrincipalDep, live: LiveDep) -> DropinDetail:
    return await dropins.call_next(principal.account_id, dropin_id, live)


@put("/dropins/{dropin_id:str}/spotlight", summary="Spotlight a post for everyone (coach)", opt={"rate": "gesture"})
async def spotlight(
    dropin_id: FromPath[str], data: JSONBody[SpotlightBody], principal: PrincipalDep, live: LiveDep
) -> DropinDetail:
    return await dropins.spotlight(principal.account_id, dropin_id, data.post_id, live)


@delete("/dropins/{dropin_id:str}/spotlight", summary="Clear the spotlight (coach)", status_code=200)
async def clear_spotlight(dropin_id: FromPath[str], principal: PrincipalDep, live: LiveDep) -> DropinDetail:
    return await dropins.spotlight(principal.account_id, dropin_id, None, live)


ROUTES: list[Any] = [
    schedule,
    upcoming,
    get_dropin,
    start,
    end,
    raise_hand,
    lower_hand,
    call_next,
    spotlight,
    clear_spotlight,
]
