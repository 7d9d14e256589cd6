"""The account page: aliases, the password, deleting the account."""

from __future__ import annotations

from typing import Any, Literal

from litestar import Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from app import limits
from app.deps import LiveDep, SettingsDep
from app.routes.api_accounts import expired_session_cookie
from app.routes.pages.common import Form, page, page_user, who
from app.services import accounts, circles, email_change


async def _account_page(request: Request[Any, Any, Any], status: int = 200, **context: Any) -> Template:
    user = who(request)
    context.setdefault("message", None)
    context.setdefault("error", None)
    context.setdefault("alias_warnings", [])
    context.setdefault("pending_email", await email_change.pending_for(user.account_id))
    return page(
        "account", status, me=await page_user(request), circles=await accounts.my_circles(user.account_id), **context
    )


@get("/account", include_in_schema=False)
async def account_page(request: Request[Any, Any, Any]) -> Template:
    return await _account_page(request)


@post("/account/alias/{circle_id:str}", include_in_schema=False, opt={"rate": "alias"})
async def change_alias(
    request: Request[Any, Any, Any], circle_id: FromPath[str], data: Form, live: LiveDep
) -> Template:
    user = who(request)
    try:
        changed = await circles.change_alias(user.account_id, circle_id, data.get("alias", ""), live)
    except HTTPException as exc:
        return await _account_page(request, exc.status_code, error=exc.detail)
    return await _account_page(
        request, message=f"You now appear as {changed.alias} in that circle.", alias_warnings=changed.warnings
    )


@post("/account/password", include_in_schema=False, opt={"rate": "reauth"})
async def change_password(request: Request[Any, Any, Any], data: Form, live: LiveDep) -> Template:
    user = who(request)
    try:
        async with limits.failures_only(request, wrong=403):
            await accounts.change_password(
                user.account_id,
                user.token_id,
                data.get("current_password", ""),
                data.get("new_password", ""),
                live,
            )
    except HTTPException as exc:
        return await _account_page(request, exc.status_code, error=exc.detail)
    return await _account_page(request, message="Password changed. Your other devices are signed out.")


@post("/account/delete", include_in_schema=False, opt={"rate": "reauth"})
async def delete_account(
    request: Request[Any, Any, Any], data: Form, settings: SettingsDep, live: LiveDep
) -> Response[Any]:
    user = who(request)
    choice: Literal["anonymize", "remove"] = "remove" if data.get("posts") == "remove" else "anonymize"
    try:
        async with limits.failures_only(request, wrong=403):
            await accounts.delete_account(user.account_id, data.get("password", ""), choice, live)
    except HTTPException as exc:
        return await _account_page(request, exc.status_code, error=exc.detail)
    return Redirect("/", status_code=HTTP_303_SEE_OTHER, cookies=[expired_session_cookie(settings)])


ROUTES: list[Any] = [account_page, change_alias, change_password, delete_account]
