"""Origin checks: same-origin is always allowed, plus the configured `KINDRED_ALLOWED_ORIGINS`."""

from __future__ import annotations

from litestar.types import Scope

from app.settings import Settings


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def request_origin(scope: Scope) -> str:
    """scheme://host[:port] of the request itself, as the browser addressed it."""
    scheme = scope.get("scheme", "http")
    if scheme in ("ws", "wss"):
        scheme = "https" if scheme == "wss" else "http"
    host = _header(scope, b"host") or ""
    return f"{scheme}://{host}".rstrip("/")


def origin_allowed(scope: Scope, settings: Settings) -> bool:
    """True when the request sends no Origin (not a browser page) or an allowed one."""
    origin = _header(scope, b"origin")
    if origin is None:
        return True
    origin = origin.rstrip("/")
    if origin == "null":
        return False
    if origin in settings.allowed_origins:
        return True
    if settings.public_url and origin == settings.public_url:
        return True
    # Same-origin, allowing for TLS terminated by a proxy in front of us (https page, http scope).
    own = request_origin(scope)
    return origin == own or origin == own.replace("http://", "https://", 1)
