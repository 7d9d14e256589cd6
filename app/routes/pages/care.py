"""Care on the pages (docs/care.md): the care check as a member is about to post, the care resources page, the
circle's "About this circle" page (the newcomer onboarding, again), and the themes a member collapses.

The composer's post goes through `checked_post`: when the text raises a concern and the member has not chosen yet,
the answer is the care interstitial (a fragment in the composer with htmx, a page of its own without JavaScript)
holding the draft, with three choices: post anyway, move it to my journal, let my coach know. Nothing of the check
is stored or logged; telling the coach is only ever the member's explicit choice.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.exceptions import ClientException
from litestar.params import FromPath
from litestar.response import Template

from app.deps import LiveDep
from app.routes.pages.common import Form, page, page_user, who
from app.schemas import CircleUpdate, CollapsedThemes
from app.services import care, care_actions, circles, posts

CHOICES = ("post", "journal", "coach")
CARE_MAX = 4000
DRAFT_FIELDS = ("body", "kind", "content_note", "reply_wish", "client_id")


def draft_of(data: dict[str, str]) -> dict[str, str]:
    return {k: data.get(k, "") for k in DRAFT_FIELDS}


async def interstitial(
    request: Request[Any, Any, Any], room_id: str, circle_id: str, data: dict[str, str], *, told: bool = False
) -> Template:
    """The care interstitial for this draft: a fragment for htmx (into the composer's status), else a page."""
    context: dict[str, Any] = {
        "room_id": room_id,
        "circle_id": circle_id,
        "draft": draft_of(data),
        "told": told,
        "resources_html": care.resources_html(await care_actions.circle_resources_by_id(circle_id)),
    }
    if request.headers.get("hx-request"):
        return Template(
            "fragments/care_check.html",
            context=context,
            headers={"HX-Retarget": "#composer-status", "HX-Reswap": "innerHTML"},
        )
    return page("care_check", me=await page_user(request), **context)


async def checked_post(
    request: Request[Any, Any, Any], room_id: str, data: dict[str, str], live: LiveDep
) -> tuple[Template | None, str]:
    """Before a top-level post goes out from the composer: (the interstitial to answer with, or None to go on; where
    the post goes: "room" or "journal"). `care` in the form is the member's choice once they have seen it."""
    where = data.get("where", "room")
    choice = data.get("care", "")
    if data.get("parent_id") or choice not in ("", *CHOICES):
        return None, where
    if choice == "journal":
        return None, "journal"
    if choice == "post" or (choice == "" and (where == "journal" or not care.concern(data.get("body", "")))):
        return None, where
    user = who(request)
    _, room, _ = await posts.room_and_membership(user.account_id, room_id)
    if choice == "coach":
        await care_actions.tell_coach(user.account_id, str(room.circle), live)
    return await interstitial(request, room_id, str(room.circle), data, told=choice == "coach"), where


@get("/circles/{circle_id:str}/care", include_in_schema=False)
async def care_page(request: Request[Any, Any, Any], circle_id: FromPath[str]) -> Template:
    """Where to turn in a crisis: the circle's care resources, from every room."""
    return await _care(request, circle_id)


async def _care(request: Request[Any, Any, Any], circle_id: str) -> Template:
    user = who(request)
    circle, membership = await circles.get_circle(user.account_id, circle_id)
    return page("care", me=await page_user(request), circle=circle, membership=membership)


@post("/circles/{circle_id:str}/care", include_in_schema=False, status_code=200)
async def save_care(request: Request[Any, Any, Any], circle_id: FromPath[str], data: Form, live: LiveDep) -> Template:
    """The coach's edit of the care resources (PATCH /circles/{id} with `care_resources`)."""
    user = who(request)
    text = data.get("care_resources", "")
    if len(text) > CARE_MAX:
        raise ClientException(f"care_resources is at most {CARE_MAX:,} characters; this has {len(text):,}")
    await circles.update_circle(user.account_id, circle_id, CircleUpdate(care_resources=text or None), live)
    return await _care(request, circle_id)


@get("/circles/{circle_id:str}/about", include_in_schema=False)
async def about_page(request: Request[Any, Any, Any], circle_id: FromPath[str]) -> Template:
    """The newcomer's welcome, any time: what the circle shares, its norms, who sees what, the care resources, and
    the themes this member prefers collapsed."""
    user = who(request)
    circle, membership = await circles.get_circle(user.account_id, circle_id)
    themes = await care_actions.themes(user.account_id, circle_id)
    return page(
        "about", me=await page_user(request), circle=circle, membership=membership, themes=themes.themes, saved=False
    )


@post("/circles/{circle_id:str}/collapsed-themes", include_in_schema=False, status_code=200)
async def save_themes(request: Request[Any, Any, Any], circle_id: FromPath[str], data: Form) -> Template:
    user = who(request)
    wanted = [t for t in data.get("themes", "").replace(",", "\n").split("\n") if t.strip()]
    saved = await care_actions.set_themes(user.account_id, circle_id, CollapsedThemes(themes=wanted))
    circle, membership = await circles.get_circle(user.account_id, circle_id)
    return page(
        "about", me=await page_user(request), circle=circle, membership=membership, themes=saved.themes, saved=True
    )


ROUTES: list[Any] = [care_page, save_care, about_page, save_themes]
