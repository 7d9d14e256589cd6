"""The drop-in pages: scheduling from the circle page, the calendar file, and the controls in a drop-in's room.

The buttons answer 204: what they change reaches every page in the room (this one included) as a `dropin.state`
event or a presence frame, so there is one path by which a page learns of a change, whoever made it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Request, Response, delete, get, post, put
from litestar.exceptions import ClientException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from app.deps import LiveDep, SettingsDep, base_url
from app.routes.pages.common import Form, form_body, fragment, who
from app.schemas import DropinCreate, LiveNow
from app.services import circles, dropins, posts
from db.tables import Dropin as DropinRow

# getTimezoneOffset() is within ±14 hours; anything else is not a browser's answer.
MAX_OFFSET_MINUTES = 14 * 60


def _no_content() -> Response[None]:
    return Response(None, status_code=204)


def parse_local_start(value: str, tz_offset: str) -> datetime:
    """A `datetime-local` field's value and the browser's `getTimezoneOffset()` (minutes behind UTC) -> UTC."""
    try:
        local = datetime.fromisoformat(value)
    except ValueError:
        raise ClientException("give the start as a date and time, e.g. 2026-12-03T18:30") from None
    try:
        offset = int(tz_offset or "0")
    except ValueError:
        raise ClientException("tz_offset must be a whole number of minutes") from None
    if abs(offset) > MAX_OFFSET_MINUTES:
        raise ClientException("tz_offset must be within 14 hours of UTC")
    try:
        if local.tzinfo is not None:
            return local.astimezone(UTC)
        return (local + timedelta(minutes=offset)).replace(tzinfo=UTC)
    except OverflowError:
        raise ClientException("that start is out of range; pick a date in the coming months") from None


# The service's words are for the API; the scheduling form says the same in the coach's terms.
PLAIN_WORDS = {
    "starts_at is in the past": "Pick a time in the future: that start has already passed.",
    "schedule drop-ins at most a year ahead": "Pick a start within the next year.",
    "give the drop-in a title of at most 120 characters": "Give the drop-in a title of at most 120 characters.",
    "give the start as a date and time, e.g. 2026-12-03T18:30": "Pick a date and a time for the start.",
}


def plain(message: str) -> str:
    """A form's error in plain words: a known message rephrased, any other one as a sentence."""
    if message in PLAIN_WORDS:
        return PLAIN_WORDS[message]
    if message.startswith("check the form"):
        return "Please check the form: every field needs a value that fits."
    sentence = message[:1].upper() + message[1:]
    return sentence if sentence.endswith((".", "!", "?")) else sentence + "."


@post("/circles/{circle_id:str}/dropins", include_in_schema=False, opt={"rate": "room"})
async def schedule(request: Request[Any, Any, Any], circle_id: FromPath[str], data: Form) -> Response[Any]:
    user = who(request)
    try:
        body = form_body(
            DropinCreate,
            {
                "title": data.get("title", ""),
                "starts_at": parse_local_start(data.get("starts_at", ""), data.get("tz_offset", "0")),
                "duration_minutes": data.get("duration_minutes", "30").strip(),
                "agenda": data.get("agenda", ""),
            },
        )
        created = await dropins.schedule(user.account_id, circle_id, body)
    except ClientException as exc:
        if exc.status_code != 400:
            raise
        raise ClientException(plain(str(exc.detail))) from None
    target = f"/circles/{created.circle_id}"
    if request.headers.get("hx-request"):
        return Response(None, status_code=204, headers={"HX-Redirect": target})
    return Redirect(target, status_code=HTTP_303_SEE_OTHER)


@get("/dropins/{dropin_id:str}/calendar.ics", include_in_schema=False)
async def calendar(request: Request[Any, Any, Any], dropin_id: FromPath[str], settings: SettingsDep) -> Response[str]:
    user = who(request)
    room_url = base_url(request, settings) + "/rooms/{room_id}"
    text, filename = await dropins.calendar(user.account_id, dropin_id, room_url)
    return Response(
        text,
        media_type="text/calendar",  # Litestar adds "; charset=utf-8" itself
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@get("/dropins/{dropin_id:str}/panel", include_in_schema=False)
async def panel(request: Request[Any, Any, Any], dropin_id: FromPath[str], live: LiveDep) -> Template:
    """The drop-in's panel for this reader (coach controls or hand buttons): reloaded when its state changes."""
    user = who(request)
    detail = await dropins.detail(user.account_id, dropin_id, live)
    _, membership = await circles.get_circle(user.account_id, detail.circle_id)
    return fragment("dropin_panel", dropin=detail, membership=membership)


@get("/rooms/{room_id:str}/live-banner", include_in_schema=False)
async def live_banner(request: Request[Any, Any, Any], room_id: FromPath[str]) -> Response[Any]:
    """The banner for a drop-in that went live while a page was open (it names the drop-in); 204 if it is not live."""
    rid, _, _ = await posts.room_and_membership(who(request).account_id, room_id)
    row = (
        await DropinRow.select(DropinRow.id, DropinRow.title)
        .where((DropinRow.room == rid) & (DropinRow.state == "live"))
        .first()
    )
    if row is None:
        return _no_content()
    return fragment("live_banner", d=LiveNow(id=str(row["id"]), room_id=str(rid), title=row["title"]))


@post("/dropins/{dropin_id:str}/start", include_in_schema=False, status_code=204)
async def start(request: Request[Any, Any, Any], dropin_id: FromPath[str], live: LiveDep) -> Response[None]:
    await dropins.start(who(request).account_id, dropin_id, live)
    return _no_content()


@post("/dropins/{dropin_id:str}/end", include_in_schema=False, status_code=204)
async def end(request: Request[Any, Any, Any], dropin_id: FromPath[str], live: LiveDep) -> Response[None]:
    await dropins.end(who(request).account_id, dropin_id, live)
    return _no_content()


@post("/dropins/{dropin_id:str}/next", include_in_schema=False, status_code=204)
async def call_next(request: Request[Any, Any, Any], dropin_id: FromPath[str], live: LiveDep) -> Response[None]:
    await dropins.call_next(who(request).account_id, dropin_id, live)
    return _no_content()


@put("/dropins/{dropin_id:str}/hand", include_in_schema=False, status_code=204, opt={"rate": "gesture"})
async def raise_hand(request: Request[Any, Any, Any], dropin_id: FromPath[str], live: LiveDep) -> Response[None]:
    await dropins.raise_hand(who(request).account_id, dropin_id, live)
    return _no_content()


@delete("/dropins/{dropin_id:str}/hand", include_in_schema=False, status_code=204, opt={"rate": "gesture"})
async def lower_hand(request: Request[Any, Any, Any], dropin_id: FromPath[str], live: LiveDep) -> Response[None]:
    await dropins.lower_hand(who(request).account_id, dropin_id, live)
    return _no_content()


@put("/posts/{post_id:str}/spotlight", include_in_schema=False, status_code=204)
async def spotlight_post(request: Request[Any, Any, Any], post_id: FromPath[str], live: LiveDep) -> Response[None]:
    user = who(request)
    dropin_id = await dropins.for_post(user.account_id, post_id)
    await dropins.spotlight(user.account_id, dropin_id, post_id, live)
    return _no_content()


@delete("/dropins/{dropin_id:str}/spotlight", include_in_schema=False, status_code=204)
async def clear_spotlight(request: Request[Any, Any, Any], dropin_id: FromPath[str], live: LiveDep) -> Response[None]:
    await dropins.spotlight(who(request).account_id, dropin_id, None, live)
    return _no_content()


ROUTES: list[Any] = [
    schedule,
    calendar,
    panel,
    live_banner,
    start,
    end,
    call_next,
    raise_hand,
    lower_hand,
    spotlight_post,
    clear_spotlight,
]
