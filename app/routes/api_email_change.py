"""/api/v1/me/email: change the sign-in address, confirmed from the new address (docs/email.md)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response, post
from litestar.background_tasks import BackgroundTask
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from app import limits
from app.deps import LiveDep, PrincipalDep, SettingsDep
from app.limits import RateLimits
from app.schemas.accounts import AccountOut, EmailChangeConfirm, EmailChangeRequest
from app.services import email_change
from app.settings import Settings


async def schedule_change(
    request: Request[Any, Any, Any], account_id: uuid.UUID, email: str, password: str, settings: Settings, live: Any
) -> Response[None]:
    """Check the address and the password (400, 403 counted like a failed sign-in), count the request against the
    account's limit (429), and answer 202; the change and its mails are written after the answer has gone out, so
    neither the answer nor its timing says whether another account has the address."""
    async with limits.failures_only(request, wrong=403):
        new = await email_change.check_request(account_id, email, password)
    rates: RateLimits = request.app.state["rates"]
    await rates.check("email_change", account_id)
    mail_new = await rates.allows("email_change_to", new)
    task = BackgroundTask(email_change.request_change, account_id, new, mail_new, settings, live)
    return Response(None, status_code=HTTP_202_ACCEPTED, background=task)


@post(
    "/me/email",
    summary="Ask to change your sign-in address; a confirmation link goes to the new address",
    description="202 whether or not another account has the address (that address's inbox is told instead, and no "
    "link is made); the old address gets a notice. 400 for a malformed or unchanged address, 403 for a wrong "
    "password (counted like a failed sign-in), 429 past the account's limit. The address changes only when the "
    "link is used.",
    status_code=HTTP_202_ACCEPTED,
    opt={"rate": "reauth"},
)
async def change_email(
    data: JSONBody[EmailChangeRequest],
    principal: PrincipalDep,
    settings: SettingsDep,
    live: LiveDep,
    request: Request[Any, Any, Any],
) -> Response[None]:
    return await schedule_change(request, principal.account_id, data.email, data.password, settings, live)


@post(
    "/me/email/confirm",
    summary="Confirm a new sign-in address with the token from the link mailed to it",
    description="Anyone holding the token (it went to the new address). 200 with the account; 400 for a used, "
    "expired (after 24 hours) or unknown token; 409 when another account took the address meanwhile.",
    status_code=HTTP_200_OK,
    opt={"rate": "reset"},
)
async def confirm_email(data: JSONBody[EmailChangeConfirm], live: LiveDep) -> AccountOut:
    return await email_change.confirm_change(data.token, live)


ROUTES: list[Any] = [change_email, confirm_email]
