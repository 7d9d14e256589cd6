"""Accounts, sign-in, and a person's rights over their account: alias, password, deletion."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from app.schemas.common import Alias, Email, Name, Password
from realtime.events import Role


class AccountCreate(msgspec.Struct):
    email: Email
    password: Password
    name: Name


class AccountOut(msgspec.Struct):
    id: str
    email: str
    name: str


class Login(msgspec.Struct):
    email: Email
    password: Password


class TokenOut(msgspec.Struct):
    token: str


class MyMembership(msgspec.Struct):
    membership_id: str
    circle_id: str
    alias: str
    role: Role
    # Care (safe aliases, docs/care.md): at join and alias change, what about the alias might identify its owner.
    # Advice only: the alias was taken as it is.
    warnings: list[str] = []


class Me(msgspec.Struct):
    id: str
    email: str
    name: str
    memberships: list[MyMembership]


class AliasBody(msgspec.Struct):
    alias: Alias


class PasswordChange(msgspec.Struct):
    current_password: Password
    new_password: Password


class AccountDeletion(msgspec.Struct):
    password: Password
    posts: Literal["anonymize", "remove"] = msgspec.field(default="anonymize")


class ResetRequest(msgspec.Struct):
    email: Email


class ResetConfirm(msgspec.Struct):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=128, description="The token from the reset link.")]
    password: Password


class EmailChangeRequest(msgspec.Struct):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=320, description="The new sign-in address.")]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024, description="Your current password.")]


class EmailChangeConfirm(msgspec.Struct):
    token: Annotated[
        str,
        msgspec.Meta(min_length=1, max_length=128, description="The token from the link mailed to the new address."),
    ]
