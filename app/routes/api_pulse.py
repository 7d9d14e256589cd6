"""/api/v1: the coach's pulse."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get
from litestar.params import FromPath, QueryParameter

from app.deps import PrincipalDep
from app.schemas.pulse import Pulse
from app.services import pulse


@get(
    "/circles/{circle_id:str}/pulse",
    summary="The coach's pulse: each member's activity and the coach's gestures, and the circle over the window",
)
async def get_pulse(
    circle_id: FromPath[str],
    principal: PrincipalDep,
    days: Annotated[
        int, QueryParameter(ge=1, le=pulse.MAX_DAYS, description="The window: the last `days` whole UTC days")
    ] = pulse.DEFAULT_DAYS,
) -> Pulse:
    return await pulse.pulse(principal.account_id, circle_id, days)


ROUTES: list[Any] = [get_pulse]
