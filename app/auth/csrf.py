"""Double-submit CSRF tokens bound to the session they were issued to.

Litestar's `CSRFMiddleware` signs a random value with the server secret, so any valid token pair works in any
session: someone who can plant a cookie on the victim's host (a sibling subdomain, a network attacker on plain
http) can plant their own valid pair and forge requests in the victim's session. Here the signature also covers a
digest of the session cookie the token was issued with, so a token is good for that session only:

* a token issued before sign-in (the sign-in and sign-up forms) is bound to "no session";
* after sign-in, sign-out or a rotated session the next page load notices that the CSRF cookie does not verify for
  the current session and issues a new one (the pages then carry the new token);
* an unsafe request whose token verifies, but for another session, is refused like a missing one.

The wire format is Litestar's (64 hex characters of random value, then the HMAC-SHA256 in hex), so the cookie name,
the `x-csrftoken` header and the `_csrf_token` form field are unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from secrets import compare_digest
from typing import Any

from litestar.enums import RequestEncodingType, ScopeType
from litestar.exceptions import PermissionDeniedException
from litestar.middleware._utils import should_bypass_middleware
from litestar.middleware.csrf import CSRF_SECRET_BYTES, CSRF_SECRET_LENGTH, CSRFMiddleware
from litestar.types import Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

from app.auth.tokens import SESSION_COOKIE

REFUSED = "CSRF token verification failed: reload the page and try again"


def session_binding(session_cookie: str | None) -> str:
    """What a token is bound to: a digest of the session cookie (never the cookie itself), or '' with none."""
    if not session_cookie:
        return ""
    return hashlib.sha256(session_cookie.encode()).hexdigest()


def sign(secret: str, value: str, binding: str) -> str:
    return hmac.new(secret.encode(), f"{value}|{binding}".encode(), hashlib.sha256).hexdigest()


def issue(secret: str, binding: str) -> str:
    value = secrets.token_hex(CSRF_SECRET_BYTES)
    return value + sign(secret, value, binding)


def verify(secret: str, token: str | None, binding: str) -> str | None:
    """The token's random value when its signature holds for this session, else None."""
    if not token or len(token) <= CSRF_SECRET_LENGTH:
        return None
    value, signature = token[:CSRF_SECRET_LENGTH], token[CSRF_SECRET_LENGTH:]
    return value if compare_digest(signature, sign(secret, value, binding)) else None


class SessionCSRFMiddleware(CSRFMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or should_bypass_middleware(
            scope=scope,
            scopes=self.scopes,
            exclude_opt_key=self.config.exclude_from_csrf_key,
            exclude_path_pattern=self.exclude,
        ):
            await self.app(scope, receive, send)
            return
        request: Any = scope["litestar_app"].request_class(scope=scope, receive=receive)
        secret = self.config.secret
        binding = session_binding(request.cookies.get(SESSION_COOKIE))
        cookie = request.cookies.get(self.config.cookie_name)
        state = ScopeState.from_scope(scope)
        if request.method in self.config.safe_methods:
            # A cookie issued to another session (or forged) is replaced, so the page carries a token that works.
            keep = cookie if verify(secret, cookie, binding) is not None else None
            token = state.csrf_token = keep or issue(secret, binding)
            await self.app(scope, receive, self.create_send_wrapper(send=send, csrf_cookie=keep, token=token))
            return
        submitted = request.headers.get(self.config.header_name)
        content_type, _ = request.content_type
        if not submitted and content_type in {RequestEncodingType.URL_ENCODED, RequestEncodingType.MULTI_PART}:
            submitted = (await request.form()).get("_csrf_token", None)
        from_cookie = verify(secret, cookie, binding)
        from_request = verify(secret, submitted, binding)
        if from_cookie is None or from_request is None or not compare_digest(from_cookie, from_request):
            raise PermissionDeniedException(REFUSED)
        state.csrf_token = submitted
        await self.app(scope, receive, send)
