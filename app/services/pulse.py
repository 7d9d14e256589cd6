"""The coach's pulse: who needs her, what she has given each member, and how the circle is doing.

A fixed handful of aggregate queries over the circle's current members, whatever their number (never one per member):
activity by member and day (posts, likes, experiment moves), the experiments, the coach's gestures, the open probing
questions, and the members' threads of the window with their first replies. Definitions are in docs/pulse.md.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeVar, cast

import msgspec
from litestar.exceptions import ClientException, PermissionDeniedException
from piccolo.engine.postgres import PostgresEngine
from piccolo.querystring import QueryString

from app.schemas.pulse import CirclePulse, CoachGestures, DayPosts, ExperimentCounts, MemberPulse, Pulse
from app.services.common import membership_struct, parse_id, require_member
from db import queries
from db.engine import current_engine
from db.rows import Member
from db.tables import Membership, Post
from realtime.events import Membership as PublicMembership

T = TypeVar("T")

DEFAULT_DAYS, MAX_DAYS = 30, 365
# `active_members_7d` looks at a week whatever the window.
ACTIVE_DAYS = 7
# How far before the window the coach's own gestures are read for those she did not reach in it.
LOOKBACK = timedelta(days=90)
# No upper bound: later than any timestamp stored.
_FOREVER = datetime(9999, 1, 1, tzinfo=UTC)
GESTURES = ("likes", "questions", "pins", "shares", "tags")

# The circle's current members (not the coach) and its current coaches, as subqueries: memberships are per circle,
# so `author IN (members)` is also the circle filter, and it rides the post(author, created_at) index.
_MEMBERS = "SELECT id FROM membership WHERE circle = :cid AND role = 'member' AND removed_at IS NULL"
# The coaches are a list parameter (`:coaches`, one placeholder each): a handful of ids the planner can probe.
_COACHES = ":coaches"

# Activity since `:first` (the earlier of the window's and the week's first moment) by member, post, like and
# experiment move, folded in SQL: one row a member (last activity, the window's posts, replies and wins), one a day
# (members active that day, posts and replies), and the week's active members. A thousand-odd rows, not one a member
# and day.
_ACTIVITY = f"""
WITH a AS MATERIALIZED (
    SELECT p.author AS m, {{day:p.created_at}} AS d, p.created_at AS at,
           CASE WHEN p.parent IS NULL THEN 1 ELSE 0 END AS top,
           CASE WHEN p.parent IS NOT NULL THEN 1 ELSE 0 END AS rep,
           CASE WHEN p.parent IS NULL AND p.kind = 'win' THEN 1 ELSE 0 END AS win
    FROM post p
    WHERE p.author IN ({_MEMBERS}) AND p.deleted_at IS NULL AND p.created_at >= :first
    UNION ALL
    SELECT l.membership, {{day:l.created_at}}, l.created_at, 0, 0, 0
    FROM post_like l
    WHERE l.membership IN ({_MEMBERS}) AND l.created_at >= :first
    UNION ALL
    SELECT p.author, {{day:e.created_at}}, e.created_at, 0, 0, 0
    FROM post p JOIN room_event e ON e.post_id = p.id
    WHERE p.experiment_state IS NOT NULL AND p.author IN ({_MEMBERS})
      AND e.type = 'experiment.changed' AND e.created_at >= :first
)
SELECT 'm' AS k, m, NULL AS d, MAX(at) AS last, COUNT(*) AS n,
       SUM(CASE WHEN at >= :since THEN top ELSE 0 END) AS top,
       SUM(CASE WHEN at >= :since THEN rep ELSE 0 END) AS rep,
       SUM(CASE WHEN at >= :since THEN win ELSE 0 END) AS win
FROM a GROUP BY m
UNION ALL
SELECT 'd', NULL, d, NULL, COUNT(DISTINCT m), SUM(top + rep), 0, 0 FROM a GROUP BY d
UNION ALL
SELECT 'w', NULL, NULL, NULL, COUNT(DISTINCT m), 0, 0, 0 FROM a WHERE at >= :week
"""
# When members were last active, over all time (`{ids}`: one placeholder a member).
_LAST_ACTIVE = """
SELECT m, MAX(at) AS at FROM (
    SELECT p.author AS m, MAX(p.created_at) AS at FROM post p
    WHERE p.author IN ({ids}) AND p.deleted_at IS NULL GROUP BY p.author
    UNION ALL
    SELECT l.membership AS m, MAX(l.created_at) AS at FROM post_like l
    WHERE l.membership IN ({ids}) GROUP BY l.membership
    UNION ALL
    SELECT p.author AS m, MAX(e.created_at) AS at FROM post p JOIN room_event e ON e.post_id = p.id
    WHERE p.experiment_state IS NOT NULL AND p.author IN ({ids}) AND e.type = 'experiment.changed'
    GROUP BY p.author
) x GROUP BY m
"""
_EXPERIMENTS = f"""
SELECT p.author AS m, p.experiment_state AS s, p.experiment_due_at AS due, p.created_at AS at, p.id AS id,
       CASE WHEN p.experiment_state = 'debriefed' THEN p.experiment ELSE NULL END AS rec
FROM post p
WHERE p.experiment_state IS NOT NULL AND p.deleted_at IS NULL AND p.author IN ({_MEMBERS})
  AND (p.created_at >= :since OR (p.experiment_state IN ('planned', 'tried') AND p.experiment_due_at < :now))
"""
# The coach's gestures from `:since` (until `:until`), by gesture and member: each source read from its (who, when)
# index over that span only, whatever the length of the coach's history. A like's member is a probe of the liked post
# (a subquery, so that the planner cannot choose to hash every post of the database instead).
_GESTURES = f"""
SELECT g, m, COUNT(*) AS n, MAX(at) AS last FROM (
    SELECT 'likes' AS g, (SELECT p.author FROM post p WHERE p.id = l.post AND p.deleted_at IS NULL) AS m,
           l.created_at AS at
    FROM post_like l
    WHERE l.membership IN ({_COACHES}) AND l.created_at >= :since AND l.created_at < :until
    UNION ALL
    SELECT 'questions', p.author, q.created_at
    FROM post q JOIN post p ON p.id = q.parent
    WHERE q.author IN ({_COACHES}) AND q.created_at >= :since AND q.created_at < :until AND q.kind = 'question'
      AND q.deleted_at IS NULL AND p.deleted_at IS NULL
    UNION ALL
    SELECT 'pins', p.author, pin.pinned_at
    FROM pin JOIN post p ON p.id = pin.post
    WHERE pin.circle = :cid AND pin.pinned_at >= :since AND pin.pinned_at < :until AND pin.pinned_by IN ({_COACHES})
      AND p.deleted_at IS NULL
    UNION ALL
    SELECT 'shares', o.author, s.created_at
    FROM post s JOIN post o ON o.id = s.origin
    WHERE s.author IN ({_COACHES}) AND s.created_at >= :since AND s.created_at < :until AND s.origin IS NOT NULL
      AND s.deleted_at IS NULL
    UNION ALL
    SELECT 'tags', t.membership, t.created_at
    FROM tag t
    WHERE t.tagged_by IN ({_COACHES}) AND t.created_at >= :since AND t.created_at < :until
) x WHERE m IS NOT NULL GROUP BY g, m
"""
# When the coach last reached the members she did not reach lately (`:quiet`), over all time, from the members' side: their posts (post(author, created_at)), each probed for the coach's like (post_like(post,
# membership)), question (post(thread_root, author, created_at)) and share (post_origin); pins and tags from their own
# small indexes. Its cost follows those members' posts, not the coach's whole history.
_LAST_GESTURE = f"""
SELECT m, MAX(at) AS at FROM (
    SELECT p.author AS m, MAX(l.created_at) AS at
    FROM post p JOIN post_like l ON l.post = p.id
    WHERE p.author IN (:quiet) AND p.deleted_at IS NULL AND l.membership IN ({_COACHES})
    GROUP BY p.author
    UNION ALL
    SELECT p.author, MAX(q.created_at)
    FROM post p JOIN post q ON q.thread_root = COALESCE(p.thread_root, p.id) AND q.parent = p.id
    WHERE p.author IN (:quiet) AND p.deleted_at IS NULL AND q.author IN ({_COACHES}) AND q.kind = 'question'
      AND q.deleted_at IS NULL
    GROUP BY p.author
    UNION ALL
    SELECT p.author, MAX(pin.pinned_at)
    FROM pin JOIN post p ON p.id = pin.post
    WHERE pin.circle = :cid AND pin.pinned_by IN ({_COACHES}) AND p.author IN (:quiet) AND p.deleted_at IS NULL
    GROUP BY p.author
    UNION ALL
    SELECT o.author, MAX(s.created_at)
    FROM post o JOIN post s ON s.origin = o.id
    WHERE o.author IN (:quiet) AND s.origin IS NOT NULL AND s.author IN ({_COACHES}) AND s.deleted_at IS NULL
    GROUP BY o.author
    UNION ALL
    SELECT t.membership, MAX(t.created_at)
    FROM tag t
    WHERE t.membership IN (:quiet) AND t.tagged_by IN ({_COACHES})
    GROUP BY t.membership
) x GROUP BY m
"""
# A probing question stays open until the member it asks replies after it, anywhere in the same thread. The questions
# come first (a CTE), so that the look for a later reply has its thread and member as keys of one index probe.
# `{select}`: the questions themselves for the page, or their count by member for the API (a thousand rows rather
# than every open question).
_OPEN = f"""
WITH asked AS MATERIALIZED (
    SELECT q.id AS id, p.author AS m, q.thread_root AS t, q.created_at AS at
    FROM post q JOIN post p ON p.id = q.parent
    WHERE q.author IN ({_COACHES}) AND q.kind = 'question' AND q.deleted_at IS NULL AND q.hidden_at IS NULL
      AND p.deleted_at IS NULL AND p.author IN ({_MEMBERS})
)
SELECT {{select}} FROM asked a
WHERE NOT EXISTS (
    SELECT 1 FROM post r
    WHERE r.thread_root = a.t AND r.author = a.m AND r.created_at > a.at AND r.deleted_at IS NULL
)
"""
_OPEN_QUESTIONS = _OPEN.replace("{select}", "a.id AS id, a.m AS m, a.at AS at")
_OPEN_BY_MEMBER = _OPEN.replace("{select}", "a.m AS m, COUNT(*) AS n") + "GROUP BY a.m\n"
# The members' top-level posts of the window, with the first reply by someone else and the coach's first reply: one
# pass over each thread's replies (post.thread_root), not a subquery per figure. A reply is never older than its
# thread, so the replies too are read from the window only.
_THREADS = f"""
SELECT p.id AS id, p.author AS m, p.created_at AS at, r.kind AS rk,
       CASE WHEN p.hidden_at IS NULL THEN 1 ELSE 0 END AS visible,
       MIN(CASE WHEN x.author <> p.author THEN x.created_at END) AS first_other,
       MIN(CASE WHEN x.author IN ({_COACHES}) THEN x.created_at END) AS first_coach
FROM post p JOIN room r ON r.id = p.room
LEFT JOIN post x ON x.thread_root = p.id AND x.deleted_at IS NULL AND x.created_at >= :since
WHERE p.parent IS NULL AND p.deleted_at IS NULL AND p.author IN ({_MEMBERS}) AND p.created_at >= :since
GROUP BY p.id, p.author, p.created_at, r.kind, p.hidden_at
"""

_PARAM = re.compile(r"(?<![:\w]):([a-z]+)\b")
_DAY = re.compile(r"\{day:([a-z]+\.[a-z_]+)\}")


class _Beliefs(msgspec.Struct):
    belief_before: int
    belief_after: int | None = None


_beliefs = msgspec.json.Decoder(_Beliefs)


def _is_pg() -> bool:
    return isinstance(current_engine(), PostgresEngine)


def _sql(template: str, params: dict[str, Any]) -> tuple[str, list[Any]]:
    """A query with `:name` parameters and `{day:col}` (the UTC date of a timestamp, as YYYY-MM-DD) in Piccolo's
    `{}` placeholders, and its arguments in order."""
    pg = _is_pg()
    # SQLite keeps a timestamptz as Python's str() of the UTC time: its first ten characters are the date.
    day = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD')" if pg else "substr({}, 1, 10)"
    sql = _DAY.sub(lambda m: day.format(m.group(1)), template)
    args: list[Any] = []

    def take(match: re.Match[str]) -> str:
        value = params[match.group(1)]
        if isinstance(value, list):
            # A list is one placeholder a value; an empty one matches nothing (no id is the nil UUID).
            values = value or [uuid.UUID(int=0)]
            args.extend(values)
            return ", ".join("{}" for _ in values)
        args.append(value)
        return "{}"

    return _PARAM.sub(take, sql), args


async def _together(*queries: Awaitable[T]) -> list[T]:
    """Independent queries at once, each on a connection of the pool (the database works on one while Python reads
    another's rows); one after the other inside a transaction, which has a single connection."""
    engine = current_engine()
    if engine.current_transaction.get() is not None:
        return [await q for q in queries]
    return list(await asyncio.gather(*queries))


async def _rows(template: str, **params: Any) -> Sequence[Sequence[Any]]:
    """The rows as tuples, in the order of the SELECT: on Postgres outside a transaction, asyncpg's records straight
    from a connection of the pool (no dict a row); otherwise through Piccolo."""
    sql, args = _sql(template, params)
    engine = current_engine()
    if isinstance(engine, PostgresEngine) and engine.pool is not None and engine.current_transaction.get() is None:
        query, values = QueryString(sql, *args).compile_string(engine_type="postgres")
        async with engine.pool.acquire() as connection:
            return cast(Sequence[Sequence[Any]], await connection.fetch(query, *values))
    return [tuple(r.values()) for r in await Post.raw(sql, *args)]


def _at(value: Any) -> datetime | None:
    """A timestamp from a raw row: asyncpg gives datetimes, SQLite gives text for computed columns."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).astimezone(UTC)


def _id(value: Any) -> uuid.UUID:
    parsed = queries.as_uuid(value if isinstance(value, uuid.UUID) else str(value))
    assert parsed is not None
    return parsed


def window_start(days: int, at: datetime) -> datetime:
    """The first moment of the window: midnight UTC, `days - 1` days before today (today is the last day)."""
    return datetime.combine(at.astimezone(UTC).date() - timedelta(days=days - 1), time(), UTC)


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def check_days(days: int | None) -> int:
    if days is None:
        return DEFAULT_DAYS
    if not 1 <= days <= MAX_DAYS:
        raise ClientException(f"days must be a whole number of days from 1 to {MAX_DAYS}; got {days}")
    return days


@dataclass
class Item:
    """Something on the coach's "who needs you" list: a post to open, by whom, since when."""

    post_id: str
    member: PublicMembership
    at: datetime
    room_id: str | None = None


@dataclass
class PulseView:
    """The pulse and what the page shows besides: the posts behind the counts and the chart's active members."""

    pulse: Pulse
    since: datetime
    active_by_day: list[int]
    open_questions: list[Item] = field(default_factory=list)
    unanswered: list[Item] = field(default_factory=list)
    overdue: list[Item] = field(default_factory=list)


DEFAULT_QUIET = 7


def gone_quiet(p: Pulse, threshold: int = DEFAULT_QUIET) -> list[MemberPulse]:
    """Members quiet for at least `threshold` days, or never active: the quietest first (never active before all)."""
    return sorted(
        (m for m in p.members if m.days_quiet is None or m.days_quiet >= threshold),
        key=lambda m: -(m.days_quiet if m.days_quiet is not None else 10**6),
    )


async def require_coach(account_id: uuid.UUID, circle_id: str) -> Member:
    me = await require_member(account_id, parse_id(circle_id, "circle"))
    if me.role != "coach":
        raise PermissionDeniedException("only the circle's coach sees its pulse")
    return me


async def pulse(account_id: uuid.UUID, circle_id: str, days: int | None = None) -> Pulse:
    """GET /circles/{id}/pulse: 404 outside the circle, 403 for its members, 400 for a window out of range. The
    counts only: the posts behind them (`PulseView`'s lists) are not fetched."""
    return (await pulse_view(account_id, circle_id, days, detail=False)).pulse


async def pulse_view(
    account_id: uuid.UUID, circle_id: str, days: int | None = None, *, detail: bool = True
) -> PulseView:
    me = await require_coach(account_id, circle_id)
    return await compute(me.circle, check_days(days), queries.now(), detail=detail)


async def compute(cid: uuid.UUID, days: int, at: datetime, *, detail: bool = True) -> PulseView:
    """The pulse of circle `cid` over `days` days ending at `at` (no rights checked: callers check them). Without
    `detail`, the view's lists (open questions, unanswered and overdue posts as items) stay empty and the open
    questions are counted in SQL; every figure of the pulse is the same either way."""
    since = window_start(days, at)
    week = window_start(ACTIVE_DAYS, at)
    first = min(since, week)
    today = at.astimezone(UTC).date()
    window_days = [(since.date() + timedelta(days=i)).isoformat() for i in range(days)]

    rows = await Membership.select(Membership.id, Membership.alias, Membership.role).where(
        (Membership.circle == cid) & Membership.removed_at.is_null()
    )
    ordered = sorted((r for r in rows if r["role"] == "member"), key=lambda r: r["alias"].casefold())
    members = {r["id"]: membership_struct(r) for r in ordered}
    coaches = [r["id"] for r in rows if r["role"] == "coach"]
    p = {"cid": cid, "since": since, "now": at, "coaches": coaches}
    # A member id as a raw row gives it (a UUID on Postgres, text on SQLite) -> the members' key, in one look-up.
    known: dict[Any, uuid.UUID] = {k: m for m in members for k in (m, str(m))}

    def key(value: Any) -> uuid.UUID:
        return known.get(value) or _id(value)

    activity, experiment_rows, gesture_rows, question_rows, thread_rows = await _together(
        _rows(_ACTIVITY, **p, first=first, week=week),
        _rows(_EXPERIMENTS, **p),
        _rows(_GESTURES, **p, until=_FOREVER),
        _rows(_OPEN_QUESTIONS if detail else _OPEN_BY_MEMBER, **p),
        _rows(_THREADS, **p),
    )
    counts: dict[uuid.UUID, tuple[int, int, int]] = {}
    active_on: dict[str, int] = {}
    posts_by_day: dict[str, int] = {}
    last_active: dict[uuid.UUID, datetime] = {}
    active_7d = 0
    for k, m_, d, last_, n, top, rep, win in activity:
        if k == "m":
            m = key(m_)
            last = _at(last_)
            if last is not None:
                last_active[m] = last
            counts[m] = (int(top), int(rep), int(win))
        elif k == "d":
            active_on[str(d)] = int(n)
            posts_by_day[str(d)] = int(top)
        else:
            active_7d = int(n)
    experiments: dict[uuid.UUID, ExperimentCounts] = defaultdict(ExperimentCounts)
    shifts: dict[uuid.UUID, list[float]] = defaultdict(list)
    overdue: list[Item] = []
    for m_, state, due_, posted, pid, rec in experiment_rows:
        m = key(m_)
        counts_of = experiments[m]
        due = _at(due_)
        if state in ("planned", "tried") and due is not None and due < at:
            counts_of.overdue += 1
            if detail:
                overdue.append(Item(str(pid), members[m], due))
        if (_at(posted) or at) >= since:
            setattr(counts_of, state, getattr(counts_of, state) + 1)
            if state == "debriefed" and rec:
                record = _beliefs.decode(rec)
                if record.belief_after is not None:
                    shifts[m].append(record.belief_before - record.belief_after)

    gestures: dict[uuid.UUID, CoachGestures] = defaultdict(CoachGestures)
    last_gesture: dict[uuid.UUID, datetime] = {}
    for g, m_, n, last_ in gesture_rows:
        m = key(m_)
        setattr(gestures[m], str(g), int(n or 0))
        when = _at(last_)
        if when is not None and (m not in last_gesture or when > last_gesture[m]):
            last_gesture[m] = when
    # Those with nothing in the activity window, and those she did not reach in it: looks further back.
    earlier_active, earlier_gesture = await _together(
        _last_times([m for m in members if m not in last_active]),
        _last_gestures([m for m in members if m not in last_gesture], p),
    )
    last_active.update(earlier_active)
    last_gesture.update(earlier_gesture)

    open_by_member: dict[uuid.UUID, int] = defaultdict(int)
    open_questions: list[Item] = []
    if detail:
        for qid, m_, asked in question_rows:
            m = key(m_)
            open_by_member[m] += 1
            open_questions.append(Item(str(qid), members[m], _at(asked) or at))
    else:
        for m_, n in question_rows:
            open_by_member[key(m_)] = int(n)

    unanswered: list[tuple[datetime, str, Any]] = []
    to_first: list[float] = []
    to_coach: list[float] = []
    for pid, m_, posted_, room_kind, visible, first_other_, first_coach_ in thread_rows:
        posted = _at(posted_) or at
        first_other, first_coach = _at(first_other_), _at(first_coach_)
        if first_other is not None:
            to_first.append((first_other - posted).total_seconds() / 60)
        elif room_kind != "journal" and int(visible):
            unanswered.append((posted, str(pid), m_))
        if first_coach is not None:
            to_coach.append((first_coach - posted).total_seconds() / 60)
    unanswered.sort(key=lambda i: (i[0], i[1]))
    open_questions.sort(key=lambda i: (i.at, i.post_id))
    overdue.sort(key=lambda i: (i.at, i.post_id))

    out = []
    for m, member in members.items():
        last = last_active.get(m)
        posts, replies, wins = counts.get(m, (0, 0, 0))
        out.append(
            MemberPulse(
                member=member,
                last_active_at=last,
                days_quiet=(today - last.date()).days if last is not None else None,
                posts=posts,
                replies=replies,
                wins=wins,
                experiments=experiments.get(m) or ExperimentCounts(),
                belief_shift_median=median(shifts.get(m, [])),
                coach_gestures=gestures.get(m) or CoachGestures(),
                last_coach_gesture_at=last_gesture.get(m),
                open_questions=open_by_member.get(m, 0),
            )
        )
    circle = CirclePulse(
        active_members_7d=active_7d,
        posts_by_day=[DayPosts(date=d, posts=posts_by_day.get(d, 0)) for d in window_days],
        open_questions=sum(open_by_member.values()),
        unanswered=[pid for _, pid, _ in unanswered],
        median_minutes_to_first_reply=median(to_first),
        median_minutes_to_coach=median(to_coach),
    )
    return PulseView(
        pulse=Pulse(days=days, generated_at=at, members=out, circle=circle),
        since=since,
        active_by_day=[active_on.get(d, 0) for d in window_days],
        open_questions=open_questions,
        unanswered=[Item(pid, members[key(m_)], posted) for posted, pid, m_ in unanswered] if detail else [],
        overdue=overdue,
    )


async def _last_gestures(ids: list[uuid.UUID], p: dict[str, Any]) -> dict[uuid.UUID, datetime]:
    """When the coach last reached each of these members (none in the window): first the span just before the window
    from her side (most members she reaches at all, she reached lately), then all time from the side of those left."""
    out: dict[uuid.UUID, datetime] = {}
    if not ids:
        return out
    wanted = set(ids)
    before = {**p, "since": p["since"] - LOOKBACK, "until": p["since"]}
    for _, m_, _, last in await _rows(_GESTURES, **before):
        m, when = _id(m_), _at(last)
        if m in wanted and when is not None and (m not in out or when > out[m]):
            out[m] = when
    for chunk in queries.chunks([m for m in ids if m not in out]):
        for m, at in await _rows(_LAST_GESTURE, **p, quiet=chunk):
            when = _at(at)
            if when is not None:
                out[_id(m)] = when
    return out


async def _last_times(ids: list[uuid.UUID]) -> dict[uuid.UUID, datetime]:
    """When each of these members was last active, over all time."""
    out: dict[uuid.UUID, datetime] = {}
    if not ids:
        return out
    for chunk in queries.chunks(ids):
        sql = _LAST_ACTIVE.replace("{ids}", ", ".join("{}" for _ in chunk))
        for r in await Post.raw(sql, *chunk, *chunk, *chunk):
            when = _at(r["at"])
            if when is not None:
                out[_id(r["m"])] = when
    return out
