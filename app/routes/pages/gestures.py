"""Likes, pins, sharing, tagging a member, and the key insights page."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, delete, get, post, put
from litestar.params import FromPath
from litestar.response import Template

from app.deps import LiveDep
from app.routes.pages.common import Form, fragment, page, page_user, typed, who
from app.services import circles, gestures, posts
from db.tables import Room
from realtime.events import encoder


@post("/posts/{post_id:str}/like", include_in_schema=False, opt={"rate": "gesture"})
async def toggle_like(request: Request[Any, Any, Any], post_id: FromPath[str], live: LiveDep) -> Template:
    user = who(request)
    _, _, membership = await posts.post_and_access(user.account_id, post_id)
    liked = post_id in await gestures.liked_by(membership.id, [post_id])
    change = gestures.unlike if liked else gestures.like
    result = await change(user.account_id, post_id, live)
    like = {"post_id": post_id, "like_count": result.like_count, "liked_by_coach": result.liked_by_coach}
    # Whether *this reader* likes it travels as an event on the button they pressed; the shared state is the body.
    trigger = encoder.encode({"kindred:liked": {"liked": result.liked_by_me}}).decode()
    return Template("fragments/likes.html", context={"like": like}, headers={"HX-Trigger": trigger})


@put("/posts/{post_id:str}/pin", include_in_schema=False, opt={"rate": "gesture"})
async def pin_post(request: Request[Any, Any, Any], post_id: FromPath[str], live: LiveDep) -> Template:
    user = who(request)
    result = await gestures.pin(user.account_id, post_id, await typed(request, "note"), live)
    return fragment("pin", pin=result)


@delete("/posts/{post_id:str}/pin", include_in_schema=False, status_code=200, opt={"rate": "gesture"})
async def unpin_post(request: Request[Any, Any, Any], post_id: FromPath[str], live: LiveDep) -> Template:
    user = who(request)
    return fragment("pin", pin=await gestures.unpin(user.account_id, post_id, live))


@get("/posts/{post_id:str}/share", include_in_schema=False)
async def share_form(request: Request[Any, Any, Any], post_id: FromPath[str]) -> Template:
    user = who(request)
    row, room, membership = await posts.post_and_access(user.account_id, post_id)
    gestures.require_visible(row, membership, "share")
    groups = await gestures.share_targets(user.account_id, room.circle, row.room, membership.role == "coach")
    across = any(g["across"] for g in groups)
    return fragment("share_form", post={"id": post_id}, groups=groups, across=across)


@post("/posts/{post_id:str}/share", include_in_schema=False, opt={"rate": "gesture"})
async def share_post(request: Request[Any, Any, Any], post_id: FromPath[str], data: Form, live: LiveDep) -> Template:
    user = who(request)
    shared = await gestures.share(user.account_id, post_id, data.get("room_id", ""), data.get("note"), live)
    room = await Room.select(Room.name).where(Room.id == uuid.UUID(shared.room_id)).first()
    name = room["name"] if room else "the room"
    return fragment("done", message=f"Shared to {name}.", slot=f"reply-slot-{post_id}")


@get("/posts/{post_id:str}/tag", include_in_schema=False)
async def tag_form(request: Request[Any, Any, Any], post_id: FromPath[str]) -> Template:
    user = who(request)
    row, room, membership = await posts.post_and_access(user.account_id, post_id)
    gestures.require_visible(row, membership, "tag anyone in")
    everyone = await circles.members(user.account_id, str(room.circle))
    others = [m for m in everyone if m.membership_id != str(membership.id)]
    return fragment("tag_form", post={"id": post_id}, members=others)


@post("/posts/{post_id:str}/tag", include_in_schema=False, opt={"rate": "gesture"})
async def tag_member(request: Request[Any, Any, Any], post_id: FromPath[str], data: Form, live: LiveDep) -> Template:
    user = who(request)
    tagged = await gestures.tag(user.account_id, post_id, data.get("membership_id", ""), live)
    return fragment("done", message=f"{tagged.membership.alias} was notified.", slot=f"reply-slot-{post_id}")


@get("/circles/{circle_id:str}/insights", include_in_schema=False)
async def insights_page(request: Request[Any, Any, Any], circle_id: FromPath[str]) -> Template:
    user = who(request)
    circle, membership = await circles.get_circle(user.account_id, circle_id)
    room_names = {r.id: r.name for r in await circles.rooms(user.account_id, circle_id)}
    return page(
        "insights",
        me=await page_user(request),
        circle=circle,
        membership=membership,
        insights=await gestures.insights(user.account_id, circle_id),
        room_names=room_names,
    )


ROUTES: list[Any] = [toggle_like, pin_post, unpin_post, share_form, share_post, tag_form, tag_member, insights_page]
