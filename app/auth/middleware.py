"""Who is asking, and whether an unsafe request may proceed.

* `Authorization: Bearer` wins: the request is authenticated by that token alone (cookies are ignored), and it needs
  no CSRF token, because a cross-site page cannot set that header.
* Otherwise the session cookie authenticates, and every unsafe request that carries it, and every unsafe page
  (form) request, goes through the CSRF middleware (app/auth/csrf.py: a double-submit token in `x-csrftoken` or
  `_csrf_token`, signed together with a digest of the session cookie, so it is good for that session only).
* An unsafe API request with neither (sign-up, sign-in from an API client) has no ambient authority to abuse; it
  is still refused when a browser says it comes from a foreign Origin (login CSRF).

Websockets are authenticated here too; their Origin is checked by the websocket handler before accepting.
"""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from typing import Any

from litestar.config.csrf import CSRFConfig
from litestar.enums import ScopeType
from litestar.exceptions import ClientException, PermissionDeniedException
from litestar.types import ASGIApp, Receive, Scope, Send

from app.auth import tokens
from app.auth.cache import AuthCaches
from app.auth.csrf import SessionCSRFMiddleware
from app.auth.origins import origin_allowed
from app.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _cookie(scope: Scope, name: str) -> str | None:
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


def bearer_token(scope: Scope) -> str | None:
    value = _header(scope, b"authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


# RFC 9110 §7.2 / RFC 3986 §3.2.2: Host = uri-host [ ":" port ], no userinfo. A reg-name is unreserved letters,
# digits, "-", "." (percent-encoding and sub-delims are not hostnames anyone serves); an IPv6 literal is bracketed.
_REG_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.?")
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]+\]")
_PORT = re.compile(r"[0-9]{1,5}")


def parse_host(host: str) -> str | None:
    """The host name of a Host header value, lower-cased, or None when it is not `uri-host [":" port]` exactly
    (userinfo, paths, spaces, a second colon, an empty or oversized port are all refused)."""
    if not host or len(host) > 255:
        return None
    if host.startswith("["):
        end = host.find("]")
        name, rest = host[: end + 1], host[end + 1 :]
        if end < 0 or not _IPV6.fullmatch(name):
            return None
    else:
        name, colon, port = host.partition(":")
        rest = colon + port
        if not _REG_NAME.fullmatch(name):
            return None
    if rest and not (rest.startswith(":") and _PORT.fullmatch(rest[1:]) and int(rest[1:]) <= 65535):
        return None
    return name.lower()


def host_allowed(scope: Scope, allowed: frozenset[str]) -> bool:
    """The Host header names one we serve. Litestar's AllowedHostsConfig matches the whole `host:port` string
    against escaped names, so `localhost` would never match `localhost:8000`; hence this check, which parses the
    header strictly first: `127.0.0.1:8140@evil.example` is not a host, and is refused before anything uses it."""
    name = parse_host(_header(scope, b"host") or "")
    if name is None:
        return False
    return name in allowed or "*" in allowed


NUL_MESSAGE = "text may not contain NUL characters (\\u0000)"


def _json_has_nul(body: bytes) -> bool:
    """A `\\u0000` escape in a JSON body, not preceded by an escaped backslash (which would make it literal text)."""
    start = 0
    while (i := body.find(b"\\u0000", start)) >= 0:
        backslashes = 0
        while i - backslashes - 1 >= 0 and body[i - backslashes - 1] == 0x5C:
            backslashes += 1
        if backslashes % 2 == 0:
            return True
        start = i + 1
    return False


def _nul_guard(scope: Scope, receive: Receive) -> Receive:
    """Postgres cannot store NUL in text, and no person means to send one: refuse it with a 400 as the body is read,
    instead of failing deep in a query."""
    content_type = (_header(scope, b"content-type") or "").lower()
    form = "urlencoded" in content_type
    received = bytearray()

    async def guarded() -> Any:
        message = await receive()
        if message["type"] == "http.request":
            received.extend(message.get("body", b""))
            if not message.get("more_body", False):
                body = bytes(received)
                if b"\x00" in body or (b"%00" in body if form else _json_has_nul(body)):
                    raise ClientException(NUL_MESSAGE)
        return message

    return guarded


class AuthMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings, csrf: CSRFConfig, caches: AuthCaches | None = None) -> None:
        self.app = app
        self.settings = settings
        self.caches = caches
        self.csrf = SessionCSRFMiddleware(app, csrf)
        self.hosts = frozenset(h.lower() for h in settings.allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if not host_allowed(scope, self.hosts):
            raise ClientException("this server does not answer to that Host name (see KINDRED_ALLOWED_HOSTS)")
        if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
            raise ClientException(NUL_MESSAGE)
        if scope["type"] == ScopeType.HTTP:
            receive = _nul_guard(scope, receive)
        bearer = bearer_token(scope)
        cookie = None if bearer is not None else _cookie(scope, tokens.SESSION_COOKIE)
        principal: Any = None
        if bearer is not None:
            principal = await tokens.resolve(bearer, "bearer", self.caches)
        elif cookie:
            principal = await tokens.resolve(cookie, "cookie", self.caches)
        scope["user"] = principal
        scope["auth"] = principal
        if scope["type"] == ScopeType.WEBSOCKET or bearer is not None:
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        path: str = scope.get("path", "")
        if method not in SAFE_METHODS and not cookie and path.startswith("/api/"):
            if not origin_allowed(scope, self.settings):
                raise PermissionDeniedException("cross-origin request refused")
            await self.app(scope, receive, send)
            return
        await self.csrf(scope, receive, send)
