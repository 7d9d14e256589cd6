"""Sign-in tokens: one random secret per sign-in, sent as the session cookie and returned as the bearer token.

Only its SHA-256 is stored, so a database leak does not hand out sessions. A fresh token is made at every sign-in
and any token the client brought is ignored, which is what closes session fixation.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta
from typing import Literal

import msgspec

from app.auth.cache import AuthCaches, SignIn, tokens_revoked_here
from db.queries import now
from db.tables import Account, AuthToken, PushSubscription

# Sign-ins last a month, then the member signs in again.
TOKEN_TTL = timedelta(days=30)
SESSION_COOKIE = "kindred_session"


class Principal(msgspec.Struct, frozen=True):
    """Who is making a request: the account, the sign-in it used, and how it was presented."""

    account_id: uuid.UUID
    token_id: uuid.UUID
    via: Literal["bearer", "cookie"]


# An erased account never authenticates, whatever token survived: the join says so on every request.
_RESOLVE = (
    "SELECT t.id, t.account, t.expires_at FROM auth_token t JOIN account a ON a.id = t.account "
    "WHERE t.token_hash = {} AND a.deleted_at IS NULL"
)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue(account_id: uuid.UUID) -> tuple[str, uuid.UUID]:
    token = secrets.token_urlsafe(32)
    token_id = uuid.uuid4()
    await AuthToken.insert(
        AuthToken(
            id=token_id, account=account_id, token_hash=_digest(token), created_at=now(), expires_at=now() + TOKEN_TTL
        )
    )
    return token, token_id


async def _sign_in(digest: str) -> SignIn | None:
    # Raw SQL: this runs on every request, and building the query through Piccolo's select cost more than the query
    # (bench S1's profile).
    rows = await AuthToken.raw(_RESOLVE, digest)
    if not rows:
        return None
    row = rows[0]
    return SignIn(account_id=row["account"], token_id=row["id"], expires_at=row["expires_at"])


async def resolve(token: str, via: Literal["bearer", "cookie"], caches: AuthCaches | None = None) -> Principal | None:
    if not token or len(token) > 128:
        return None
    digest = _digest(token)
    found = await (caches.sign_in(digest, lambda: _sign_in(digest)) if caches is not None else _sign_in(digest))
    # Expiry is checked on every use, cached or not.
    if found is None or found.expires_at <= now():
        return None
    return Principal(account_id=found.account_id, token_id=found.token_id, via=via)


async def revoke(token_id: uuid.UUID) -> None:
    """End one sign-in, and with it the push subscriptions of the browsers it turned notifications on in."""
    # The foreign key cascades too; saying it here keeps "sign-out stops pushes" visible where sign-out happens.
    await PushSubscription.delete().where(PushSubscription.token == token_id)
    await AuthToken.delete().where(AuthToken.id == token_id)
    # Forgotten here at once; the caller's `live.signed_out` / `live.tokens_ended` tells the other instances.
    tokens_revoked_here(None, token_id)


async def revoke_all(account_id: uuid.UUID, *, except_token: uuid.UUID | None = None) -> None:
    """End every sign-in of the account (but `except_token`), and their push subscriptions."""
    pushes = PushSubscription.delete().where(PushSubscription.account == account_id)
    query = AuthToken.delete().where(AuthToken.account == account_id)
    if except_token is not None:
        pushes = pushes.where(PushSubscription.token.is_null() | (PushSubscription.token != except_token))
        query = query.where(AuthToken.id != except_token)
    await pushes
    await query
    tokens_revoked_here(account_id, None)


async def account_exists(account_id: uuid.UUID) -> bool:
    return await Account.exists().where((Account.id == account_id) & Account.deleted_at.is_null())
