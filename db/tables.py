"""Kindred's tables.

Identity lives only in `Account` (and `AuthToken`); everything a peer can see hangs off a `Membership`, whose id is
random per circle so that nothing links one person's memberships across circles.
"""

from __future__ import annotations

from piccolo.columns import (
    UUID,
    BigSerial,
    Boolean,
    ForeignKey,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Account(Table, tablename="account"):
    id = UUID(primary_key=True)
    email = Varchar(length=320, unique=True, help_text="Lower-cased sign-in address; private to its owner.")
    name = Varchar(length=80, help_text="Display name; private, shown only to its owner and to permitted coaches.")
    password_hash = Varchar(length=255, help_text="argon2id hash (PHC string).")
    created_at = Timestamptz(default=TimestamptzNow())
    password_changed_at = Timestamptz(default=TimestamptzNow())
    deleted_at = Timestamptz(
        null=True, default=None, help_text="Set when the owner deleted the account; email and name are erased then."
    )
    timezone = Varchar(length=64, default="UTC", help_text="IANA time zone, for quiet hours and day grouping.")
    quiet_start = Integer(
        null=True, default=None, help_text="Quiet hours start, minutes after local midnight; NULL for none."
    )
    quiet_end = Integer(null=True, default=None, help_text="Quiet hours end, minutes after local midnight.")


class AuthToken(Table, tablename="auth_token"):
    id = UUID(primary_key=True)
    account = ForeignKey(references=Account, on_delete=OnDelete.cascade, index=True, null=False)
    token_hash = Varchar(
        length=64, unique=True, help_text="SHA-256 of the bearer/cookie token; the token itself is never stored."
    )
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz(help_text="After this the token no longer signs anyone in.")


class Circle(Table, tablename="circle"):
    id = UUID(primary_key=True)
    name = Varchar(length=120)
    commonality = Text(help_text="The shared path of the members; the first thing a new member reads.")
    norms = Text(default="", help_text="How the circle treats each other; shown beside the commonality.")
    coach_sees_identity = Boolean(
        default=True, help_text="Whether the circle's coach may see members' account names and emails."
    )
    created_at = Timestamptz(default=TimestamptzNow())
    closed_at = Timestamptz(null=True, default=None, help_text="Set when the coach closed the circle: read-only.")
    delete_after = Timestamptz(
        null=True, default=None, help_text="A closed circle and everything in it is deleted after this moment."
    )
    care_resources = Text(
        null=True,
        default=None,
        help_text="Markdown: where to turn in a crisis (the coach's words); NULL shows Kindred's default.",
    )


class Membership(Table, tablename="membership"):
    id = UUID(primary_key=True)
    circle = ForeignKey(references=Circle, on_delete=OnDelete.cascade, null=False)
    account = ForeignKey(references=Account, on_delete=OnDelete.cascade, index=True, null=False)
    alias = Varchar(length=40, help_text="How this member appears to peers in this circle.")
    alias_key = Varchar(
        length=40, help_text="casefold() of alias; unique per circle among current members (partial index)."
    )
    alias_skeleton = Varchar(
        length=160,
        default="",
        help_text="TR39 skeleton of alias (app/services/aliases.py); unique per circle among current members.",
    )
    role = Varchar(length=16, help_text="'coach' or 'member'.")
    joined_at = Timestamptz(default=TimestamptzNow())
    removed_at = Timestamptz(null=True, default=None, help_text="Set when the member left or was removed.")
    ended_by = Varchar(
        length=16,
        null=True,
        default=None,
        help_text="How the membership ended: 'left' (by the member), 'removed' (by the coach), 'deleted' (account).",
    )
    rejoin_blocked = Boolean(
        default=False,
        help_text="Removed by the coach: the account may not join the circle again until the coach lifts it.",
    )
    coach_sees_identity = Boolean(
        default=False,
        help_text="The member joined while the circle let its coach see identities: their consent, taken at join time.",
    )
    muted_until = Timestamptz(null=True, default=None, help_text="The member cannot post or react before this.")
    welcomed_at = Timestamptz(
        null=True,
        default=None,
        help_text="When the member put the one-time welcome card away (dismissed it or took its next step).",
    )
    mute_reason = Text(null=True, default=None)
    collapsed_themes = Text(
        default="", help_text="Themes (one a line) the member prefers collapsed always; see docs/care.md."
    )


class Invite(Table, tablename="invite"):
    id = UUID(primary_key=True)
    circle = ForeignKey(references=Circle, on_delete=OnDelete.cascade, index=True, null=False)
    code = Varchar(length=32, unique=True, help_text="Random, URL-safe; the secret in an invite link.")
    created_by = ForeignKey(references=Membership, on_delete=OnDelete.cascade, null=False)
    max_uses = Integer(null=True, default=None, help_text="How many joins the code allows; NULL is unlimited.")
    uses = Integer(default=0)
    expires_at = Timestamptz()
    created_at = Timestamptz(default=TimestamptzNow())


class Room(Table, tablename="room"):
    id = UUID(primary_key=True)
    circle = ForeignKey(references=Circle, on_delete=OnDelete.cascade, index=True, null=False)
    name = Varchar(length=80)
    topic = Text(default="")
    last_seq = Integer(
        default=0, help_text="Seq of the room's newest event; incremented under this row's lock in each write."
    )
    created_at = Timestamptz(default=TimestamptzNow())
    kind = Varchar(length=16, default="room", help_text="room, dropin (a drop-in's own room) or journal.")
    # A journal's member: only they and the circle's coach may read or write it. A plain UUID (its unique partial
    # index is raw), NULL for every other room.
    membership = UUID(null=True, default=None, help_text="The member whose journal this is; NULL for other rooms.")


class Post(Table, tablename="post"):
    id = UUID(primary_key=True)
    room = ForeignKey(references=Room, on_delete=OnDelete.cascade, null=False)
    # A plain UUID, not a ForeignKey: Piccolo's auto-migrations cannot type a self-reference to a UUID key.
    parent = UUID(null=True, default=None, help_text="The post this replies to; NULL for a top-level post.")
    thread_root = UUID(
        null=True, default=None, index=True, help_text="Top-level post of this reply's thread; NULL for top-level."
    )
    author = ForeignKey(references=Membership, on_delete=OnDelete.cascade, index=True, null=False)
    kind = Varchar(length=16, default="reflection", help_text="reflection, experiment, win or question.")
    body = Text(help_text="Markdown source; emptied when the post is deleted.")
    html = Text(help_text="Sanitised rendering of body.")
    created_at = Timestamptz(default=TimestamptzNow())
    edited_at = Timestamptz(null=True, default=None)
    deleted_at = Timestamptz(null=True, default=None)
    hidden_at = Timestamptz(null=True, default=None, help_text="Hidden by the coach: peers see a placeholder.")
    moderation_reason = Text(
        null=True, default=None, help_text="Why the coach hid or removed the post; shown to its author only."
    )
    client_id = Varchar(
        length=64, null=True, default=None, help_text="Author-chosen idempotency key; unique per author."
    )
    seq = Integer(help_text="The room seq of this post's post.created event.")
    like_count = Integer(default=0)
    liked_by_coach = Boolean(default=False)
    pinned = Boolean(default=False)
    shared_from = Text(
        null=True, default=None, help_text="JSON SharedFrom when this post is a share of another post; NULL otherwise."
    )
    # Never sent to anyone: across circles `shared_from` withholds the original, but the copy must still follow it.
    # Indexed by a partial index (raw migration): most posts are not shares.
    origin = UUID(
        null=True,
        default=None,
        help_text="The post this one is a share of (the first original, for a share of a share); NULL otherwise.",
    )
    hidden_with_origin = Boolean(
        default=False, help_text="Hidden because its original was hidden; restored with it, shown to nobody meanwhile."
    )
    # The lab: the experiment record (JSON `realtime.events.Experiment`) on a post of kind experiment, with its state
    # and due time in columns of their own so the due check is one indexed query (raw partial index).
    experiment = Text(null=True, default=None, help_text="JSON Experiment on a post of kind experiment; else NULL.")
    experiment_state = Varchar(
        length=16, null=True, default=None, help_text="planned, tried, debriefed or abandoned; NULL without a record."
    )
    experiment_due_at = Timestamptz(null=True, default=None, help_text="When the author is asked how it went.")
    experiment_due_sent_at = Timestamptz(
        null=True, default=None, help_text="When experiment.due went out (once, whichever instance claimed it)."
    )
    content_note = Varchar(
        length=80, null=True, default=None, help_text="The author's note on what the post touches; readers open it."
    )
    reply_wish = Varchar(
        length=16, null=True, default=None, help_text="listen, questions or ideas: the reply the author would welcome."
    )


class RoomEvent(Table, tablename="room_event"):
    id = BigSerial(primary_key=True)
    room = ForeignKey(references=Room, on_delete=OnDelete.cascade, null=False)
    seq = Integer(help_text="1, 2, 3 ... per room, gap-free, in commit order; unique with room.")
    type = Varchar(length=32, help_text="The event name, e.g. post.created.")
    post_id = UUID(null=True, default=None, index=True, help_text="The post the event is about, for scrubbing.")
    data = Text(help_text="The event's data as JSON, exactly as it goes out on the wire.")
    created_at = Timestamptz(default=TimestamptzNow())


class RoomRead(Table, tablename="room_read"):
    """How far a member has read a room: for journals, the coach's unread markers and the member's "new from your
    coach". One row per (membership, room): a raw unique index."""

    id = UUID(primary_key=True)
    membership = ForeignKey(references=Membership, on_delete=OnDelete.cascade, null=False)
    room = ForeignKey(references=Room, on_delete=OnDelete.cascade, null=False)
    seen_seq = Integer(default=0, help_text="The room's last_seq when the member last opened it.")
    seen_at = Timestamptz(default=TimestamptzNow())


class PostLike(Table, tablename="post_like"):
    id = UUID(primary_key=True)
    post = ForeignKey(references=Post, on_delete=OnDelete.cascade, null=False)
    membership = ForeignKey(references=Membership, on_delete=OnDelete.cascade, index=True, null=False)
    created_at = Timestamptz(default=TimestamptzNow())


class Pin(Table, tablename="pin"):
    id = UUID(primary_key=True)
    post = ForeignKey(references=Post, on_delete=OnDelete.cascade, unique=True, null=False)
    circle = ForeignKey(references=Circle, on_delete=OnDelete.cascade, index=True, null=False)
    note = Text(null=True, default=None, help_text="The coach's note on why this is a key insight.")
    pinned_by = ForeignKey(references=Membership, on_delete=OnDelete.cascade, null=False)
    pinned_at = Timestamptz(default=TimestamptzNow())


class Tag(Table, tablename="tag"):
    id = UUID(primary_key=True)
    post = ForeignKey(references=Post, on_delete=OnDelete.cascade, null=False)
    membership = ForeignKey(references=Membership, on_delete=OnDelete.cascade, index=True, null=False)
    tagged_by = ForeignKey(references=Membership, on_delete=OnDelete.cascade, null=False)
    created_at = Timestamptz(default=TimestamptzNow())


class Notification(Table, tablename="notification"):
    id = UUID(primary_key=True)
    account = ForeignKey(
        references=Account, on_delete=OnDelete.cascade, null=False, help_text="The recipient; never shown to anyone."
    )
    kind = Varchar(length=32, help_text="reply, question, mention, tag, like, coach_like, pin, share, dropin.live ...")
    circle = ForeignKey(references=Circle, on_delete=OnDelete.cascade, null=True, default=None)
    room = ForeignKey(references=Room, on_delete=OnDelete.cascade, null=True, default=None)
    post_id = UUID(null=True, default=None, help_text="The post that caused it (the reply, the share...).")
    actor = ForeignKey(
        references=Membership,
        on_delete=OnDelete.cascade,
        null=True,
        default=None,
        help_text="Who did it, as a membership of the notification's circle: shown by alias only.",
    )
    reason = Text(null=True, default=None, help_text="A moderation reason, shown to the recipient only.")
    created_at = Timestamptz(default=TimestamptzNow())
    read_at = Timestamptz(null=True, default=None)


class Dropin(Table, tablename="dropin"):
    """A live session: scheduled, then live once the coach starts it, then ended (its room becomes read-only)."""

    id = UUID(primary_key=True)
    circle = ForeignKey(references=Circle, on_delete=OnDelete.cascade, index=True, null=False)
    room = ForeignKey(
        references=Room,
        on_delete=OnDelete.cascade,
        unique=True,
        null=False,
        help_text="The drop-in's own room: posts, replies and gestures happen there.",
    )
    title = Varchar(length=120)
    agenda = Text(default="")
    starts_at = Timestamptz()
    duration_minutes = Integer()
    state = Varchar(length=16, default="scheduled", help_text="scheduled, live or ended.")
    started_at = Timestamptz(null=True, default=None)
    ended_at = Timestamptz(null=True, default=None)
    spotlight = UUID(null=True, default=None, help_text="The post everyone is looking at now.")
    called = UUID(
        null=True,
        default=None,
        help_text="The membership the coach called on from the raised hands, until the spotlight changes or it ends.",
    )
    reminded_at = Timestamptz(null=True, default=None, help_text="When the 10-minute reminder went out.")
    created_at = Timestamptz(default=TimestamptzNow())


class DropinHand(Table, tablename="dropin_hand"):
    """A raised hand; the queue is ordered by `raised_at`."""

    id = UUID(primary_key=True)
    dropin = ForeignKey(references=Dropin, on_delete=OnDelete.cascade, null=False)
    membership = ForeignKey(references=Membership, on_delete=OnDelete.cascade, null=False)
    raised_at = Timestamptz(default=TimestamptzNow())


class DropinParticipant(Table, tablename="dropin_participant"):
    """Who took part: joined the room while it was live, raised a hand, or posted there."""

    id = UUID(primary_key=True)
    dropin = ForeignKey(references=Dropin, on_delete=OnDelete.cascade, null=False)
    membership = ForeignKey(references=Membership, on_delete=OnDelete.cascade, null=False)
    joined_at = Timestamptz(default=TimestamptzNow())


class NotificationPreference(Table, tablename="notification_preference"):
    """How one account wants one kind of notification: per circle, or for all circles when `circle` is NULL.
    Kind `*` in a circle row is that circle's switch as a whole (muting it)."""

    id = UUID(primary_key=True)
    account = ForeignKey(references=Account, on_delete=OnDelete.cascade, index=True, null=False)
    circle = ForeignKey(references=Circle, on_delete=OnDelete.cascade, null=True, default=None)
    kind = Varchar(length=32)
    in_app = Boolean(default=True)
    browser = Boolean(default=True)
    push = Boolean(default=True)
    email = Boolean(
        default=False,
        help_text="By email: in the digest (drop-in reminders: a mail of their own). Defaults per kind: "
        "app/services/notifications.py DEFAULTS.",
    )


class PushSubscription(Table, tablename="push_subscription"):
    """One browser's Web Push channel, for one sign-in of one account."""

    id = UUID(primary_key=True)
    account = ForeignKey(references=Account, on_delete=OnDelete.cascade, index=True, null=False)
    token = ForeignKey(
        references=AuthToken,
        on_delete=OnDelete.cascade,
        index=True,
        null=True,
        default=None,
        help_text="The sign-in that subscribed this browser; the subscription ends with it (sign-out, password "
        "change, account deletion). NULL only transiently; never pushed to.",
    )
    endpoint = Text(
        unique=True,
        help_text="The push service URL for one browser, unique: it belongs to the account that subscribed it "
        "last. Checked against the allowed push origins.",
    )
    p256dh = Varchar(length=128, help_text="The browser's public key (base64url), for RFC 8291 encryption.")
    auth = Varchar(length=64, help_text="The browser's auth secret (base64url).")
    created_at = Timestamptz(default=TimestamptzNow())


class Report(Table, tablename="report"):
    id = UUID(primary_key=True)
    post = ForeignKey(references=Post, on_delete=OnDelete.cascade, null=False)
    circle = ForeignKey(references=Circle, on_delete=OnDelete.cascade, index=True, null=False)
    reporter = ForeignKey(references=Membership, on_delete=OnDelete.cascade, null=False)
    reason = Text(help_text="What the reporting member says is wrong.")
    created_at = Timestamptz(default=TimestamptzNow())
    resolved_at = Timestamptz(null=True, default=None)
    resolution = Varchar(length=16, null=True, default=None, help_text="dismissed, hidden or removed.")


class ModerationLog(Table, tablename="moderation_log"):
    """Every moderation action, for the coach to read back. Append-only."""

    id = UUID(primary_key=True)
    circle = ForeignKey(references=Circle, on_delete=OnDelete.cascade, index=True, null=False)
    actor = ForeignKey(references=Membership, on_delete=OnDelete.cascade, null=False)
    action = Varchar(length=32, help_text="hide, restore, remove, mute, unmute, remove_member, report_dismissed...")
    post_id = UUID(null=True, default=None)
    member = UUID(null=True, default=None, help_text="The membership acted on, for member actions.")
    reason = Text(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class MailMessage(Table, tablename="mail_message"):
    """One mail, written in the transaction of what caused it and sent after commit by whichever instance claims it
    (app/mail.py). Kept after sending, so `kindred mail` can show what went out."""

    id = UUID(primary_key=True)
    account = ForeignKey(
        references=Account, on_delete=OnDelete.cascade, null=True, default=None, help_text="The recipient's account."
    )
    kind = Varchar(length=32, help_text="reset, ...: what the mail is, for unsubscribing and for `kindred mail`.")
    to_addr = Varchar(length=320, help_text="Where it goes; private to the recipient.")
    subject = Text()
    body_text = Text(help_text="The plain-text part; emptied once sent for mail that carries a secret link.")
    body_html = Text(help_text="The HTML part; emptied with body_text.")
    state = Varchar(length=16, default="queued", help_text="queued, sent, logged (no SMTP configured) or failed.")
    attempts = Integer(default=0, help_text="SMTP attempts so far.")
    send_after = Timestamptz(default=TimestamptzNow(), help_text="Not tried before this (the retry backoff).")
    claimed_until = Timestamptz(
        null=True, default=None, help_text="An instance is sending it until then; another may claim it after."
    )
    last_error = Text(null=True, default=None, help_text="The SMTP server's last refusal.")
    created_at = Timestamptz(default=TimestamptzNow())
    sent_at = Timestamptz(null=True, default=None)
    unsubscribe_url = Text(
        null=True, default=None, help_text="The List-Unsubscribe link (RFC 8058); NULL for transactional mail."
    )
    attachment_name = Varchar(length=120, null=True, default=None, help_text="A file sent with it (a drop-in's .ics).")
    attachment_type = Varchar(length=80, null=True, default=None, help_text="Its media type, text/calendar ...")
    attachment = Text(null=True, default=None, help_text="Its content (text only).")


class MailSetting(Table, tablename="mail_setting"):
    """One account's mail settings beyond the per-kind email column (docs/email.md); no row means the defaults. The
    time zone is the account's own (`account.timezone`)."""

    id = UUID(primary_key=True)
    account = ForeignKey(references=Account, on_delete=OnDelete.cascade, unique=True, null=False)
    unsubscribe_key = Varchar(
        length=64, unique=True, help_text="Random; the secret part of every unsubscribe link. Reveals nothing."
    )
    digest = Varchar(length=8, default="daily", help_text="off, daily or weekly.")
    digest_weekday = Integer(default=0, help_text="For weekly digests: 0 Monday ... 6 Sunday, local.")
    digest_hour = Integer(default=17, help_text="Local hour the digest goes out, 0-23.")
    coach_digest = Boolean(default=True, help_text="The coach's digest before each working day (coaches only).")
    coach_digest_hour = Integer(default=7, help_text="Local hour of the coach's digest, Monday to Friday.")
    visited_at = Timestamptz(null=True, default=None, help_text="The last page the account opened (to 5 minutes).")
    digest_at = Timestamptz(null=True, default=None, help_text="When the last digest was written.")


class MailPeriod(Table, tablename="mail_period"):
    """Scheduled mail claimed for one account and one period: two instances never both write it."""

    id = UUID(primary_key=True)
    key = Varchar(length=120, unique=True, help_text="kind:account:period, e.g. digest:<uuid>:2026-12-07.")
    created_at = Timestamptz(default=TimestamptzNow())


class PasswordReset(Table, tablename="password_reset"):
    """A password reset link: single use, valid one hour; only the SHA-256 of its token is stored."""

    id = UUID(primary_key=True)
    account = ForeignKey(references=Account, on_delete=OnDelete.cascade, null=False)
    token_hash = Varchar(length=64, unique=True, help_text="SHA-256 of the token in the link.")
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz(help_text="An hour after created_at.")
    used_at = Timestamptz(null=True, default=None, help_text="Set when the link set a new password.")


class EmailChange(Table, tablename="email_change"):
    """A requested change of sign-in address (app/services/email_change.py): the link mailed to the new address,
    single use, valid a day; only the SHA-256 of its token is stored. The address changes when the link is used."""

    id = UUID(primary_key=True)
    account = ForeignKey(references=Account, on_delete=OnDelete.cascade, null=False)
    new_email = Varchar(length=320, help_text="The address asked for, lower-cased; private to the account.")
    token_hash = Varchar(length=64, unique=True, help_text="SHA-256 of the token in the link.")
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz(help_text="A day after created_at.")
    used_at = Timestamptz(null=True, default=None, help_text="Set when the link changed the address.")


TABLES: tuple[type[Table], ...] = (
    Account,
    AuthToken,
    Circle,
    Membership,
    Invite,
    Room,
    Post,
    RoomEvent,
    RoomRead,
    PostLike,
    Pin,
    Tag,
    Notification,
    Report,
    ModerationLog,
    NotificationPreference,
    PushSubscription,
    Dropin,
    DropinHand,
    DropinParticipant,
    MailMessage,
    PasswordReset,
    EmailChange,
    MailSetting,
    MailPeriod,
)
