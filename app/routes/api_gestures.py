"""/api/v1: likes, pins and key insights, shares, tags; notifications."""

from __future__ import annotations

from typing import Any

from litestar import delete, get, post, put
from litestar.params import FromPath, JSONBody

from app.deps import LiveDep, PrincipalDep
from app.schemas import Insight, LikeOut, PinBody, PinOut, ShareBody, TagBody, TagOut
from app.services import gestures
from realtime.events import Post


@put("/posts/{post_id:str}/like", summary="Like a post (idempotent)", opt={"rate": "gesture"})
async def like(post_id: FromPath[str], principal: PrincipalDep, live: LiveDep) -> LikeOut:
    return await gestures.like(principal.account_id, post_id, live)


@delete("/posts/{post_id:str}/like", summary="Take back a like (idempotent)", status_code=200, opt={"rate": "gesture"})
async def unlike(post_id: FromPath[str], principal: PrincipalDep, live: LiveDep) -> LikeOut:
    return await gestures.unlike(principal.account_id, post_id, live)


@put("/posts/{post_id:str}/pin", summary="Pin a post as a key insight (coach)", opt={"rate": "gesture"})
async def pin(
    post_id: FromPath[str], principal: PrincipalDep, live: LiveDep, data: JSONBody[PinBody | None] = None
) -> PinOut:
    return await gestures.pin(principal.account_id, post_id, data.note if data else None, live)


@delete("/posts/{post_id:str}/pin", summary="Unpin a key insight (coach)", status_code=200, opt={"rate": "gesture"})
async def unpin(post_id: FromPath[str], principal: PrincipalDep, live: LiveDep) -> PinOut:
    return await gestures.unpin(principal.account_id, post_id, live)


@get("/circles/{circle_id:str}/insights", summary="The circle's key insights, newest pin first")
async def insights(circle_id: FromPath[str], principal: PrincipalDep) -> list[Insight]:
    return await gestures.insights(principal.account_id, circle_id)


@post(
    "/posts/{post_id:str}/shares",
    summary="Share a post into another room (coach: also another circle)",
    opt={"rate": "gesture"},
)
async def share(post_id: FromPath[str], data: JSONBody[ShareBody], principal: PrincipalDep, live: LiveDep) -> Post:
    return await gestures.share(principal.account_id, post_id, data.room_id, data.note, live)


@post("/posts/{post_id:str}/tags", summary="Draw a member into a thread; they are notified", opt={"rate": "gesture"})
async def tag(post_id: FromPath[str], data: JSONBody[TagBody], principal: PrincipalDep, live: LiveDep) -> TagOut:
    return await gestures.tag(principal.account_id, post_id, data.membership_id, live)


ROUTES: list[Any] = [like, unlike, pin, unpin, insights, share, tag]
