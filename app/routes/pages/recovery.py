"""Forgot your password? The request form, and the form a reset link opens."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from app.deps import LiveDep, SettingsDep
from app.routes.api_recovery import schedule_reset
from app.routes.pages.common import Form, page
from app.services import recovery


@get("/reset", include_in_schema=False)
async def reset_form() -> Template:
    return page("reset_request", me=None, sent=False, error=None)


@post("/reset", include_in_schema=False, opt={"rate": "reset"})
async def reset_send(
    request: Request[Any, Any, Any], data: Form, settings: SettingsDep, live: LiveDep
) -> Response[Any]:
    email = data.get("email", "").strip()
    if not email or len(email) > 320:
        return page("reset_request", 400, me=None, sent=False, error="write the email address you sign in with")
    answer = await schedule_reset(request, email, settings, live)
    # The same page for every address; the lookup and the mail run after it has gone out.
    return Template(
        "pages/reset_request.html", context={"me": None, "sent": True, "error": None}, background=answer.background
    )


@get("/reset/{token:str}", include_in_schema=False)
async def reset_link(token: FromPath[str]) -> Template:
    if not await recovery.token_is_open(token):
        return page("reset_password", 400, me=None, token=None, error=recovery.BAD_TOKEN)
    return page("reset_password", me=None, token=token, error=None)


@post("/reset/{token:str}", include_in_schema=False, opt={"rate": "reset"})
async def reset_set(token: FromPath[str], data: Form, live: LiveDep) -> Response[Any]:
    try:
        await recovery.confirm_reset(token, data.get("password", ""), live)
    except HTTPException as exc:
        still = await recovery.token_is_open(token)
        return page("reset_password", exc.status_code, me=None, token=token if still else None, error=exc.detail)
    return Redirect("/signin?reset=done", status_code=HTTP_303_SEE_OTHER)


ROUTES: list[Any] = [reset_form, reset_send, reset_link, reset_set]
