"""The coach's digest: before each working day (Monday to Friday, at the coach's hour in her time zone, 07:00 by
default), who needs her in each of her circles, from the pulse's own definitions (app/services/pulse.py): members gone
quiet, her questions still open, experiments past due without a debrief, posts waiting for a first reply.

Claimed per account and local date (`mail_period`), written in that transaction; nothing when every list is empty.
Unlike the member's digest it is a to-do list, so it goes out whether or not she has visited.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app import mail
from app.live import Live
from app.routes.pages.common import excerpt
from app.services import pulse
from app.services.digests import Line, candidates, local_slot, write_claimed
from app.settings import Settings
from db.tables import Membership, Post

# The window the pulse looks at for "unanswered" (posts of the window) and the quiet threshold, in days.
WINDOW = 7
LIST_SIZE = 10
WORKING_DAYS = range(5)  # Monday to Friday


@dataclass
class CircleNeeds:
    name: str
    link: str
    quiet: list[Line] = field(default_factory=list)
    questions: list[Line] = field(default_factory=list)
    overdue: list[Line] = field(default_factory=list)
    unanswered: list[Line] = field(default_factory=list)
    more: int = 0

    def empty(self) -> bool:
        return not (self.quiet or self.questions or self.overdue or self.unanswered)


async def needs(circle_id: uuid.UUID, name: str, at: datetime, base: str) -> CircleNeeds:
    view = await pulse.compute(circle_id, WINDOW, at)
    out = CircleNeeds(name=name, link=f"{base}/circles/{circle_id}/pulse")
    for m in pulse.gone_quiet(view.pulse, WINDOW)[:LIST_SIZE]:
        text = f"quiet for {m.days_quiet} days" if m.days_quiet is not None else "has not posted yet"
        out.quiet.append(Line(text=text, link=f"{base}/circles/{circle_id}/pulse", circle=name, who=m.member.alias))
    items = [*view.open_questions[:LIST_SIZE], *view.overdue[:LIST_SIZE], *view.unanswered[:LIST_SIZE]]
    texts = {
        str(r["id"]): ("(a post with a content note)" if r["content_note"] else excerpt(r["html"]) or "(an experiment)")
        for r in await Post.select(Post.id, Post.html, Post.content_note).where(
            Post.id.is_in([uuid.UUID(i.post_id) for i in items] or [uuid.UUID(int=0)])
        )
    }

    def lines(found: list[pulse.Item], text: str, suffix: str = "") -> list[Line]:
        return [
            Line(
                text=text,
                link=f"{base}/posts/{i.post_id}{suffix}",
                circle=name,
                who=i.member.alias,
                excerpt=texts.get(i.post_id, ""),
            )
            for i in found[:LIST_SIZE]
        ]

    out.questions = lines(view.open_questions, "has not answered your question yet")
    out.overdue = lines(view.overdue, "has an experiment past due")
    out.unanswered = lines(view.unanswered, "is waiting for a first reply")
    out.more = sum(max(len(x) - LIST_SIZE, 0) for x in (view.open_questions, view.overdue, view.unanswered))
    return out


async def send_coach_digests(live: Live, settings: Settings, at: datetime) -> int:
    written = 0
    for account, setting in await candidates(lambda s: bool(s.get("coach_digest", True))):
        local, _ = local_slot(at, account["timezone"])
        if local.weekday() not in WORKING_DAYS or local.hour != int(setting.get("coach_digest_hour", 7)):
            continue
        coached = await Membership.select(
            Membership.circle, Membership.circle.name.as_alias("name"), Membership.circle.closed_at.as_alias("closed")
        ).where((Membership.account == account["id"]) & (Membership.role == "coach") & Membership.removed_at.is_null())
        found = [await needs(c["circle"], c["name"], at, settings.link_base) for c in coached if c["closed"] is None]
        found = [c for c in found if not c.empty()]
        if not found:
            continue
        written += await write_claimed(
            live, settings, account, "coach_digest", local.date().isoformat(), at, _render, found
        )
    return written


def _render(found: Any, footer: dict[str, str]) -> mail.Rendered:
    return mail.render("coach_digest", "Who needs you today", circles=found, **footer)
