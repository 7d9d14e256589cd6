"""The coach's pulse (contract, second part): per member, what they did and what the coach gave them; for the circle,
how it is doing. Memberships only: identity never travels in these structs."""

from __future__ import annotations

from datetime import datetime

import msgspec

from realtime.events import Membership


class ExperimentCounts(msgspec.Struct, kw_only=True):
    """The member's experiments posted in the window, by their state now; `overdue` counts every open one (planned
    or tried) whose due time has passed, whenever it was posted."""

    planned: int = 0
    tried: int = 0
    debriefed: int = 0
    abandoned: int = 0
    overdue: int = 0


class CoachGestures(msgspec.Struct, kw_only=True):
    """What the circle's coach did to the member's posts in the window."""

    likes: int = 0
    questions: int = 0
    pins: int = 0
    shares: int = 0
    tags: int = 0


class MemberPulse(msgspec.Struct, kw_only=True):
    member: Membership
    last_active_at: datetime | None
    days_quiet: int | None
    posts: int
    replies: int
    wins: int
    experiments: ExperimentCounts
    belief_shift_median: float | None
    coach_gestures: CoachGestures
    last_coach_gesture_at: datetime | None
    open_questions: int


class DayPosts(msgspec.Struct, kw_only=True):
    date: str
    posts: int


class CirclePulse(msgspec.Struct, kw_only=True):
    active_members_7d: int
    posts_by_day: list[DayPosts]
    open_questions: int
    unanswered: list[str]
    median_minutes_to_first_reply: float | None
    median_minutes_to_coach: float | None


class Pulse(msgspec.Struct, kw_only=True):
    """GET /circles/{id}/pulse: the coach's view of the last `days` days."""

    days: int
    generated_at: datetime
    members: list[MemberPulse]
    circle: CirclePulse
