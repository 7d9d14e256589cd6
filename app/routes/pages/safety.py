"""The coach's tools: hiding, removing and reports, pausing and removing members, the moderation page, closing a circle."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, delete, get, post, put
from litestar.exceptions import ClientException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from app.deps import LiveDep
from app.routes.pages.common import Form, form_body, fragment, page, page_user, typed, who
from app.schemas import CircleUpdate, MuteBody, Resolution
from app.services import circles, moderation
from db.tables import Room

RESOLUTIONS: dict[str, Resolution] = {"dismiss": "dismiss", "hide": "hide", "remove": "remove"}


@put("/posts/{post_id:str}/hidden", include_in_schema=False)
async def hide_post(request: Request[Any, Any, Any], post_id: FromPath[str], live: LiveDep) -> Template:
    user = who(request)
    hidden = await moderation.hide_post(user.account_id, post_id, await typed(request, "reason"), live)
    return fragment("post_main", post=hidden)


@delete("/posts/{post_id:str}/hidden", include_in_schema=False, status_code=200)
async def restore_post(request: Request[Any, Any, Any], post_id: FromPath[str], live: LiveDep) -> Template:
    user = who(request)
    return fragment("post_main", post=await moderation.restore_post(user.account_id, post_id, live))


@post("/posts/{post_id:str}/removal", include_in_schema=False, status_code=200)
async def remove_post(request: Request[Any, Any, Any], post_id: FromPath[str], live: LiveDep) -> Template:
    user = who(request)
    reason = await typed(request, "reason")
    await moderation.remove_post_with_reason(user.account_id, post_id, reason, live)
    return fragment("post_deleted")


@post("/posts/{post_id:str}/report", include_in_schema=False, status_code=200, opt={"rate": "report"})
async def report_post(request: Request[Any, Any, Any], post_id: FromPath[str], live: LiveDep) -> Template:
    user = who(request)
    reason = await typed(request, "reason")
    if not (reason or "").strip():
        raise ClientException("Say in a few words what is wrong, so your coach knows what to look at.")
    asked_at = datetime.now(UTC)
    report = await moderation.report(user.account_id, post_id, reason, live)
    # One open report per member and post: a second tap while it is open answers with it; once the coach has looked
    # at it, reporting again reopens it (moderation.report).
    if report.created_at < asked_at:
        message = "You already reported this post; your coach has your report and will look at it."
    else:
        message = "Thank you. Your coach will look at it."
    return fragment("done", message=message, slot=f"reply-slot-{post_id}")


@put("/circles/{circle_id:str}/members/{membership_id:str}/mute", include_in_schema=False)
async def mute_member(
    request: Request[Any, Any, Any], circle_id: FromPath[str], membership_id: FromPath[str], data: Form, live: LiveDep
) -> Template:
    user = who(request)
    body = form_body(MuteBody, {"minutes": data.get("minutes", "").strip(), "reason": data.get("reason") or None})
    muted = await moderation.mute(user.account_id, circle_id, membership_id, body.minutes, body.reason, live)
    assert muted.muted_until is not None
    return fragment(
        "done", message=f"Paused until {muted.muted_until:%d %b, %H:%M} UTC.", slot=f"member-{membership_id}-result"
    )


@delete("/circles/{circle_id:str}/members/{membership_id:str}/mute", include_in_schema=False, status_code=200)
async def unmute_member(
    request: Request[Any, Any, Any], circle_id: FromPath[str], membership_id: FromPath[str], live: LiveDep
) -> Template:
    user = who(request)
    await moderation.unmute(user.account_id, circle_id, membership_id, live)
    return fragment("done", message="They can post again.", slot=f"member-{membership_id}-result")


@post("/circles/{circle_id:str}/members/{membership_id:str}/remove", include_in_schema=False, status_code=200)
async def remove_member(
    request: Request[Any, Any, Any], circle_id: FromPath[str], membership_id: FromPath[str], live: LiveDep
) -> Template:
    user = who(request)
    reason = await typed(request, "reason")
    await moderation.remove_member(user.account_id, circle_id, membership_id, reason, live)
    return fragment("done", message="Removed from the circle.", slot=f"member-{membership_id}-result")


@post("/circles/{circle_id:str}/members/{membership_id:str}/allow-rejoin", include_in_schema=False, status_code=200)
async def allow_rejoin(
    request: Request[Any, Any, Any], circle_id: FromPath[str], membership_id: FromPath[str]
) -> Template:
    user = who(request)
    await moderation.allow_rejoin(user.account_id, circle_id, membership_id)
    return fragment("done", message="They can join again with an invite link.", slot=f"former-{membership_id}-result")


@post("/circles/{circle_id:str}/identity", include_in_schema=False)
async def set_identity(
    request: Request[Any, Any, Any], circle_id: FromPath[str], data: Form, live: LiveDep
) -> Response[Any]:
    user = who(request)
    visible = data.get("coach_sees_identity") == "on"
    await circles.update_circle(user.account_id, circle_id, CircleUpdate(coach_sees_identity=visible), live)
    return Redirect(f"/circles/{circle_id}", status_code=HTTP_303_SEE_OTHER)


@get("/circles/{circle_id:str}/moderation", include_in_schema=False)
async def moderation_page(request: Request[Any, Any, Any], circle_id: FromPath[str]) -> Template:
    user = who(request)
    circle, membership = await circles.get_circle(user.account_id, circle_id)
    return page(
        "moderation",
        me=await page_user(request),
        circle=circle,
        membership=membership,
        reports=await moderation.reports(user.account_id, circle_id),
        resolved=[r for r in await moderation.reports(user.account_id, circle_id, open_only=False) if r.resolved_at][
            -20:
        ][::-1],
        audit=await moderation.audit_log(user.account_id, circle_id),
        former=await moderation.former_members(user.account_id, circle_id),
    )


async def moderation_circle(report: Any) -> str:
    room = await Room.select(Room.circle).where(Room.id == uuid.UUID(report.post.room_id)).first()
    assert room is not None
    return str(room["circle"])


@post("/reports/{report_id:str}/resolve", include_in_schema=False, status_code=200)
async def resolve_report(
    request: Request[Any, Any, Any], report_id: FromPath[str], data: Form, live: LiveDep
) -> Template:
    user = who(request)
    action = RESOLUTIONS.get(data.get("action", ""))
    if action is None:
        raise ClientException("choose dismiss, hide or remove")
    resolved = await moderation.resolve(
        user.account_id,
        report_id,
        action,
        data.get("reason"),
        live,
    )
    # The log rides along (out of band), so the page shows what was just done without a reload.
    circle_id = await moderation_circle(resolved)
    return fragment("report", report=resolved, audit_oob=await moderation.audit_log(user.account_id, circle_id))


@post("/circles/{circle_id:str}/close", include_in_schema=False)
async def close_circle(request: Request[Any, Any, Any], circle_id: FromPath[str], live: LiveDep) -> Response[Any]:
    user = who(request)
    await circles.close_circle(user.account_id, circle_id, live)
    return Redirect(f"/circles/{circle_id}", status_code=HTTP_303_SEE_OTHER)


@post("/circles/{circle_id:str}/reopen", include_in_schema=False)
async def reopen_circle(request: Request[Any, Any, Any], circle_id: FromPath[str], live: LiveDep) -> Response[Any]:
    user = who(request)
    await circles.reopen_circle(user.account_id, circle_id, live)
    if request.headers.get("hx-request"):
        return Response(None, status_code=204, headers={"HX-Redirect": f"/circles/{circle_id}"})
    return Redirect(f"/circles/{circle_id}", status_code=HTTP_303_SEE_OTHER)


ROUTES: list[Any] = [
    hide_post,
    restore_post,
    remove_post,
    report_post,
    mute_member,
    unmute_member,
    remove_member,
    allow_rejoin,
    set_identity,
    moderation_page,
    resolve_report,
    close_circle,
    reopen_circle,
]
