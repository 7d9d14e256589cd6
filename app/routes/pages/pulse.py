"""The coach's pulse page: who needs her, her gestures member by member, the lab, and the circle over time."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, get
from litestar.exceptions import ClientException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from app.routes.pages.common import excerpt, page, page_user, who
from app.services import circles, journals, pulse
from db.tables import Post
from web.charts import activity_chart

# How many posts each "who needs you" list shows; the counts say how many more there are.
LIST_SIZE = 20
DEFAULT_QUIET = pulse.DEFAULT_QUIET
WINDOWS = (7, 30, 90, 365)


def _quiet(value: str | None) -> int:
    if value in (None, ""):
        return DEFAULT_QUIET
    try:
        days = int(value)
    except ValueError:
        raise ClientException("quiet must be a whole number of days (1-365)") from None
    if not 1 <= days <= pulse.MAX_DAYS:
        raise ClientException("quiet must be a whole number of days (1-365)")
    return days


@get("/circles/{circle_id:str}/pulse", include_in_schema=False)
async def pulse_page(
    request: Request[Any, Any, Any],
    circle_id: FromPath[str],
    days: FromQuery[int | None] = None,
    quiet: FromQuery[str | None] = None,
) -> Template:
    """For the coach only (members get the API's 403, outsiders its 404)."""
    user = who(request)
    view = await pulse.pulse_view(user.account_id, circle_id, days)
    circle, membership = await circles.get_circle(user.account_id, circle_id)
    threshold = _quiet(quiet)
    p = view.pulse
    shown = [*view.unanswered[:LIST_SIZE], *view.open_questions[:LIST_SIZE], *view.overdue[:LIST_SIZE]]
    texts = {
        str(r["id"]): excerpt(r["html"]) or "(an experiment)"
        for r in await Post.select(Post.id, Post.html).where(
            Post.id.is_in([uuid.UUID(i.post_id) for i in shown] or [uuid.UUID(int=0)])
        )
    }
    gone_quiet = pulse.gone_quiet(p, threshold)
    funnel = {
        k: sum(getattr(m.experiments, k) for m in p.members)
        for k in ("planned", "tried", "debriefed", "abandoned", "overdue")
    }
    dates = [d.date for d in p.circle.posts_by_day]
    posts = [d.posts for d in p.circle.posts_by_day]
    label = (
        f"Posts per day and active members per day, {dates[0]} to {dates[-1]}: {sum(posts)} posts in all, "
        f"at most {max(posts)} in a day; at most {max(view.active_by_day)} members active in a day."
    )
    return page(
        "pulse",
        me=await page_user(request),
        circle=circle,
        membership=membership,
        view=view,
        p=p,
        quiet=threshold,
        windows=WINDOWS,
        gone_quiet=gone_quiet,
        texts=texts,
        list_size=LIST_SIZE,
        funnel=funnel,
        shifts=[m for m in p.members if m.belief_shift_median is not None],
        chart=activity_chart(dates, posts, view.active_by_day, label),
        chart_label=label,
        days_rows=list(zip(dates, posts, view.active_by_day, strict=True)),
    )


@get("/circles/{circle_id:str}/pulse/journal/{membership_id:str}", include_in_schema=False)
async def write_in_journal(
    request: Request[Any, Any, Any], circle_id: FromPath[str], membership_id: FromPath[str]
) -> Redirect:
    """One tap from the pulse to a member's journal (made on first use), to write to them privately."""
    user = who(request)
    await pulse.require_coach(user.account_id, circle_id)
    room = await journals.journal(user.account_id, membership_id)
    return Redirect(f"/rooms/{room.id}", status_code=HTTP_303_SEE_OTHER)


ROUTES: list[Any] = [pulse_page, write_in_journal]
