"""/api/v1: moderation — hiding and removing posts, pausing and removing members, reports, the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import delete, get, post, put
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_204_NO_CONTENT

from app.deps import LiveDep, PrincipalDep
from app.schemas import AuditEntry, FormerMember, MuteBody, MuteOut, ReasonBody, ReportOut, ResolveBody
from app.services import moderation
from realtime.events import Post


@put("/posts/{post_id:str}/hidden", summary="Hide a post from the circle, with a reason its author sees (coach)")
async def hide(post_id: FromPath[str], data: JSONBody[ReasonBody], principal: PrincipalDep, live: LiveDep) -> Post:
    return await moderation.hide_post(principal.account_id, post_id, data.reason, live)


@delete("/posts/{post_id:str}/hidden", summary="Show a hidden post again (coach)", status_code=200)
async def restore(post_id: FromPath[str], principal: PrincipalDep, live: LiveDep) -> Post:
    return await moderation.restore_post(principal.account_id, post_id, live)


@post(
    "/posts/{post_id:str}/removal",
    summary="Remove a post, with a reason its author sees (coach)",
    status_code=HTTP_204_NO_CONTENT,
)
async def remove(post_id: FromPath[str], data: JSONBody[ReasonBody], principal: PrincipalDep, live: LiveDep) -> None:
    await moderation.remove_post_with_reason(principal.account_id, post_id, data.reason, live)


@put("/circles/{circle_id:str}/members/{membership_id:str}/mute", summary="Pause a member's posting (coach)")
async def mute(
    circle_id: FromPath[str],
    membership_id: FromPath[str],
    data: JSONBody[MuteBody],
    principal: PrincipalDep,
    live: LiveDep,
) -> MuteOut:
    return await moderation.mute(principal.account_id, circle_id, membership_id, data.minutes, data.reason, live)


@delete(
    "/circles/{circle_id:str}/members/{membership_id:str}/mute",
    summary="Let a member post again (coach)",
    status_code=200,
)
async def unmute(
    circle_id: FromPath[str], membership_id: FromPath[str], principal: PrincipalDep, live: LiveDep
) -> MuteOut:
    return await moderation.unmute(principal.account_id, circle_id, membership_id, live)


@delete(
    "/circles/{circle_id:str}/members/{membership_id:str}",
    summary="Remove a member (coach) or leave (yourself). Extension.",
    status_code=HTTP_204_NO_CONTENT,
)
async def remove_member(
    circle_id: FromPath[str],
    membership_id: FromPath[str],
    principal: PrincipalDep,
    live: LiveDep,
    reason: Annotated[str | None, QueryParameter(max_length=500, description="Recorded in the audit log")] = None,
) -> None:
    await moderation.remove_member(principal.account_id, circle_id, membership_id, reason, live)


@post("/posts/{post_id:str}/reports", summary="Report a post to the circle's coach", opt={"rate": "report"})
async def report(
    post_id: FromPath[str], data: JSONBody[ReasonBody], principal: PrincipalDep, live: LiveDep
) -> ReportOut:
    return await moderation.report(principal.account_id, post_id, data.reason, live)


@get("/circles/{circle_id:str}/reports", summary="The coach's queue of reports")
async def list_reports(
    circle_id: FromPath[str],
    principal: PrincipalDep,
    open: Annotated[bool, QueryParameter(description="Only unresolved reports")] = True,
) -> list[ReportOut]:
    return await moderation.reports(principal.account_id, circle_id, open_only=open)


@post(
    "/reports/{report_id:str}/resolve",
    summary="Resolve a report: dismiss it, hide or remove the post (coach)",
    status_code=200,
)
async def resolve(
    report_id: FromPath[str], data: JSONBody[ResolveBody], principal: PrincipalDep, live: LiveDep
) -> ReportOut:
    return await moderation.resolve(principal.account_id, report_id, data.action, data.reason, live)


@get("/circles/{circle_id:str}/audit", summary="The circle's moderation log, newest first (coach)")
async def audit(circle_id: FromPath[str], principal: PrincipalDep) -> list[AuditEntry]:
    return await moderation.audit_log(principal.account_id, circle_id)


@get(
    "/circles/{circle_id:str}/former-members",
    summary="Members who left or were removed, and whether they may rejoin (coach). Extension.",
)
async def former_members(circle_id: FromPath[str], principal: PrincipalDep) -> list[FormerMember]:
    return await moderation.former_members(principal.account_id, circle_id)


@post(
    "/circles/{circle_id:str}/members/{membership_id:str}/allow-rejoin",
    summary="Lift a removal: the account may join again with an invite (coach). Extension.",
    status_code=200,
)
async def allow_rejoin(circle_id: FromPath[str], membership_id: FromPath[str], principal: PrincipalDep) -> FormerMember:
    return await moderation.allow_rejoin(principal.account_id, circle_id, membership_id)


ROUTES: list[Any] = [
    hide,
    restore,
    remove,
    mute,
    unmute,
    remove_member,
    report,
    list_reports,
    resolve,
    audit,
    former_members,
    allow_rejoin,
]
