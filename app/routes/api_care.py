"""/api/v1: care (docs/care.md): the care check, telling the coach, themes collapsed always."""

from __future__ import annotations

from typing import Any

from litestar import get, post, put
from litestar.params import FromPath, JSONBody

from app.deps import LiveDep, PrincipalDep
from app.schemas import CareCheck, CareCheckBody, CareConcernBody, CollapsedThemes
from app.services import care_actions


@post(
    "/circles/{circle_id:str}/care-check",
    summary="The care check: does this text suggest its writer may be at risk? (members)",
    description="Answered and forgotten: the text is not stored or logged, and nobody learns of the check.",
    status_code=200,
)
async def care_check(circle_id: FromPath[str], data: JSONBody[CareCheckBody], principal: PrincipalDep) -> CareCheck:
    return await care_actions.check(principal.account_id, circle_id, data.body)


@post(
    "/circles/{circle_id:str}/care-concern",
    summary="Let the coach know, privately, that I am having a hard time (members). Extension.",
    description="One notification of kind `care.concern` to the circle's coach, opening the member's journal. "
    "No text goes with it; no peer learns of it.",
    status_code=204,
)
async def care_concern(
    circle_id: FromPath[str], data: JSONBody[CareConcernBody], principal: PrincipalDep, live: LiveDep
) -> None:
    await care_actions.tell_coach(principal.account_id, circle_id, live)


@get("/circles/{circle_id:str}/collapsed-themes", summary="Themes I prefer collapsed always (members). Extension.")
async def get_themes(circle_id: FromPath[str], principal: PrincipalDep) -> CollapsedThemes:
    return await care_actions.themes(principal.account_id, circle_id)


@put("/circles/{circle_id:str}/collapsed-themes", summary="Set the themes I prefer collapsed always. Extension.")
async def put_themes(
    circle_id: FromPath[str], data: JSONBody[CollapsedThemes], principal: PrincipalDep
) -> CollapsedThemes:
    return await care_actions.set_themes(principal.account_id, circle_id, data)


ROUTES: list[Any] = [care_check, care_concern, get_themes, put_themes]
