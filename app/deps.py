"""Dependencies shared by route handlers."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException

from app.auth.tokens import Principal
from app.live import Live
from app.settings import Settings


def require_principal(request: Request[Any, Any, Any]) -> Principal:
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        raise NotAuthorizedException("sign in first (session cookie or Authorization: Bearer <token>)")
    return user


def provide_live(state: State) -> Live:
    return state["live"]  # type: ignore[no-any-return]


def provide_settings(state: State) -> Settings:
    return state["settings"]  # type: ignore[no-any-return]


def base_url(request: Request[Any, Any, Any], settings: Settings) -> str:
    """Where links we hand out should point: the configured public URL, else the URL the request came in on."""
    if settings.public_url:
        return settings.public_url
    return str(request.base_url).rstrip("/")


DEPENDENCIES = {
    "principal": Provide(require_principal, sync_to_thread=False),
    "live": Provide(provide_live, sync_to_thread=False),
    "settings": Provide(provide_settings, sync_to_thread=False),
}


# Named dependencies, spelled out as Litestar 3 will require.
PrincipalDep = NamedDependency[Principal]
LiveDep = NamedDependency[Live]
SettingsDep = NamedDependency[Settings]
