"""/api/v1: accounts, sign-in, me."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, delete, get, post
from litestar.datastructures import Cookie
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from app import limits
from app.auth import tokens
from app.deps import LiveDep, PrincipalDep, SettingsDep
from app.schemas import AccountCreate, AccountDeletion, AccountOut, Export, Login, Me, PasswordChange, TokenOut
from app.services import accounts
from app.services import export as data_export


def session_cookie(token: str, settings: SettingsDep) -> Cookie:
    return Cookie(
        key=tokens.SESSION_COOKIE,
        value=token,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        max_age=int(tokens.TOKEN_TTL.total_seconds()),
    )


def expired_session_cookie(settings: SettingsDep) -> Cookie:
    return Cookie(
        key=tokens.SESSION_COOKIE,
        value="",
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        max_age=0,
    )


@post("/accounts", summary="Create an account", opt={"rate": "signup"})
async def create_account(data: JSONBody[AccountCreate]) -> AccountOut:
    return await accounts.register(data.email, data.password, data.name)


@post(
    "/auth/login",
    summary="Sign in: a bearer token, and the session cookie for browsers",
    status_code=HTTP_200_OK,
    opt={"rate": "login"},
)
async def login(
    data: JSONBody[Login], settings: SettingsDep, live: LiveDep, request: Request[Any, Any, Any]
) -> Response[TokenOut]:
    async with limits.failures_only(request, wrong=401):
        token, _token_id, _account_id = await accounts.sign_in(data.email, data.password)
    # A browser that arrives with a session gets a new one, and the old one ends (no session fixation); a bearer
    # client signing in again keeps its other tokens.
    previous = request.scope.get("user")
    if isinstance(previous, tokens.Principal) and previous.via == "cookie":
        await tokens.revoke(previous.token_id)
        await live.tokens_ended(previous.account_id, previous.token_id)
    return Response(TokenOut(token=token), cookies=[session_cookie(token, settings)])


@post("/auth/logout", summary="Sign out: this token and cookie stop working", status_code=HTTP_204_NO_CONTENT)
async def logout(principal: PrincipalDep, live: LiveDep, settings: SettingsDep) -> Response[None]:
    await tokens.revoke(principal.token_id)
    await live.signed_out(principal.account_id, principal.token_id)
    return Response(None, status_code=HTTP_204_NO_CONTENT, cookies=[expired_session_cookie(settings)])


@get("/me", summary="The signed-in account and its memberships")
async def get_me(principal: PrincipalDep) -> Me:
    return await accounts.me(principal.account_id)


ROUTES: list[Any] = [create_account, login, logout, get_me]


@post(
    "/me/password",
    summary="Change your password; every other sign-in ends",
    description="A wrong current password answers 403; wrong ones count like failed sign-ins (429 past the limit).",
    status_code=HTTP_204_NO_CONTENT,
    opt={"rate": "reauth"},
)
async def change_password(
    data: JSONBody[PasswordChange], principal: PrincipalDep, live: LiveDep, request: Request[Any, Any, Any]
) -> None:
    async with limits.failures_only(request, wrong=403):
        await accounts.change_password(
            principal.account_id, principal.token_id, data.current_password, data.new_password, live
        )


@get("/me/export", summary="Everything Kindred holds about you, as a JSON download")
async def export(principal: PrincipalDep) -> Response[Export]:
    document = await data_export.export(principal.account_id)
    return Response(document, headers={"Content-Disposition": 'attachment; filename="kindred-export.json"'})


@delete(
    "/me",
    summary="Delete your account (posts removed, or kept as 'Former member')",
    description=(
        "403 for a wrong password (counted like a failed sign-in); 409 while you are the only coach of an open "
        "circle: close it first."
    ),
    status_code=HTTP_204_NO_CONTENT,
    opt={"rate": "reauth"},
)
async def delete_me(
    data: JSONBody[AccountDeletion],
    principal: PrincipalDep,
    live: LiveDep,
    settings: SettingsDep,
    request: Request[Any, Any, Any],
) -> Response[None]:
    async with limits.failures_only(request, wrong=403):
        await accounts.delete_account(principal.account_id, data.password, data.posts, live)
    return Response(None, status_code=HTTP_204_NO_CONTENT, cookies=[expired_session_cookie(settings)])


ROUTES.extend([change_password, export, delete_me])
