"""/api/v1: the lab (behavioural experiments on posts of kind experiment)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get, patch
from litestar.params import FromPath, JSONBody, QueryParameter

from app.deps import LiveDep, PrincipalDep
from app.schemas import ExperimentMoveBody, ExperimentPage
from app.services import lab
from realtime.events import ExperimentStateName, Post


@patch(
    "/posts/{post_id:str}/experiment",
    summary="Move your experiment on: tried, debriefed (with what happened and what you learned) or abandoned",
    opt={"rate": "edit"},
)
async def move_experiment(
    post_id: FromPath[str], data: JSONBody[ExperimentMoveBody], principal: PrincipalDep, live: LiveDep
) -> Post:
    return await lab.move(principal.account_id, post_id, data, live)


@get("/circles/{circle_id:str}/experiments", summary="The circle's experiments, newest first")
async def list_experiments(
    circle_id: FromPath[str],
    principal: PrincipalDep,
    # `state` is a name Litestar keeps for the application state; the query parameter is still called state.
    stage: Annotated[
        ExperimentStateName | None, QueryParameter(name="state", description="Only experiments in this state")
    ] = None,
    membership_id: Annotated[str | None, QueryParameter(description="Only this member's experiments")] = None,
    before: Annotated[str | None, QueryParameter(description="Exclusive: experiments older than this post id")] = None,
    limit: Annotated[int | None, QueryParameter(ge=1, le=100)] = None,
) -> ExperimentPage:
    return await lab.list_experiments(
        principal.account_id, circle_id, state=stage, membership_id=membership_id, before=before, limit=limit
    )


ROUTES: list[Any] = [move_experiment, list_experiments]
