"""Account recovery by email: a reset link (single use, one hour, stored hashed) and setting a new password by it.

`request_reset` runs after the 202 has gone out (a background task of the response), so the answer takes the same
time whether or not an account has the address; `confirm_reset` ends every sign-in and socket of the account.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from litestar.exceptions import ClientException

from app import mail
from app.auth import passwords, tokens
from app.live import Live
from app.services.accounts import normalise_email
from app.services.outbox import unit_of_work
from app.settings import Settings
from db.queries import now
from db.tables import Account, PasswordReset

# Contract: a reset link is valid for one hour.
RESET_TTL = timedelta(hours=1)
BAD_TOKEN = "this reset link is used, expired or unknown: ask for a new one at /reset"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def request_reset(email: str, settings: Settings, live: Live) -> None:
    """Mail a reset link to the account with this address, if there is one; nothing goes anywhere else. A new link
    replaces any earlier one still unused."""
    address = normalise_email(email)
    row = (
        await Account.select(Account.id, Account.email)
        .where((Account.email == address) & Account.deleted_at.is_null())
        .first()
    )
    if row is None:
        return
    token = secrets.token_urlsafe(32)
    link = f"{settings.link_base}/reset/{token}"
    rendered = mail.render("reset", "Reset your Kindred password", link=link, hours=1)
    async with unit_of_work(live) as outbox:
        # Two requests at once must not leave two open links: the account row's lock orders them (SQLite's
        # BEGIN IMMEDIATE already does).
        if not mail.is_sqlite():
            await Account.raw("SELECT id FROM account WHERE id = {} FOR UPDATE", row["id"])
        await PasswordReset.delete().where((PasswordReset.account == row["id"]) & PasswordReset.used_at.is_null())
        await PasswordReset.insert(
            PasswordReset(
                id=uuid.uuid4(),
                account=row["id"],
                token_hash=_digest(token),
                created_at=now(),
                expires_at=now() + RESET_TTL,
            )
        )
        await mail.enqueue(outbox, row["id"], row["email"], "reset", rendered)


async def token_is_open(token: str) -> bool:
    """Whether the link can still set a password (the reset page asks before showing its form)."""
    if not token or len(token) > 128:
        return False
    return await PasswordReset.exists().where(
        (PasswordReset.token_hash == _digest(token))
        & PasswordReset.used_at.is_null()
        & (PasswordReset.expires_at > now())
    )


async def confirm_reset(token: str, password: str, live: Live) -> uuid.UUID:
    """Set the new password by a reset link: 400 for a used, expired or unknown link, or for a password the rules
    refuse (the link then stays usable). Every session, token and socket of the account ends."""
    if not token or len(token) > 128:
        raise ClientException(BAD_TOKEN)
    found = (
        await PasswordReset.select(
            PasswordReset.id,
            PasswordReset.account,
            PasswordReset.account.email.as_alias("email"),
            PasswordReset.account.name.as_alias("name"),
        )
        .where(
            (PasswordReset.token_hash == _digest(token))
            & PasswordReset.used_at.is_null()
            & (PasswordReset.expires_at > now())
            & PasswordReset.account.deleted_at.is_null()
        )
        .first()
    )
    if found is None:
        raise ClientException(BAD_TOKEN)
    problem = passwords.password_problem(password, email=found["email"], name=found["name"])
    if problem:
        raise ClientException(problem)
    hashed = await passwords.hash_password(password)
    account_id: uuid.UUID = found["account"]
    async with unit_of_work(live):
        # Single use even when two confirmations race: only the one that marks the link used goes on.
        used = await PasswordReset.raw(
            "UPDATE password_reset SET used_at = {} WHERE id = {} AND used_at IS NULL RETURNING id", now(), found["id"]
        )
        if not used:
            raise ClientException(BAD_TOKEN)
        await Account.update({Account.password_hash: hashed, Account.password_changed_at: now()}).where(
            Account.id == account_id
        )
        await PasswordReset.delete().where((PasswordReset.account == account_id) & PasswordReset.used_at.is_null())
        await tokens.revoke_all(account_id)
    await live.signed_out(account_id, None)
    return account_id
