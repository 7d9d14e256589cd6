"""Changing the sign-in address: asked for with the current password, confirmed by a link mailed to the new address
(single use, valid a day, stored hashed); the old address is told at both steps. docs/email.md, "Email address change".

The answer to a request is the same 202 whether or not another account has the new address, and the old address gets
the same notice either way: the requester, who may be anyone holding this account's password, learns nothing about
who else has an account. The new address's owner learns, in their own inbox, that the address is already in use.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta
from typing import Any

from litestar.exceptions import ClientException, PermissionDeniedException

from app import mail
from app.auth import passwords
from app.errors import Conflict
from app.live import Live
from app.schemas.accounts import AccountOut
from app.services.accounts import _EMAIL, EMAIL_MAX, WRONG_PASSWORD, normalise_email
from app.services.common import is_unique_violation
from app.services.outbox import unit_of_work
from app.settings import Settings
from db.queries import now
from db.tables import Account, EmailChange, PasswordReset

# How long the link in the mail to the new address works.
CHANGE_TTL = timedelta(hours=24)
BAD_TOKEN = "this confirmation link is used, expired or unknown: ask for the change again on your account page"
TAKEN_SINCE = "another account has taken this address since you asked; nothing changed"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _usable(token: str) -> Any:
    """The link of this token, unused, unexpired, of an account that still exists."""
    return (
        (EmailChange.token_hash == _digest(token))
        & EmailChange.used_at.is_null()
        & (EmailChange.expires_at > now())
        & EmailChange.account.deleted_at.is_null()
    )


def normalise(email: str) -> str:
    return normalise_email(email)


def masked(address: str) -> str:
    """An address as the old inbox is told of it: enough to recognise, not enough to harvest (r…@example.org)."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}…@{domain}"


async def check_request(account_id: uuid.UUID, email: str, password: str) -> str:
    """The normalised new address, once it is well formed, not the current one, and the password is right: 400 for
    the address (judged first, so a typo never costs a password guess), 403 for a wrong password."""
    new = normalise_email(email)
    if len(new) > EMAIL_MAX or not _EMAIL.match(new):
        raise ClientException("email: write a valid email address, like name@example.com")
    account = (
        await Account.select(Account.email, Account.password_hash)
        .where((Account.id == account_id) & Account.deleted_at.is_null())
        .first()
    )
    if account is None or not await passwords.verify_password(account["password_hash"], password):
        raise PermissionDeniedException(WRONG_PASSWORD)
    if account["email"] == new:
        raise ClientException("email: that is already your address; write the new one")
    return new


async def request_change(account_id: uuid.UUID, new: str, mail_new: bool, settings: Settings, live: Live) -> None:
    """Write the change and its mails (runs after the 202 has gone out). A new request replaces an unused one. When
    another account has the address, no link is made: its inbox is told it is already in use. `mail_new` is False
    past the per-address limit: nothing goes to the new address then."""
    account = (
        await Account.select(Account.email, Account.name)
        .where((Account.id == account_id) & Account.deleted_at.is_null())
        .first()
    )
    if account is None:
        return
    taken = await Account.exists().where((Account.email == new) & (Account.id != account_id))
    token = secrets.token_urlsafe(32)
    link = f"{settings.link_base}/email/confirm/{token}"
    notice = mail.render("email_notice", "Your Kindred sign-in address is about to change", new=masked(new))
    async with unit_of_work(live) as outbox:
        if not mail.is_sqlite():
            await Account.raw("SELECT id FROM account WHERE id = {} FOR UPDATE", account_id)
        await EmailChange.delete().where((EmailChange.account == account_id) & EmailChange.used_at.is_null())
        if not taken:
            await EmailChange.insert(
                EmailChange(
                    id=uuid.uuid4(),
                    account=account_id,
                    new_email=new,
                    token_hash=_digest(token),
                    created_at=now(),
                    expires_at=now() + CHANGE_TTL,
                )
            )
        if mail_new and not taken:
            confirm = mail.render("email_confirm", "Confirm your new Kindred sign-in address", link=link, hours=24)
            await mail.enqueue(outbox, account_id, new, "email_confirm", confirm)
        elif mail_new:
            await mail.enqueue(
                outbox,
                None,
                new,
                "email_taken",
                mail.render("email_taken", "This address already has a Kindred account"),
            )
        await mail.enqueue(outbox, account_id, account["email"], "email_notice", notice)


async def open_change(token: str) -> str | None:
    """The new address an unused, unexpired link would set (the confirm page shows it before its button)."""
    if not token or len(token) > 128:
        return None
    row = await EmailChange.select(EmailChange.new_email).where(_usable(token)).first()
    return None if row is None else str(row["new_email"])


async def pending_for(account_id: uuid.UUID) -> str | None:
    """The address an unused, unexpired change of this account would set (the account page says it is waiting)."""
    row = (
        await EmailChange.select(EmailChange.new_email)
        .where((EmailChange.account == account_id) & EmailChange.used_at.is_null() & (EmailChange.expires_at > now()))
        .first()
    )
    return None if row is None else str(row["new_email"])


async def confirm_change(token: str, live: Live) -> AccountOut:
    """Set the new address by the link: 400 for a used, expired or unknown link, 409 when another account took the
    address meanwhile (the link then stays as it was). The old address is told; open reset links end."""
    if not token or len(token) > 128:
        raise ClientException(BAD_TOKEN)
    found = (
        await EmailChange.select(
            EmailChange.id,
            EmailChange.account,
            EmailChange.new_email,
            EmailChange.account.email.as_alias("old_email"),
            EmailChange.account.name.as_alias("name"),
        )
        .where(_usable(token))
        .first()
    )
    if found is None:
        raise ClientException(BAD_TOKEN)
    account_id: uuid.UUID = found["account"]
    new: str = found["new_email"]
    changed = mail.render("email_changed", "Your Kindred sign-in address has changed", new=masked(new))
    try:
        async with unit_of_work(live) as outbox:
            # Single use even when two confirmations race: only the one that marks the link used goes on.
            used = await EmailChange.raw(
                "UPDATE email_change SET used_at = {} WHERE id = {} AND used_at IS NULL RETURNING id",
                now(),
                found["id"],
            )
            if not used:
                raise ClientException(BAD_TOKEN)
            if await Account.exists().where((Account.email == new) & (Account.id != account_id)):
                raise Conflict(TAKEN_SINCE)
            await Account.update({Account.email: new}).where(Account.id == account_id)
            # A reset link mailed to the old address no longer opens the account; nor does another pending change.
            await PasswordReset.delete().where((PasswordReset.account == account_id) & PasswordReset.used_at.is_null())
            await EmailChange.delete().where((EmailChange.account == account_id) & EmailChange.used_at.is_null())
            await mail.enqueue(outbox, account_id, found["old_email"], "email_changed", changed)
    except Exception as exc:
        if is_unique_violation(exc):
            raise Conflict(TAKEN_SINCE) from None
        raise
    return AccountOut(id=str(account_id), email=new, name=found["name"])
