"""The member's digest by email: what they missed, at the hour they chose in their own time zone (docs/email.md).

A job on every instance calls `send_digests` every few minutes (with an explicit `at` in tests). For each account whose
local time is its digest hour (and, weekly, its day), it gathers what is new since the last digest (or, for the
first, since one period ago). Nothing goes out when there is nothing new, or when the member has opened Kindred since
then. The period is claimed in the database (`mail_period`, one unique row per account, kind and period) in the same
transaction that writes the mail, so two instances, or two runs in the same hour, never both send it.

Contents, in this order: the coach's gestures to you (questions first), experiments due for a debrief, replies to
you, new key insights, small wins (a count and the top three), upcoming drop-ins. Each kind of notification is in it
only if its email column is on (notifications.resolve, per circle). Peers appear by their alias in that circle only.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app import mail
from app.live import Live
from app.routes.pages.common import excerpt
from app.services import mailprefs
from app.services.notifications import resolve, target_url, time_zone
from app.services.outbox import unit_of_work
from app.settings import Settings
from db.queries import now
from db.tables import Account, MailSetting, Membership, NotificationPreference, Pin, Post, Room
from db.tables import Dropin as DropinRow
from db.tables import Notification as NotificationRow

GESTURES = ("question", "coach_like", "pin", "share", "tag")
REPLIES = ("reply", "mention")
GESTURE_TEXT = {
    "question": "asked you a question",
    "coach_like": "appreciated your post",
    "pin": "pinned your post as a key insight",
    "share": "shared your post",
    "tag": "drew you into a thread",
}
UPCOMING = timedelta(days=7)
TOP_WINS = 3
PERIOD = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}


@dataclass
class Line:
    """One line of a digest: who (an alias), what, a few words, and the exact post it opens."""

    text: str
    link: str
    circle: str
    excerpt: str = ""
    who: str = ""
    when: str = ""  # a drop-in's start, in the reader's time zone


@dataclass
class Digest:
    gestures: list[Line] = field(default_factory=list)
    due: list[Line] = field(default_factory=list)
    replies: list[Line] = field(default_factory=list)
    insights: list[Line] = field(default_factory=list)
    wins: int = 0
    top_wins: list[Line] = field(default_factory=list)
    dropins: list[Line] = field(default_factory=list)

    def has_news(self) -> bool:
        """Upcoming drop-ins alone are no reason to write: they ride along with something new."""
        return bool(self.gestures or self.due or self.replies or self.insights or self.wins)


def local_slot(at: datetime, zone_name: str | None) -> tuple[datetime, ZoneInfo | None]:
    zone = time_zone(zone_name)
    return at.astimezone(zone or UTC), zone


def period_of(setting: dict[str, Any], local: datetime) -> str | None:
    """The digest's period if `local` is in its hour (and day), else None: `2026-12-07` daily, `2026-W49` weekly."""
    mode = setting.get("digest") or "daily"
    if mode == "off" or local.hour != int(setting.get("digest_hour", 17)):
        return None
    if mode == "weekly":
        if local.weekday() != int(setting.get("digest_weekday", 0)):
            return None
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return local.date().isoformat()


def _post_text(row: dict[str, Any]) -> str:
    """A few words of a post; a post with a content note shows only the note (readers choose to open those)."""
    if row.get("content_note"):
        return f"(a post about {row['content_note']})"
    return excerpt(row.get("html") or "")


async def build(
    account_id: uuid.UUID, since: datetime, at: datetime, base: str, zone: ZoneInfo | None = None
) -> Digest:
    """What is new for the account between `since` and `at`, in the digest's order."""
    digest = Digest()
    memberships = await Membership.select(
        Membership.id, Membership.circle, Membership.role, Membership.circle.name.as_alias("circle_name")
    ).where((Membership.account == account_id) & Membership.removed_at.is_null())
    if not memberships:
        return digest
    circles = {m["circle"]: m["circle_name"] for m in memberships}
    mine = {m["id"] for m in memberships}
    prefs = await NotificationPreference.select().where(NotificationPreference.account == account_id)

    def wanted(kind: str, circle: Any) -> bool:
        rows = [r for r in prefs if r["kind"] in (kind, "*") and r["circle"] in (None, circle)]
        return resolve(kind, circle, rows).email

    notes = await (
        NotificationRow.select()
        .where(
            (NotificationRow.account == account_id)
            & NotificationRow.read_at.is_null()
            & (NotificationRow.created_at > since)
            & (NotificationRow.created_at <= at)
            & NotificationRow.kind.is_in([*GESTURES, *REPLIES, "experiment.due"])
        )
        .order_by(NotificationRow.created_at)
    )
    notes = [n for n in notes if n["circle"] in circles and wanted(n["kind"], n["circle"])]
    actors = {n["actor"] for n in notes if n["actor"] is not None}
    who: dict[Any, dict[str, Any]] = {}
    if actors:
        for r in await Membership.select(Membership.id, Membership.alias, Membership.role).where(
            Membership.id.is_in(list(actors))
        ):
            who[r["id"]] = r
    posts = await _posts([n["post_id"] for n in notes if n["post_id"] is not None])
    questions: list[Line] = []
    for n in notes:
        actor = who.get(n["actor"]) if n["actor"] is not None else None
        post = posts.get(n["post_id"])
        if n["post_id"] is not None and post is None:
            continue  # deleted or hidden since: nothing to open
        line = Line(
            text="",
            link=base + target_url(n["post_id"], n["room"], n["circle"], n["kind"]),
            circle=circles[n["circle"]],
            excerpt=_post_text(post) if post else "",
            who=actor["alias"] if actor else "",
        )
        if n["kind"] in GESTURES and actor is not None and actor["role"] == "coach":
            line.text = GESTURE_TEXT[n["kind"]]
            (questions if n["kind"] == "question" else digest.gestures).append(line)
        elif n["kind"] == "experiment.due":
            line.text = "Time to look back at your experiment: how did it go?"
            digest.due.append(line)
        elif n["kind"] in REPLIES:
            line.text = "replied to your post" if n["kind"] == "reply" else "mentioned you"
            digest.replies.append(line)
    digest.gestures = questions + digest.gestures

    rooms = await Room.select(Room.id, Room.circle).where(Room.circle.is_in(list(circles)) & (Room.kind != "journal"))
    room_ids = [r["id"] for r in rooms]
    if room_ids:
        pins = await (
            Pin.select(Pin.post, Pin.circle, Pin.note, Pin.pinned_at)
            .where(Pin.circle.is_in(list(circles)) & (Pin.pinned_at > since) & (Pin.pinned_at <= at))
            .order_by(Pin.pinned_at)
        )
        pinned = await _posts([p["post"] for p in pins], rooms=room_ids)
        for p in pins:
            post = pinned.get(p["post"])
            if post is None:
                continue
            digest.insights.append(
                Line(
                    text=p["note"] or "A key insight",
                    link=f"{base}/posts/{p['post']}",
                    circle=circles[p["circle"]],
                    excerpt=_post_text(post),
                    who=post["alias"],
                )
            )
        wins = await (
            Post.select(
                Post.id,
                Post.html,
                Post.content_note,
                Post.like_count,
                Post.author,
                Post.author.alias.as_alias("alias"),
                Post.room.circle.as_alias("circle"),
            )
            .where(
                Post.room.is_in(room_ids)
                & (Post.kind == "win")
                & Post.parent.is_null()
                & Post.deleted_at.is_null()
                & Post.hidden_at.is_null()
                & (Post.created_at > since)
                & (Post.created_at <= at)
            )
            .order_by(Post.like_count, ascending=False)
        )
        digest.wins = len(wins)
        digest.top_wins = [
            Line(
                text=f"{w['like_count']} like{'s' if w['like_count'] != 1 else ''}",
                link=f"{base}/posts/{w['id']}",
                circle=circles[w["circle"]],
                excerpt=_post_text(w),
                who="you" if w["author"] in mine else w["alias"],
            )
            for w in wins[:TOP_WINS]
        ]
    upcoming = await (
        DropinRow.select(DropinRow.title, DropinRow.starts_at, DropinRow.room, DropinRow.circle)
        .where(
            DropinRow.circle.is_in(list(circles))
            & (DropinRow.state == "scheduled")
            & (DropinRow.starts_at > at)
            & (DropinRow.starts_at <= at + UPCOMING)
        )
        .order_by(DropinRow.starts_at)
    )
    digest.dropins = [
        Line(
            text=d["title"],
            link=f"{base}/rooms/{d['room']}",
            circle=circles[d["circle"]],
            when=d["starts_at"].astimezone(zone or UTC).strftime("%a %d %b, %H:%M"),
        )
        for d in upcoming
    ]
    return digest


async def _posts(ids: list[Any], rooms: list[Any] | None = None) -> dict[Any, dict[str, Any]]:
    """Posts still there for everyone (neither deleted nor hidden), with their author's alias."""
    if not ids:
        return {}
    query = Post.select(Post.id, Post.html, Post.content_note, Post.room, Post.author.alias.as_alias("alias")).where(
        Post.id.is_in(list(set(ids))) & Post.deleted_at.is_null() & Post.hidden_at.is_null()
    )
    if rooms is not None:
        query = query.where(Post.room.is_in(rooms))
    return {r["id"]: r for r in await query}


_CLAIM = "INSERT INTO mail_period (id, key, created_at) VALUES ({}, {}, {}) ON CONFLICT (key) DO NOTHING RETURNING id"


async def claim(kind: str, account_id: uuid.UUID, period: str, at: datetime) -> bool:
    """Inside the caller's transaction: take this account's `kind` mail for `period`; False if already taken."""
    rows = await MailSetting.raw(_CLAIM, uuid.uuid4(), f"{kind}:{account_id}:{period}", at)
    return bool(rows)


async def candidates(where: Callable[[dict[str, Any]], bool]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every live account with an address, with its mail settings (the defaults where it has no row) for which
    `where(setting)` holds. One query for the accounts and one for the settings."""
    settings = {r["account"]: r for r in await MailSetting.select()}
    accounts = await Account.select(Account.id, Account.email, Account.timezone).where(Account.deleted_at.is_null())
    out = []
    for account in accounts:
        setting = settings.get(account["id"]) or {
            "digest": "daily",
            "digest_weekday": 0,
            "digest_hour": 17,
            "coach_digest": True,
            "coach_digest_hour": 7,
            "visited_at": None,
            "digest_at": None,
        }
        if account["email"] and where(setting):
            out.append((account, setting))
    return out


async def send_digests(live: Live, settings: Settings, at: datetime | None = None) -> int:
    """Write the digests due at `at` (now by default); returns how many this call wrote."""
    at = at or now()
    written = 0
    for account, setting in await candidates(lambda s: (s.get("digest") or "daily") != "off"):
        local, zone = local_slot(at, account["timezone"])
        period = period_of(setting, local)
        if period is None:
            continue
        # The previous digest time: a member who has been in Kindred since then has seen what there is.
        previous = at - PERIOD[setting.get("digest") or "daily"]
        if setting.get("visited_at") is not None and setting["visited_at"] >= previous:
            continue
        since = max(previous, setting["digest_at"]) if setting.get("digest_at") else previous
        digest = await build(account["id"], since, at, settings.link_base, zone)
        if not digest.has_news():
            continue
        written += await write_claimed(live, settings, account, "digest", period, at, _render_member, digest)
    return written


def _render_member(digest: Any, footer: dict[str, str]) -> mail.Rendered:
    news = len(digest.gestures) + len(digest.due) + len(digest.replies)
    subject = f"Your Kindred digest: {news} for you" if news else "Your Kindred digest"
    return mail.render("digest", subject, d=digest, **footer)


async def write_claimed(
    live: Live,
    settings: Settings,
    account: dict[str, Any],
    kind: str,
    period: str,
    at: datetime,
    render: Callable[[Any, dict[str, str]], mail.Rendered],
    content: Any,
) -> int:
    """Claim the period and write the mail in one transaction: one mail per account and period, whoever runs it."""
    async with unit_of_work(live) as outbox:
        if not await claim(kind, account["id"], period, at):
            return 0
        footer = await mailprefs.footer(account["id"], kind, settings.link_base)
        if kind == "digest":
            await MailSetting.update({MailSetting.digest_at: at}).where(MailSetting.account == account["id"])
        rendered = render(content, footer)
        await mail.enqueue(outbox, account["id"], account["email"], kind, rendered, unsubscribe=footer["unsubscribe"])
    return 1


async def send_all(live: Live, settings: Settings, at: datetime | None = None) -> int:
    """The digests job: the members' digests, then the coaches' (app/services/coach_digest.py)."""
    from app.services import coach_digest

    at = at or now()
    return await send_digests(live, settings, at) + await coach_digest.send_coach_digests(live, settings, at)
