"""Changing the sign-in address: the account page's form, and the page the link in the mail opens (a button, not
the visit itself, confirms: mail scanners open links)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.response import Template

from app.deps import LiveDep, SettingsDep
from app.routes.api_email_change import schedule_change
from app.routes.pages.account import _account_page
from app.routes.pages.common import Form, page, page_user, who
from app.services import email_change


@post("/account/email", include_in_schema=False, opt={"rate": "reauth"})
async def ask_for_change(
    request: Request[Any, Any, Any], data: Form, settings: SettingsDep, live: LiveDep
) -> Response[Any]:
    user = who(request)
    email = data.get("email", "").strip()
    if not email:
        return await _account_page(request, 400, error="email: write the new address you want to sign in with")
    try:
        answer = await schedule_change(request, user.account_id, email, data.get("password", ""), settings, live)
    except HTTPException as exc:
        return await _account_page(request, exc.status_code, error=exc.detail)
    template = await _account_page(
        request,
        message=f"We sent a link to {email_change.normalise(email)}. Your address changes when you open it; until "
        "then you sign in with your current one.",
    )
    template.background = answer.background
    return template


@get("/email/confirm/{token:str}", include_in_schema=False)
async def confirm_page(request: Request[Any, Any, Any], token: FromPath[str]) -> Template:
    me = await page_user(request)
    new = await email_change.open_change(token)
    if new is None:
        return page("email_confirm", 400, me=me, token=None, new=None, done=False, error=email_change.BAD_TOKEN)
    return page("email_confirm", me=me, token=token, new=new, done=False, error=None)


@post("/email/confirm/{token:str}", include_in_schema=False, opt={"rate": "reset"})
async def confirm(request: Request[Any, Any, Any], token: FromPath[str], live: LiveDep) -> Template:
    try:
        account = await email_change.confirm_change(token, live)
    except HTTPException as exc:
        new = await email_change.open_change(token)
        me = await page_user(request)
        return page(
            "email_confirm", exc.status_code, me=me, token=token if new else None, new=new, done=False, error=exc.detail
        )
    return page("email_confirm", me=await page_user(request), token=None, new=account.email, done=True, error=None)


ROUTES: list[Any] = [ask_for_change, confirm_page, confirm]
