"""/api/v1/auth/reset: account recovery by email (contract, second part)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.background_tasks import BackgroundTask
from litestar.params import JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from app.deps import LiveDep, SettingsDep
from app.limits import RateLimits
from app.schemas.accounts import ResetConfirm, ResetRequest
from app.services import recovery
from app.services.accounts import normalise_email


async def schedule_reset(
    request: Request[Any, Any, Any], email: str, settings: SettingsDep, live: LiveDep
) -> Response[None]:
    """The same 202 for every address. The lookup and the mail happen after the answer has gone, so its timing says
    nothing either; past the per-email limit nothing more is mailed (the answer is still 202)."""
    rates: RateLimits = request.app.state["rates"]
    email = normalise_email(email)
    task = None
    if await rates.allows("reset_email", email):
        task = BackgroundTask(recovery.request_reset, email, settings, live)
    return Response(None, status_code=HTTP_202_ACCEPTED, background=task)


@post(
    "/auth/reset",
    summary="Ask for a password reset link by email",
    description="Always 202, whether or not an account has the address; that account alone gets one mail.",
    status_code=HTTP_202_ACCEPTED,
    opt={"rate": "reset"},
)
async def reset(
    data: JSONBody[ResetRequest], settings: SettingsDep, live: LiveDep, request: Request[Any, Any, Any]
) -> Response[None]:
    return await schedule_reset(request, data.email, settings, live)


@post(
    "/auth/reset/confirm",
    summary="Set a new password with a reset link's token; every sign-in of the account ends",
    description="400 for a used, expired (after one hour) or unknown token, or a password the rules refuse (the "
    "token then stays usable).",
    status_code=HTTP_204_NO_CONTENT,
    opt={"rate": "reset"},
)
async def reset_confirm(data: JSONBody[ResetConfirm], live: LiveDep) -> None:
    await recovery.confirm_reset(data.token, data.password, live)


ROUTES: list[Any] = [reset, reset_confirm]
