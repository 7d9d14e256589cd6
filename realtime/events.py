"""The wire vocabulary: peer-visible structs, room events, and the frames that travel between instances.

Every struct here may reach a peer, so none has a field for account identity (id, email, name): pseudonymity is a
property of these types. Unknown fields are forbidden on the structs we decode, so a field added in one place and
not the other is a schema bug caught at the boundary, not a silent drop.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

Role = Literal["coach", "member"]
ROLES: tuple[Role, ...] = ("coach", "member")
PostKind = Literal["reflection", "experiment", "win", "question"]
DropinStateName = Literal["scheduled", "live", "ended"]
# Every kind of notification (app/services/notifications.py says what each one says and who gets it by default).
NotificationKind = Literal[
    "reply",
    "question",
    "mention",
    "tag",
    "like",
    "coach_like",
    "pin",
    "share",
    "moderation",
    "report",
    "circle.closed",
    "circle.privacy",
    "dropin.live",
    "dropin.reminder",
    "experiment.due",
    "experiment.debriefed",
    "care.concern",
]
ReplyWish = Literal["listen", "questions", "ideas"]
ExperimentStateName = Literal["planned", "tried", "debriefed", "abandoned"]
Matched = Literal["yes", "partly", "no"]


class Membership(msgspec.Struct, frozen=True):
    """How a person appears inside one circle: an alias and a role, never an account."""

    membership_id: str
    alias: str
    role: Role


class SharedFrom(msgspec.Struct, frozen=True):
    """Where a shared post came from, and the sharer's note. Shared from another circle, the origin is withheld
    (`post_id`, `room_id` and `author` are null): nothing may link one circle's memberships to another's."""

    post_id: str | None
    room_id: str | None
    author: Membership | None
    note: str | None = None


class Experiment(msgspec.Struct, kw_only=True):
    """The record of one behavioural experiment (contract, second part: the lab). Only on posts of kind
    `experiment`; its author moves it planned -> tried -> debriefed (or abandoned)."""

    state: ExperimentStateName
    assumption: str
    belief_before: int
    action: str
    prediction: str
    prediction_confidence: int | None = None
    safety_behaviours: list[str] = msgspec.field(default_factory=list)
    due_at: datetime
    outcome: str | None = None
    matched_prediction: Matched | None = None
    belief_after: int | None = None
    learning: str | None = None
    tried_at: datetime | None = None
    debriefed_at: datetime | None = None


class Post(msgspec.Struct, kw_only=True):
    id: str
    room_id: str
    parent_id: str | None
    author: Membership
    kind: PostKind
    body: str
    html: str
    created_at: datetime
    edited_at: datetime | None
    like_count: int
    liked_by_coach: bool
    pinned: bool
    shared_from: SharedFrom | None
    seq: int
    # Extension: true for the placeholder of a deleted post that still anchors replies (body and html are empty).
    deleted: bool = False
    # Extension: hidden by the coach. Peers get empty body and html; the author and the coach get the text.
    hidden: bool = False
    # Extension: why the coach hid it; only ever sent to the post's author and the coach.
    moderation_reason: str | None = None
    # The lab: the experiment record on a post of kind `experiment` (null on other kinds, and on experiment posts
    # made without one). Empty for peers while the post is hidden, like its text.
    experiment: Experiment | None = None
    # Care (docs/care.md): the author's note on what the post touches (readers open the post by choice), and the
    # kind of reply they would welcome. Always present, null when unset.
    content_note: str | None = None
    reply_wish: ReplyWish | None = None


class PostRef(msgspec.Struct, frozen=True):
    id: str
    room_id: str


class LikeState(msgspec.Struct, frozen=True):
    post_id: str
    like_count: int
    liked_by_coach: bool


class PinState(msgspec.Struct, frozen=True):
    post_id: str
    pinned: bool
    note: str | None


class Dropin(msgspec.Struct, kw_only=True):
    id: str
    circle_id: str
    room_id: str
    title: str
    starts_at: datetime
    duration_minutes: int
    state: DropinStateName
    spotlight: str | None = None
    # Extension: the spotlighted post itself, so every client (and the HTML renderer) can show it without a request.
    spotlight_post: Post | None = None
    # Extension: the member the coach called on from the raised hands (alias only), until the spotlight changes or
    # the drop-in ends; set even when they have not posted yet, so their page can say "You're up".
    called: Membership | None = None


class Notification(msgspec.Struct, kw_only=True):
    id: str
    kind: NotificationKind
    circle_id: str | None
    room_id: str | None
    post_id: str | None
    actor: Membership | None
    created_at: datetime
    read: bool
    # Extension: for moderation notices, the coach's reason.
    reason: str | None = None
    # Extension: one line saying what happened, by alias only ("Quiet River replied to your post").
    text: str = ""


# --- Room events: durable, numbered, replayable. The envelope is exactly the websocket frame. ---------------------


class _Event(msgspec.Struct, kw_only=True, tag_field="event", forbid_unknown_fields=True):
    type: Literal["event"] = "event"
    room_id: str
    seq: int


class PostCreated(_Event, tag="post.created"):
    data: Post


class PostUpdated(_Event, tag="post.updated"):
    data: Post


class PostDeleted(_Event, tag="post.deleted"):
    data: PostRef


class LikeChanged(_Event, tag="like.changed"):
    data: LikeState


class PinChanged(_Event, tag="pin.changed"):
    data: PinState


class DropinChanged(_Event, tag="dropin.state"):
    data: Dropin


class ExperimentMove(msgspec.Struct, frozen=True):
    post_id: str
    experiment: Experiment


class ExperimentChanged(_Event, tag="experiment.changed"):
    data: ExperimentMove


RoomEvent = PostCreated | PostUpdated | PostDeleted | LikeChanged | PinChanged | DropinChanged | ExperimentChanged


# --- What travels on the bus (channels room:{id} and account:{id}). ------------------------------------------------
# The hub reads only the head of an event (its room and seq); the full body is decoded lazily, once per instance,
# and only when some socket wants the HTML variant.


class EventHead(msgspec.Struct, tag_field="type", tag="event"):
    room_id: str
    seq: int
    event: str


class PresenceFrame(msgspec.Struct, tag_field="type", tag="presence"):
    room_id: str
    present: list[Membership]
    hands: list[Membership]
    # Extension: how many are present. Equal to len(present) up to PRESENCE_LIST_MAX; in a bigger room `present`
    # holds the first that many (coach first, then by alias) and this the whole count (docs/contract-notes.md).
    present_count: int = 0


class NotificationFrame(msgspec.Struct, tag_field="type", tag="notification"):
    data: Notification
    # Extension: the recipient wants a browser notification for this one (their preferences, outside quiet hours).
    alert: bool = False
    # Extension: whether it is in the recipient's feed (counted on the bell). False for a notification the recipient
    # wants as a browser notification only (in-app off for its kind).
    in_feed: bool = True
    # Extension: where opening it leads: its feed entry's open link (which marks it read), or, when it is not in the
    # feed, straight to the thread at the post (or the room, or the circle).
    url: str | None = None


class NotificationsRead(msgspec.Struct, tag_field="type", tag="notifications.read"):
    """Extension: some of the account's notifications were marked read (in any tab, by any client); `unread` is how
    many are left. Sent to every socket of the account, so every open page can lower its bell."""

    unread: int


class Revoke(msgspec.Struct, tag_field="type", tag="revoke"):
    """Internal: the account lost access to a circle; every instance drops its subscriptions there. Never sent out."""

    account_id: str
    circle_id: str


class SignedOut(msgspec.Struct, tag_field="type", tag="signed_out"):
    """Internal: a sign-in token was revoked; sockets opened with it close. `token_id` None means all of them."""

    account_id: str
    token_id: str | None


class AliasChanged(msgspec.Struct, tag_field="type", tag="alias_changed"):
    """Internal: the account now appears as `who` in the circle; its sockets there re-join presence under it. Never
    sent out."""

    account_id: str
    circle_id: str
    who: Membership


class LogRewritten(msgspec.Struct, tag_field="type", tag="log_rewritten"):
    """Internal: the room's stored events were rewritten (an alias changed); copies cached for replay are stale and
    must not be sent again. Never sent out."""

    room_id: str


class CacheDrop(msgspec.Struct, tag_field="type", tag="cache_drop"):
    """Internal, on the `caches` channel every instance hears: forget cached sign-ins (`tokens`: of the account, or
    only `token_id`) or cached room access (`access`: of the account, of the circle, or of the account in the
    circle). Never sent out."""

    what: Literal["tokens", "access"]
    account_id: str | None = None
    token_id: str | None = None
    circle_id: str | None = None


BusMessage = (
    EventHead
    | PresenceFrame
    | NotificationFrame
    | NotificationsRead
    | Revoke
    | SignedOut
    | AliasChanged
    | LogRewritten
    | CacheDrop
)


# --- Frames only the server sends. ---------------------------------------------------------------------------------


class Subscribed(msgspec.Struct, tag_field="type", tag="subscribed"):
    room_id: str
    last_seq: int


class Resync(msgspec.Struct, tag_field="type", tag="resync"):
    room_id: str
    last_seq: int


class Unsubscribed(msgspec.Struct, tag_field="type", tag="unsubscribed"):
    room_id: str


class Pong(msgspec.Struct, tag_field="type", tag="pong"):
    pass


class ErrorFrame(msgspec.Struct, tag_field="type", tag="error"):
    code: str
    detail: str
    room_id: str | None = None


class Posted(msgspec.Struct, tag_field="type", tag="posted"):
    """Extension: the answer to a `post` op, the post as `POST /rooms/{room_id}/posts` answers it (201). A repeat of a
    `client_id` is answered with the same post."""

    client_id: str
    post: Post


class OpError(msgspec.Struct, tag_field="type", tag="error", omit_defaults=True):
    """Extension: an `error` frame that answers a `post` op: the contract's `code` and `detail`, the op and its
    `client_id`, and `status`, the HTTP status the API gives for the same request (with its `detail`);
    `retry_after` (seconds) where the API would send `Retry-After`."""

    code: str
    detail: str
    op: str
    status: int
    client_id: str | None = None
    room_id: str | None = None
    retry_after: int | None = None


# Module-level codecs: one encoder for every outbound struct, one decoder per inbound shape.
encoder = msgspec.json.Encoder()
bus_decoder = msgspec.json.Decoder(BusMessage)
event_decoder = msgspec.json.Decoder(RoomEvent)


def event_name(event: RoomEvent) -> str:
    """The event's name on the wire (its tag): `post.created`, ..."""
    tag = type(event).__struct_config__.tag
    assert isinstance(tag, str)
    return tag


def encode_event(room_id: str, seq: int, name: str, data_json: bytes) -> bytes:
    """Build the wire envelope around already-encoded data, so the data is encoded once for log and bus alike."""
    return b"".join(
        (
            b'{"type":"event","room_id":',
            encoder.encode(room_id),
            b',"seq":',
            str(seq).encode(),
            b',"event":',
            encoder.encode(name),
            b',"data":',
            data_json,
            b"}",
        )
    )
