"""Accounts and sign-in."""

from __future__ import annotations

import re
import uuid
from typing import Literal

from litestar.exceptions import ClientException, NotAuthorizedException, PermissionDeniedException

from app.auth import passwords, tokens
from app.errors import Conflict, not_found
from app.live import Live
from app.schemas import AccountOut, Me, MyMembership
from app.services import dropins
from app.services.circles import _rewrite_author_alias, alias_columns
from app.services.common import is_unique_violation
from app.services.outbox import unit_of_work
from app.services.posts import remove_post
from db import queries
from db.queries import now
from db.tables import (
    Account,
    AuthToken,
    EmailChange,
    Membership,
    Notification,
    NotificationPreference,
    PushSubscription,
    Report,
    Room,
)
from db.tables import Post as PostRow
from realtime.events import Membership as PublicMembership

# Deliberately loose: one @, something on each side, a dot in the domain. Deliverability is the mail server's call.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

FORMER_MEMBER = "Former member"


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


# --- a person changes their password, or erases their account -------------------------------------------------


async def change_password(account_id: uuid.UUID, current_token: uuid.UUID, current: str, new: str, live: Live) -> None:
    account = (
        await Account.select(Account.email, Account.name, Account.password_hash).where(Account.id == account_id).first()
    )
    assert account is not None
    # Judged before the current password is checked, so a weak new one never costs a guess of the current one.
    problem = passwords.password_problem(new, email=account["email"], name=account["name"])
    if problem:
        raise ClientException(problem)
    if not await passwords.verify_password(account["password_hash"], current):
        raise PermissionDeniedException(WRONG_PASSWORD)
    hashed = await passwords.hash_password(new)
    await Account.update({Account.password_hash: hashed, Account.password_changed_at: now()}).where(
        Account.id == account_id
    )
    # Every other sign-in ends, and every socket closes (this sign-in's sockets reconnect with its token).
    await tokens.revoke_all(account_id, except_token=current_token)
    await live.signed_out(account_id, None)


# 403, not 401: the caller is signed in (401 means "not signed in" in the contract); this proves it is them.
WRONG_PASSWORD = "that is not your current password; type it again (after a few wrong tries you must wait a while)"


async def _refuse_orphaning(account_id: uuid.UUID) -> None:
    """A coach who deletes their account would leave open circles with nobody to run, reopen or close them. They are
    asked to close those first: members are told, can read on for the grace period, and the coach decides when."""
    coached = await Membership.select(Membership.circle, Membership.circle.name.as_alias("circle_name")).where(
        (Membership.account == account_id)
        & (Membership.role == "coach")
        & Membership.removed_at.is_null()
        & Membership.circle.closed_at.is_null()
    )
    alone = []
    for m in coached:
        others = await Membership.exists().where(
            (Membership.circle == m["circle"])
            & (Membership.role == "coach")
            & Membership.removed_at.is_null()
            & (Membership.account != account_id)
        )
        if not others:
            alone.append(m["circle_name"])
    if alone:
        names = ", ".join(f"“{name}”" for name in sorted(alone))
        raise Conflict(
            f"you are the only coach of {names}: close {'that circle' if len(alone) == 1 else 'those circles'} first "
            "(its members are told and can still read it for 30 days), then delete your account"
        )


async def delete_account(
    account_id: uuid.UUID, password: str, posts: Literal["anonymize", "remove"], live: Live
) -> None:
    """Erase the account: its email, name, password, sign-ins and notifications. Posts are removed, or stay as
    "Former member" (the account's choice); either way no alias of theirs remains anywhere."""
    await _refuse_orphaning(account_id)
    account = (
        await Account.select(Account.password_hash)
        .where((Account.id == account_id) & Account.deleted_at.is_null())
        .first()
    )
    if account is None or not await passwords.verify_password(account["password_hash"], password):
        raise PermissionDeniedException(WRONG_PASSWORD)
    memberships = await Membership.select().where(Membership.account == account_id)
    async with unit_of_work(live) as outbox:
        for m in memberships:
            if posts == "remove":
                for row in await queries.posts_where((PostRow.author == m["id"]) & PostRow.deleted_at.is_null()):
                    await remove_post(outbox, row, reason=None)
            # The alias is freed and replaced everywhere; the membership stays only as the author of kept posts.
            former = f"{FORMER_MEMBER} {str(m['id'])[:4]}"
            await Membership.update(
                {
                    **alias_columns(former),
                    Membership.removed_at: m["removed_at"] or now(),
                    Membership.ended_by: m["ended_by"] or "deleted",
                    Membership.mute_reason: None,
                }
            ).where(Membership.id == m["id"])
            await _rewrite_author_alias(m["id"], former)
        # The account row is kept (erased) rather than deleted, so nothing cascades: what is personal goes here.
        mids = [m["id"] for m in memberships]
        lowered: list[uuid.UUID] = []
        if mids:
            await Report.delete().where(Report.reporter.is_in(mids))
            lowered = await dropins.lower_hands_of(mids)
        await Notification.delete().where(Notification.account == account_id)
        await NotificationPreference.delete().where(NotificationPreference.account == account_id)
        await PushSubscription.delete().where(PushSubscription.account == account_id)
        # A pending address change holds an address of theirs too.
        await EmailChange.delete().where(EmailChange.account == account_id)
        await AuthToken.delete().where(AuthToken.account == account_id)
        await Account.update(
            {
                Account.email: f"deleted-{account_id}@deleted.invalid",
                Account.name: "",
                Account.password_hash: "",
                Account.deleted_at: now(),
                Account.timezone: "UTC",
                Account.quiet_start: None,
                Account.quiet_end: None,
            }
        ).where(Account.id == account_id)
    await dropins.refresh_hands(lowered, live)
    for m in memberships:
        rooms = [r["id"] for r in await Room.select(Room.id).where(Room.circle == m["circle"])]
        gone = PublicMembership(membership_id=str(m["id"]), alias=f"{FORMER_MEMBER} {str(m['id'])[:4]}", role=m["role"])
        await live.alias_changed(account_id, m["circle"], gone, rooms)
        await live.revoke(account_id, m["circle"])
    await live.signed_out(account_id, None)
