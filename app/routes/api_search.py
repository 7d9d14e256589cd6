"""/api/v1: search within a circle, and the lab's "others who tested a similar assumption"."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get
from litestar.params import FromPath, QueryParameter

from app.deps import PrincipalDep
from app.schemas.search import SearchPage, SimilarExperiments
from app.services import search
from realtime.events import ExperimentStateName, PostKind


@get("/circles/{circle_id:str}/search", summary="Search the circle's posts that you can read, best match first")
async def search_circle(
    circle_id: FromPath[str],
    principal: PrincipalDep,
    q: Annotated[
        str,
        QueryParameter(
            description='2-200 characters: words, "quoted phrases", -excluded words; the last word also matches as '
            "a prefix unless the query ends in a space",
            max_length=4000,
        ),
    ],
    kind: Annotated[PostKind | None, QueryParameter(description="Only posts of this kind")] = None,
    room_id: Annotated[str | None, QueryParameter(description="Only posts in this room")] = None,
    membership_id: Annotated[str | None, QueryParameter(description="Only posts by this member (alias)")] = None,
    pinned: Annotated[bool | None, QueryParameter(description="true: only key insights (pinned posts)")] = None,
    stage: Annotated[
        ExperimentStateName | None,
        QueryParameter(name="state", description="Only experiments in this state (extension)"),
    ] = None,
    limit: Annotated[int | None, QueryParameter(ge=1, le=search.MAX_LIMIT)] = None,
    offset: Annotated[int | None, QueryParameter(ge=0, le=search.MAX_OFFSET)] = None,
) -> SearchPage:
    filters = search.Filters(kind=kind, room_id=room_id, membership_id=membership_id, pinned=pinned, state=stage)
    return await search.search(principal.account_id, circle_id, q, filters, limit=limit, offset=offset)


@get(
    "/posts/{post_id:str}/similar-experiments",
    summary="Other members' experiments that tested a similar assumption (extension)",
)
async def similar_experiments(post_id: FromPath[str], principal: PrincipalDep) -> SimilarExperiments:
    return await search.similar_experiments(principal.account_id, post_id)


ROUTES: list[Any] = [search_circle, similar_experiments]
