"""Care on the pages (docs/care.md): the care check as a member is about to post, the care resources page, the
circle's "About this circle" page (the newcomer onboarding, again), and the themes a member collapses.

The composer's post, a reply and an edit go through the gate (`decided`, then `gate`): when the text raises a concern
and the member has not chosen yet, the answer is the care interstitial (a fragment in the composer or under the post
with htmx, a page of its own without JavaScript) holding the draft, with three choices: post anyway, move it to my
journal, let my coach know. Nothing of the check
is stored or logged; telling the coach is only ever the member's explicit choice.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
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
DRAFT_FIELDS = ("body", "kind", "content_note", "reply_wish", "client_id", "parent_id")


def draft_of(data: dict[str, str]) -> dict[str, str]:
    """The fields of the draft the form sent (only those: an edit from an older page leaves the others alone)."""
    return {k: data[k] for k in DRAFT_FIELDS if k in data}


class Gate(msgspec.Struct, frozen=True, kw_only=True):
    """Where a checked draft came from, so the interstitial's choices go back the same way: the room composer (a new
    post), the reply form under a post, or the edit form of a post."""

    mode: Literal["post", "reply", "edit"]
    room_id: str
    circle_id: str
    post_id: str = ""  # the post replied to or edited

    @property
    def slot(self) -> str:
        """Where the interstitial shows: the composer's status, or the slot under the post (the edit form stays
        open with its text while the member chooses)."""
        return "#composer-status" if self.mode == "post" else f"#reply-slot-{self.post_id}"

    @property
    def action(self) -> str:
        return f"/posts/{self.post_id}" if self.mode == "edit" else f"/rooms/{self.room_id}/posts"

    @property
    def target(self) -> tuple[str, str]:
        """(hx-target, hx-swap) of the choice "post it anyway"/"save it anyway": where the post itself goes."""
        if self.mode == "edit":
            return f"#main-{self.post_id}", "innerHTML"
        if self.mode == "reply":
            return f"#replies-{self.post_id}", "beforeend"
        return "#threads", "afterbegin"


async def interstitial(
    request: Request[Any, Any, Any], gate: Gate, data: dict[str, str], *, told: bool = False
) -> Template:
    """The care interstitial for this draft: a fragment for htmx (into the gate's slot), else a page."""
    context: dict[str, Any] = {
        "gate": gate,
        "room_id": gate.room_id,
        "circle_id": gate.circle_id,
        "draft": draft_of(data),
        "told": told,
        "resources_html": care.resources_html(await care_actions.circle_resources_by_id(gate.circle_id)),
    }
    if request.headers.get("hx-request"):
        return Template(
            "fragments/care_check.html",
            context=context,
            headers={"HX-Retarget": gate.slot, "HX-Reswap": "innerHTML"},
        )
    return page("care_check", me=await page_user(request), **context)


def decided(data: dict[str, str]) -> str | None:
    """Where the text goes ("room" or "journal") when no interstitial is needed, else None. `care` in the form is
    the member's choice once they have seen it. Text for the journal (chosen, or moved there) is not checked: it
    reaches only the coach."""
    where = data.get("where", "room")
    choice = data.get("care", "")
    if choice not in ("", *CHOICES):
        raise ClientException("care is one of post (post it anyway), journal (move it to my journal) or coach")
    if choice == "journal":
        return "journal"
    if choice == "post" or where == "journal" or (choice == "" and not care.concern(data.get("body", ""))):
        return where
    return None


async def gate(
    request: Request[Any, Any, Any], where: Gate, room_kind: str, data: dict[str, str], live: LiveDep
) -> Template | None:
    """The interstitial for a draft that `decided` could not send on (None in a journal: just the coach reads it);
    telling the coach first when that was the member's choice."""
    if room_kind == "journal":
        return None
    if data.get("care") == "coach":
        await care_actions.tell_coach(who(request).account_id, where.circle_id, live)
    return await interstitial(request, where, data, told=data.get("care") == "coach")


async def checked_post(
    request: Request[Any, Any, Any], room_id: str, data: dict[str, str], live: LiveDep
) -> tuple[Template | None, str]:
    """The gate for the room composer and the reply form (a reply when the form names its `parent_id`): (the
    interstitial to answer with, or None to go on; where the post goes)."""
    where = decided(data)
    if where is not None:
        return None, where
    _, room, _ = await posts.room_and_membership(who(request).account_id, room_id)
    parent = data.get("parent_id", "")
    origin = Gate(mode="reply" if parent else "post", room_id=room_id, circle_id=str(room.circle), post_id=parent)
    return await gate(request, origin, room.kind, data, live), data.get("where", "room")


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
