"""One-click unsubscribe (RFC 8058) from the links in non-transactional mail: no sign-in, no CSRF token.

`POST /unsubscribe/<token>` with the body `List-Unsubscribe=One-Click` turns that kind of mail off at once: that is
what a mail client sends for its "Unsubscribe" button, without cookies, so it cannot carry a CSRF token; the token in
the path is the proof. `GET` only shows a page with the same button: mail scanners open links, and must never
unsubscribe anyone by doing so.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from app.routes.pages.common import page
from app.services import mailprefs
from db.engine import write_transaction

ONE_CLICK = "One-Click"
BAD_LINK = "This unsubscribe link is not one of ours, or it has been mistyped. Your mail settings are unchanged."


@get("/unsubscribe/{token:str}", include_in_schema=False)
async def unsubscribe_page(token: FromPath[str]) -> Response[Any]:
    found = await mailprefs.resolve(token)
    if found is None:
        return page("unsubscribe", 404, me=None, found=None, done=False, token=None, error=BAD_LINK)
    return page("unsubscribe", me=None, found=found, done=False, token=token, error=None)


@post("/unsubscribe/{token:str}", include_in_schema=False, opt={"exclude_from_csrf": True})
async def unsubscribe_now(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[Any]:
    found = await mailprefs.resolve(token)
    if found is None:
        return page("unsubscribe", 404, me=None, found=None, done=False, token=None, error=BAD_LINK)
    form = await request.form()
    if form.get("List-Unsubscribe") != ONE_CLICK:
        return page(
            "unsubscribe",
            400,
            me=None,
            found=found,
            done=False,
            token=token,
            error="To unsubscribe, send List-Unsubscribe=One-Click (the button below does).",
        )
    async with write_transaction():
        await mailprefs.turn_off(found)
    return page("unsubscribe", me=None, found=found, done=True, token=None, error=None)


ROUTES: list[Any] = [unsubscribe_page, unsubscribe_now]
