"""Request and response bodies of the JSON API (shared/contract.md). Peer-visible shapes come from
`realtime.events` so the API, the websocket and the log share one definition."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from realtime.events import Membership, Post, PostKind, Role

Email = Annotated[str, Meta(min_length=3, max_length=320, description="An email address.")]
Password = Annotated[str, Meta(min_length=1, max_length=1024)]
Name = Annotated[str, Meta(min_length=1, max_length=80)]
Alias = Annotated[str, Meta(min_length=1, max_length=40, description="2-40 letters, digits, spaces, . _ -")]
Id = Annotated[str, Meta(min_length=1, max_length=64)]


# --- accounts and auth -------------------------------------------------------------------------------------------


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


class Me(msgspec.Struct):
    id: str
    email: str
    name: str
    memberships: list[MyMembership]


# --- circles, invites, members, rooms --------------------------------------------------------------------------------


class CircleCreate(msgspec.Struct):
    name: Annotated[str, Meta(min_length=1, max_length=120)]
    commonality: Annotated[str, Meta(min_length=1, max_length=2000)]
    norms: Annotated[str, Meta(max_length=4000)] = ""
    coach_alias: Alias | None = None


class CircleUpdate(msgspec.Struct):
    """Extension: the coach edits the circle. Absent fields are left as they are."""

    name: Annotated[str, Meta(min_length=1, max_length=120)] | msgspec.UnsetType = msgspec.UNSET
    commonality: Annotated[str, Meta(min_length=1, max_length=2000)] | msgspec.UnsetType = msgspec.UNSET
    norms: Annotated[str, Meta(max_length=4000)] | msgspec.UnsetType = msgspec.UNSET
    coach_sees_identity: bool | msgspec.UnsetType = msgspec.UNSET


class CircleOut(msgspec.Struct):
    id: str
    name: str
    commonality: str
    norms: str
    coach_sees_identity: bool


class InviteCreate(msgspec.Struct):
    max_uses: Annotated[int, Meta(ge=1, le=10_000)] | None = None
    expires_in_hours: Annotated[int, Meta(ge=1, le=24 * 90)] | None = None


class InviteOut(msgspec.Struct):
    code: str
    url: str
    # Extensions: so the coach can tell the invitee how long the link works.
    expires_at: str
    max_uses: int | None


class Join(msgspec.Struct):
    alias: Alias


class MemberWithIdentity(msgspec.Struct):
    """Only ever sent to the circle's coach, and only while the circle's `coach_sees_identity` holds. `name` and
    `email` are null for members who joined while it was off: consent is taken at join time, per membership."""

    membership_id: str
    alias: str
    role: Role
    name: str | None
    email: str | None


class RoomCreate(msgspec.Struct):
    name: Annotated[str, Meta(min_length=1, max_length=80)]
    topic: Annotated[str, Meta(max_length=500)] = ""


class RoomOut(msgspec.Struct):
    id: str
    circle_id: str
    name: str
    topic: str
    last_seq: int
    # Extension: set when the room is a drop-in's own room.
    dropin_id: str | None = None


# --- posts ---------------------------------------------------------------------------------------------------------


class PostCreate(msgspec.Struct):
    body: str
    kind: PostKind = "reflection"
    parent_id: Id | None = None
    client_id: Annotated[str, Meta(min_length=1, max_length=64)] | None = None


class PostEdit(msgspec.Struct):
    body: str


class PostListItem(Post, kw_only=True):
    reply_count: int


class PostPage(msgspec.Struct):
    items: list[PostListItem]
    next_before: str | None


class PostThread(Post, kw_only=True):
    replies: list[PostThread]


__all__ = [
    "AccountCreate",
    "AccountOut",
    "CircleCreate",
    "CircleOut",
    "CircleUpdate",
    "InviteCreate",
    "InviteOut",
    "Join",
    "Login",
    "Me",
    "MemberWithIdentity",
    "Membership",
    "MyMembership",
    "Post",
    "PostCreate",
    "PostEdit",
    "PostListItem",
    "PostPage",
    "PostThread",
    "RoomCreate",
    "RoomOut",
    "TokenOut",
]


# --- gestures and notifications --------------------------------------------------------------------------------------


class PinBody(msgspec.Struct):
    note: Annotated[str, Meta(max_length=500)] | None = None


class ShareBody(msgspec.Struct):
    room_id: Id
    note: Annotated[str, Meta(max_length=500)] | None = None


class TagBody(msgspec.Struct):
    membership_id: Id


class ReadBody(msgspec.Struct):
    ids: Annotated[list[Id], Meta(max_length=500)] | None = None
    all_: bool = msgspec.field(default=False, name="all")


# --- safety --------------------------------------------------------------------------------------------------------

Reason = Annotated[str, Meta(max_length=500)]


class ReasonBody(msgspec.Struct):
    reason: Reason | None = None


class MuteBody(msgspec.Struct):
    minutes: Annotated[int, Meta(ge=1, le=60 * 24 * 30, description="How long to pause posting, up to 30 days")]
    reason: Reason | None = None


class ResolveBody(msgspec.Struct):
    action: Literal["dismiss", "hide", "remove"]
    reason: Reason | None = None


class AliasBody(msgspec.Struct):
    alias: Alias


class PasswordChange(msgspec.Struct):
    current_password: Password
    new_password: Password


class AccountDeletion(msgspec.Struct):
    password: Password
    posts: Literal["anonymize", "remove"] = msgspec.field(default="anonymize")


class CircleClosed(msgspec.Struct):
    id: str
    closed_at: str | None
    delete_after: str | None


# --- notifications and push --------------------------------------------------------------------------------------


class PushKeys(msgspec.Struct):
    p256dh: Annotated[str, Meta(min_length=1, max_length=128)]
    auth: Annotated[str, Meta(min_length=1, max_length=64)]


class PushSubscriptionIn(msgspec.Struct):
    """A browser's PushSubscription, as `subscription.toJSON()` gives it."""

    endpoint: Annotated[str, Meta(min_length=8, max_length=2048)]
    keys: PushKeys
    expirationTime: float | None = None


class PushSubscriptionOut(msgspec.Struct):
    id: str


class PushRenewal(msgspec.Struct):
    """Extension: a browser's new subscription, proven by its old one (see POST /push/subscriptions/renew)."""

    old_endpoint: Annotated[str, Meta(min_length=8, max_length=2048)]
    old_auth: Annotated[str, Meta(min_length=1, max_length=64, description="The old subscription's keys.auth")]
    subscription: PushSubscriptionIn


class UnreadCount(msgspec.Struct):
    """Extension: GET /notifications/unread."""

    unread: int


class PushKey(msgspec.Struct):
    public_key: str


class ChannelPrefs(msgspec.Struct):
    in_app: bool = True
    browser: bool = True
    push: bool = True


class QuietHours(msgspec.Struct):
    start: Annotated[str, Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM, local time")]
    end: Annotated[str, Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class Preferences(msgspec.Struct):
    """Extension: how an account wants its notifications."""

    timezone: Annotated[str, Meta(max_length=64)] = "UTC"
    quiet_hours: QuietHours | None = None
    kinds: dict[str, ChannelPrefs] = msgspec.field(default_factory=dict)
    muted_circles: list[Id] = msgspec.field(default_factory=list)
    # Extension: per circle (by id), the kinds that have their own channels there; a kind not listed follows `kinds`
    # ("as everywhere"). A kind listed here wins over the circle's mute. Always in answers; left out of a PUT, the
    # per-circle settings stay as they are.
    circles: Annotated[dict[Id, dict[str, ChannelPrefs]], Meta(max_length=500)] | msgspec.UnsetType = msgspec.UNSET
