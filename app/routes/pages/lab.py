"""The lab in the pages: the guided composer for an experiment, its debrief, the circle's lab, a member's own lab,
the small wins wall, and the journals (the member's own, and the coach's list with what is new).

Every form here is a plain HTML form (it works without script) that posts to these routes; the same services as the
JSON API check everything, and a refusal re-renders the form with what was typed and a sentence saying what to fix.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from litestar import Request, Response, get, post
from litestar.exceptions import ClientException, HTTPException, NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from app.deps import LiveDep
from app.routes.pages.common import Form, form_body, page, page_user, who
from app.schemas import PostCreate
from app.schemas.lab import ExperimentMoveBody, ExperimentPlan
from app.services import circles, journals, lab, posts
from db.rows import RoomRow

# "When should we check back?": the composer's choices, in days from now (or a date the member picks).
CHECK_BACK = {"3": 3, "7": 7, "14": 14}
# A date the member picks is checked back on at this hour of their own day.
CHECK_BACK_HOUR = time(18, 0)
MAX_OFFSET_MINUTES = 14 * 60
MATCHED = ("yes", "partly", "no")


async def _places(request: Request[Any, Any, Any], room: RoomRow) -> dict[str, Any]:
    """Where a new post can go from this room: the room itself, and (for a member) "just my coach", their journal."""
    user = who(request)
    circle, membership = await circles.get_circle(user.account_id, str(room.circle))
    journal = None
    if membership.role != "coach":
        journal, _ = await journals.my_journal(user.account_id, str(circle.id))
    return {"circle": circle, "membership": membership, "journal": journal}


def _due_at(form: dict[str, str], now: datetime) -> datetime:
    """The composer's "check back" choice as a time: in 3, 7 or 14 days, or at 18:00 of a chosen day in the member's
    own time zone (the browser's offset, `tz_offset`, minutes behind UTC as `getTimezoneOffset()` gives it)."""
    choice = form.get("check_back", "7")
    if choice in CHECK_BACK:
        return now + timedelta(days=CHECK_BACK[choice])
    if choice != "date":
        raise ClientException("choose when to check back: in 3 days, in a week, in two weeks, or on a date")
    try:
        day = date.fromisoformat(form.get("check_back_date", ""))
    except ValueError:
        raise ClientException("pick the day to check back on (a date like 2026-12-20)") from None
    try:
        offset = int(form.get("tz_offset") or "0")
    except ValueError:
        raise ClientException("tz_offset must be a whole number of minutes") from None
    if abs(offset) > MAX_OFFSET_MINUTES:
        raise ClientException("tz_offset must be within 14 hours of UTC")
    try:
        return datetime.combine(day, CHECK_BACK_HOUR, tzinfo=UTC) + timedelta(minutes=offset)
    except OverflowError:
        raise ClientException("pick a day in the coming weeks to check back on") from None


def _plan(form: dict[str, str], now: datetime) -> ExperimentPlan:
    precautions = [line.strip() for line in form.get("safety_behaviours", "").splitlines() if line.strip()]
    fields: dict[str, Any] = {
        "assumption": form.get("assumption", ""),
        "belief_before": form.get("belief_before", "").strip(),
        "action": form.get("action", ""),
        "prediction": form.get("prediction", ""),
        "prediction_confidence": form.get("prediction_confidence", "").strip() or None,
        "safety_behaviours": precautions,
        "due_at": _due_at(form, now),
    }
    if len(precautions) > 10:
        raise ClientException("name at most 10 precautions, one a line; pick the ones that matter most")
    return form_body(ExperimentPlan, fields)


@get("/rooms/{room_id:str}/experiments/new", include_in_schema=False)
async def new_experiment(request: Request[Any, Any, Any], room_id: FromPath[str]) -> Template:
    user = who(request)
    _, room, _ = await posts.room_and_membership(user.account_id, room_id)
    where = request.query_params.get("where")
    # A client_id per form: a double submit (or a retry after a lost answer) makes one experiment, not two.
    form = {"where": "journal" if where == "journal" else room_id, "client_id": uuid.uuid4().hex}
    return await _composer(request, room, form, None)


async def _composer(
    request: Request[Any, Any, Any], room: RoomRow, form: dict[str, str], error: str | None, status: int = 200
) -> Template:
    places = await _places(request, room)
    return page("experiment_new", status, me=await page_user(request), room=room, form=form, error=error, **places)


@post("/rooms/{room_id:str}/experiments", include_in_schema=False, opt={"rate": "post"})
async def create_experiment(
    request: Request[Any, Any, Any], room_id: FromPath[str], data: Form, live: LiveDep
) -> Response[Any]:
    """The guided composer's form: the plan, where it goes (this room, or just the coach), then on to its thread."""
    user = who(request)
    _, room, _ = await posts.room_and_membership(user.account_id, room_id)
    form = {k: v for k, v in data.items() if k != "_csrf_token"}
    form.setdefault("client_id", uuid.uuid4().hex)
    try:
        plan = _plan(form, datetime.now(UTC))
        target = room_id
        if form.get("where") == "journal":
            places = await _places(request, room)
            if places["journal"] is None:
                raise ClientException("a coach writes in a member's journal from that journal, not from here")
            target = places["journal"].id
        elif form.get("where", room_id) != room_id:
            raise ClientException("where must be this room or your journal")
        created = await posts.create_post(
            user.account_id,
            target,
            PostCreate(body=form.get("body", ""), kind="experiment", experiment=plan, client_id=form.get("client_id")),
            live,
        )
    except HTTPException as exc:
        if exc.status_code >= 500:
            raise
        return await _composer(request, room, form, str(exc.detail), exc.status_code)
    return Redirect(f"/posts/{created.id}", status_code=HTTP_303_SEE_OTHER)


async def _own_experiment(request: Request[Any, Any, Any], post_id: str) -> tuple[Any, RoomRow]:
    user = who(request)
    row, room, me = await posts.post_and_access(user.account_id, post_id)
    thread = await posts.get_thread(user.account_id, post_id)
    if thread.experiment is None:
        raise NotFoundException("this post has no experiment to debrief")
    if row.author != me.id:
        raise PermissionDeniedException("only the member who planned this experiment can debrief it")
    return thread, room


@get("/posts/{post_id:str}/debrief", include_in_schema=False)
async def debrief_form(request: Request[Any, Any, Any], post_id: FromPath[str]) -> Template:
    """ "How did it go?": from the card and from the experiment.due notification."""
    thread, room = await _own_experiment(request, post_id)
    return await _debrief(request, thread, room, {}, None)


async def _debrief(
    request: Request[Any, Any, Any],
    thread: Any,
    room: RoomRow,
    form: dict[str, str],
    error: str | None,
    status: int = 200,
) -> Template:
    user = who(request)
    circle, membership = await circles.get_circle(user.account_id, str(room.circle))
    return page(
        "debrief",
        status,
        me=await page_user(request),
        circle=circle,
        membership=membership,
        room=room,
        post=thread,
        e=thread.experiment,
        form=form,
        error=error,
    )


@post("/posts/{post_id:str}/debrief", include_in_schema=False, opt={"rate": "edit"})
async def save_debrief(
    request: Request[Any, Any, Any], post_id: FromPath[str], data: Form, live: LiveDep
) -> Response[Any]:
    """The debrief form's three ways on: the whole debrief, "I tried it, more later", or setting it aside."""
    thread, room = await _own_experiment(request, post_id)
    user = who(request)
    form = {k: v for k, v in data.items() if k != "_csrf_token"}
    state = form.get("state", "debriefed")
    try:
        if state == "debriefed":
            matched = form.get("matched_prediction") or None
            if matched is not None and matched not in MATCHED:
                raise ClientException('matched_prediction must be "yes", "partly" or "no"')
            fields: dict[str, Any] = {
                "state": "debriefed",
                "outcome": form.get("outcome", ""),
                "matched_prediction": matched,
                "belief_after": form.get("belief_after", "").strip() or None,
                "learning": form.get("learning", ""),
            }
        elif state == "tried":
            fields = {"state": "tried", "outcome": form.get("outcome", "") or None}
        elif state == "abandoned":
            fields = {"state": "abandoned", "learning": form.get("learning", "") or None}
        else:
            raise ClientException("state must be debriefed, tried or abandoned")
        await lab.move(user.account_id, post_id, form_body(ExperimentMoveBody, fields), live)
    except HTTPException as exc:
        if exc.status_code >= 500:
            raise
        return await _debrief(request, thread, room, form, str(exc.detail), exc.status_code)
    return Redirect(f"/posts/{post_id}", status_code=HTTP_303_SEE_OTHER)


@get("/circles/{circle_id:str}/lab", include_in_schema=False)
async def circle_lab(request: Request[Any, Any, Any], circle_id: FromPath[str]) -> Template:
    user = who(request)
    circle, membership = await circles.get_circle(user.account_id, circle_id)
    return page(
        "lab",
        me=await page_user(request),
        circle=circle,
        membership=membership,
        lab=await lab.circle_lab(user.account_id, circle_id),
        first_room=await _first_room(user.account_id, circle_id),
    )


async def _first_room(account_id: uuid.UUID, circle_id: str) -> str | None:
    rooms = [r for r in await circles.rooms(account_id, circle_id) if not r.dropin_id]
    return rooms[0].id if rooms else None


@get("/circles/{circle_id:str}/lab/mine", include_in_schema=False)
async def my_lab(request: Request[Any, Any, Any], circle_id: FromPath[str]) -> Template:
    return await _member_lab(request, circle_id, None)


@get("/circles/{circle_id:str}/lab/members/{membership_id:str}", include_in_schema=False)
async def member_lab(
    request: Request[Any, Any, Any], circle_id: FromPath[str], membership_id: FromPath[str]
) -> Template:
    return await _member_lab(request, circle_id, membership_id)


async def _member_lab(request: Request[Any, Any, Any], circle_id: str, membership_id: str | None) -> Template:
    user = who(request)
    circle, membership = await circles.get_circle(user.account_id, circle_id)
    return page(
        "my_lab",
        me=await page_user(request),
        circle=circle,
        membership=membership,
        lab=await lab.member_lab(user.account_id, circle_id, membership_id),
        first_room=await _first_room(user.account_id, circle_id),
    )


@get("/circles/{circle_id:str}/wins", include_in_schema=False)
async def wins_wall(
    request: Request[Any, Any, Any], circle_id: FromPath[str], before: FromQuery[str | None] = None
) -> Template:
    user = who(request)
    circle, membership = await circles.get_circle(user.account_id, circle_id)
    items, next_before = await lab.wins(user.account_id, circle_id, before)
    return page(
        "wins",
        me=await page_user(request),
        circle=circle,
        membership=membership,
        wins=items,
        next_before=next_before,
        first_room=await _first_room(user.account_id, circle_id),
    )


@get("/circles/{circle_id:str}/journal", include_in_schema=False)
async def my_journal(request: Request[Any, Any, Any], circle_id: FromPath[str]) -> Response[Any]:
    """ "My journal": the member's private room with their coach (made on first use)."""
    user = who(request)
    room, _ = await journals.my_journal(user.account_id, circle_id)
    return Redirect(f"/rooms/{room.id}", status_code=HTTP_303_SEE_OTHER)


@get("/circles/{circle_id:str}/journals", include_in_schema=False)
async def coach_journals(request: Request[Any, Any, Any], circle_id: FromPath[str]) -> Template:
    """The coach's list of members' journals, what is new first."""
    user = who(request)
    circle, membership = await circles.get_circle(user.account_id, circle_id)
    return page(
        "journals",
        me=await page_user(request),
        circle=circle,
        membership=membership,
        lines=await journals.overview(user.account_id, circle_id),
    )


ROUTES: list[Any] = [
    new_experiment,
    create_experiment,
    debrief_form,
    save_debrief,
    circle_lab,
    my_lab,
    member_lab,
    wins_wall,
    my_journal,
    coach_journals,
]
