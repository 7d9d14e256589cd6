"""Accounts and sign-in."""

from __future__ import annotations

import re
import uuid

from litestar.exceptions import ClientException, NotAuthorizedException

from app.auth import passwords, tokens
from app.errors import Conflict, not_found
from app.schemas import AccountOut, Me, MyMembership
from app.services.common import is_unique_violation
from db.queries import now
from db.tables import Account, Membership

# Deliberately loose: one @, something on each side, a dot in the domain. Deliverability is the mail server's call.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_email(email: str) -> str:
    return email.strip().lower()


# The account table's column sizes: the pages reach the service without the API's msgspec limits.
EMAIL_MAX, NAME_MAX = 320, 80


def clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise ClientException("write your name (it stays private: peers only ever see your alias)")
    if len(cleaned) > NAME_MAX:
        raise ClientException(f"keep your name to {NAME_MAX} characters")
    return cleaned


async def register(email: str, password: str, name: str) -> AccountOut:
    email = normalise_email(email)
    if len(email) > EMAIL_MAX or not _EMAIL.match(email):
        raise ClientException("write a valid email address, like name@example.com")
    name = clean_name(name)
    problem = passwords.password_problem(password, email=email, name=name)
    if problem:
        raise ClientException(problem)
    if await Account.exists().where(Account.email == email):
        raise Conflict("an account with this email already exists; sign in instead")
    password_hash = await passwords.hash_password(password)
    account_id = uuid.uuid4()
    try:
        await Account.insert(
            Account(
                id=account_id,
                email=email,
                name=name,
                password_hash=password_hash,
                created_at=now(),
                password_changed_at=now(),
            )
        )
    except Exception as exc:
        if is_unique_violation(exc):
            raise Conflict("an account with this email already exists; sign in instead") from None
        raise
    return AccountOut(id=str(account_id), email=email, name=name)


async def authenticate(email: str, password: str) -> uuid.UUID:
    """The account id for these credentials. Unknown email and wrong password take the same time and answer."""
    row = (
        await Account.select(Account.id, Account.password_hash)
        .where((Account.email == normalise_email(email)) & Account.deleted_at.is_null())
        .first()
    )
    ok = await passwords.verify_password(row["password_hash"] if row else None, password)
    if not ok or row is None:
        raise NotAuthorizedException("email or password is wrong")
    account_id: uuid.UUID = row["id"]
    return account_id


async def sign_in(email: str, password: str) -> tuple[str, uuid.UUID, uuid.UUID]:
    """(token, token id, account id) for a fresh sign-in."""
    account_id = await authenticate(email, password)
    token, token_id = await tokens.issue(account_id)
    return token, token_id, account_id


async def me(account_id: uuid.UUID) -> Me:
    account = (
        await Account.select(Account.id, Account.email, Account.name)
        .where((Account.id == account_id) & Account.deleted_at.is_null())
        .first()
    )
    if account is None:
        raise not_found("account")
    rows = (
        await Membership.select(Membership.id, Membership.circle, Membership.alias, Membership.role)
        .where((Membership.account == account_id) & Membership.removed_at.is_null())
        .order_by(Membership.joined_at)
    )
    return Me(
        id=str(account["id"]),
        email=account["email"],
        name=account["name"],
        memberships=[
            MyMembership(membership_id=str(r["id"]), circle_id=str(r["circle"]), alias=r["alias"], role=r["role"])
            for r in rows
        ],
    )


async def my_circles(account_id: uuid.UUID) -> list[dict[str, object]]:
    """Circles the account belongs to, with its alias and role there, for the home page."""
    rows = (
        await Membership.select(
            Membership.id,
            Membership.alias,
            Membership.role,
            Membership.circle.id.as_alias("circle_id"),
            Membership.circle.name.as_alias("circle_name"),
            Membership.circle.commonality.as_alias("commonality"),
        )
        .where((Membership.account == account_id) & Membership.removed_at.is_null())
        .order_by(Membership.joined_at)
    )
    return rows
