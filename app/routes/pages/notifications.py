"""The notifications page and its settings, and the service worker that shows browser notifications."""

from __future__ import annotations

import uuid
from datetime import UTC
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import File, Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from app.deps import LiveDep
from app.routes.pages.common import excerpt, fragment, page, page_user, who
from app.schemas import Preferences
from app.schemas.notifications import WEEKDAYS
from app.services import accounts, notifications, preferences
from db.tables import Dropin as DropinRow
from db.tables import Post as PostRow
from web.templating import STATIC

CHANNEL_LABELS = {"in_app": "in Kindred", "browser": "browser notification", "push": "push", "email": "email"}
# Offered in the time zone field; any IANA name is accepted.
COMMON_ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/Madrid",
    "Europe/Amsterdam",
    "Europe/Stockholm",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Africa/Johannesburg",
)


class NoteContext(msgspec.Struct):
    """What a notification's entry shows besides its sentence: a few words of the post, and whether the drop-in it
    announced is over (then its "join now" is retired)."""

    excerpts: dict[str, str]
    dropins: dict[str, tuple[str, str]]  # room id -> (title, state) of the drop-ins the notifications are about


async def note_context(notes: list[Any], circle_ids: set[str]) -> NoteContext:
    # Only posts still there for everyone (not deleted, not hidden), in circles the reader is still in.
    ids = {uuid.UUID(n.post_id) for n in notes if n.post_id and n.circle_id in circle_ids}
    excerpts: dict[str, str] = {}
    if ids:
        rows = await PostRow.select(PostRow.id, PostRow.html).where(
            PostRow.id.is_in(list(ids)) & PostRow.deleted_at.is_null() & PostRow.hidden_at.is_null()
        )
        excerpts = {str(r["id"]): excerpt(r["html"]) for r in rows}
    rooms = {uuid.UUID(n.room_id) for n in notes if n.kind.startswith("dropin.") and n.room_id}
    found: dict[str, tuple[str, str]] = {}
    if rooms:
        rows = await DropinRow.select(DropinRow.room, DropinRow.title, DropinRow.state).where(
            DropinRow.room.is_in(list(rooms))
        )
        found = {str(r["room"]): (r["title"], r["state"]) for r in rows}
    return NoteContext(excerpts=excerpts, dropins=found)


@get("/notifications", include_in_schema=False)
async def notifications_page(request: Request[Any, Any, Any], before: FromQuery[str | None] = None) -> Template:
    user = who(request)
    items = await notifications.feed(user.account_id, limit=50, before=before)
    prefs = await preferences.get(user.account_id)
    zone = notifications.time_zone(prefs.timezone) or UTC
    days: list[tuple[str, list[Any]]] = []
    for note in items:
        day = note.created_at.astimezone(zone).strftime("%A, %d %B %Y")
        if not days or days[-1][0] != day:
            days.append((day, []))
        days[-1][1].append(note)
    circle_names = {str(c["circle_id"]): c["circle_name"] for c in await accounts.my_circles(user.account_id)}
    return page(
        "notifications",
        me=await page_user(request),
        days=days,
        circle_names=circle_names,
        context=await note_context(items, set(circle_names)),
        unread=await notifications.unread_count(user.account_id),
        next_before=items[-1].id if len(items) == 50 else None,
    )


@post("/notifications/read-all", include_in_schema=False)
async def read_all(request: Request[Any, Any, Any], live: LiveDep) -> Response[Any]:
    user = who(request)
    await notifications.mark_read(user.account_id, None, True, live)
    return Redirect("/notifications", status_code=HTTP_303_SEE_OTHER)


@post("/notifications/{notification_id:str}/read", include_in_schema=False)
async def read_one(request: Request[Any, Any, Any], notification_id: FromPath[str], live: LiveDep) -> Template:
    """One notification marked read in place (htmx): the answer is its entry, now read."""
    user = who(request)
    await notifications.mark_read(user.account_id, [notification_id], False, live)
    note = await notifications.one(user.account_id, notification_id)
    if note is None:
        raise NotFoundException("that notification is not yours, or no longer exists")
    circle_names = {str(c["circle_id"]): c["circle_name"] for c in await accounts.my_circles(user.account_id)}
    context = await note_context([note], set(circle_names))
    return fragment("notification", note=note, circle_names=circle_names, context=context)


@get("/notifications/{notification_id:str}/open", include_in_schema=False)
async def open_notification(
    request: Request[Any, Any, Any], notification_id: FromPath[str], live: LiveDep
) -> Response[Any]:
    user = who(request)
    target = await notifications.open_target(user.account_id, notification_id, live)
    return Redirect(target, status_code=HTTP_303_SEE_OTHER)


async def _settings_page(request: Request[Any, Any, Any], status: int = 200, **context: Any) -> Template:
    user = who(request)
    context.setdefault("message", None)
    context.setdefault("error", None)
    circles = await accounts.my_circles(user.account_id)
    return page(
        "notification_settings",
        status,
        me=await page_user(request),
        prefs=await preferences.get(user.account_id),
        kind_labels=notifications.KIND_LABELS,
        channel_labels=CHANNEL_LABELS,
        zones=COMMON_ZONES,
        circles=circles,
        coaches=any(c["role"] == "coach" for c in circles),
        weekdays=WEEKDAYS,
        **context,
    )


@get("/settings/notifications", include_in_schema=False)
async def notification_settings(request: Request[Any, Any, Any]) -> Template:
    return await _settings_page(request)


@post("/settings/notifications", include_in_schema=False)
async def save_notification_settings(request: Request[Any, Any, Any]) -> Template:
    user = who(request)
    form = await request.form()
    # Plain values into msgspec.convert, so every rule of the API's Preferences (HH:MM quiet hours...) holds here too.
    quiet = None
    if form.get("quiet") == "on":
        quiet = {"start": str(form.get("quiet_start") or ""), "end": str(form.get("quiet_end") or "")}
    raw = {
        "timezone": str(form.get("timezone") or "UTC").strip(),
        "quiet_hours": quiet,
        "kinds": {
            kind: {channel: form.get(f"{kind}.{channel}") == "on" for channel in CHANNEL_LABELS}
            for kind in notifications.KINDS
        },
        "muted_circles": [str(m) for m in form.getall("mute", [])],
        "circles": {
            str(c["circle_id"]): {
                kind: {channel: form.get(f"c.{c['circle_id']}.{kind}.{channel}") == "on" for channel in CHANNEL_LABELS}
                for kind in notifications.KINDS
                if form.get(f"c.{c['circle_id']}.{kind}") == "own"
            }
            for c in await accounts.my_circles(user.account_id)
        },
        "mail": {
            "digest": str(form.get("digest") or "daily"),
            "digest_weekday": str(form.get("digest_weekday") or "monday"),
            "digest_hour": _hour(form.get("digest_hour"), 17),
            "coach_digest": form.get("coach_digest") == "on",
            "coach_digest_hour": _hour(form.get("coach_digest_hour"), 7),
        },
    }
    try:
        prefs = msgspec.convert(raw, Preferences)
        await preferences.put(user.account_id, prefs)
    except msgspec.ValidationError as exc:
        return await _settings_page(request, 400, error=_form_problem(exc))
    except HTTPException as exc:
        return await _settings_page(request, exc.status_code, error=exc.detail)
    return await _settings_page(request, message="Saved.")


def _hour(value: Any, default: int) -> int:
    """An hour from the form's select; anything else is left for the schema to refuse (-1)."""
    text = str(value or default).strip()
    return int(text) if text.isdigit() else -1


def _form_problem(exc: msgspec.ValidationError) -> str:
    """What to fix, in the form's words rather than msgspec's."""
    where = str(exc)
    if "quiet_hours" in where:
        return "Quiet hours: give the start and the end as HH:MM, from 00:00 to 23:59 (for example 22:00 and 07:00)."
    if "mail" in where:
        return "Digests: choose off, daily or weekly, a day of the week, and an hour from 0 to 23."
    if "timezone" in where:
        return "Time zone: use an IANA name of a place, like Europe/Berlin (at most 64 characters)."
    return f"Please check the form: {where}"


@get("/sw.js", include_in_schema=False)
async def service_worker() -> File:
    # Served from the root so its scope can be the whole site; never cached, so an update reaches browsers.
    return File(
        STATIC / "sw.js",
        media_type="text/javascript",
        content_disposition_type="inline",
        headers={"Service-Worker-Allowed": "/", "Cache-Control": "no-cache"},
    )


ROUTES: list[Any] = [
    notifications_page,
    read_all,
    read_one,
    open_notification,
    notification_settings,
    save_notification_settings,
    service_worker,
]
