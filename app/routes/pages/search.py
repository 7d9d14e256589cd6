"""Search in the pages: a GET form (it works without script), results grouped by thread with the matched excerpt,
the active filters as chips that take themselves off, and an empty state that says what to try."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, get
from litestar.exceptions import ClientException
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Template

from app.routes.pages.common import page, page_user, who
from app.schemas.search import SearchHit
from app.services import circles, search
from app.services.search_query import QueryError, check_length

KIND_LABELS = {"reflection": "Reflections", "experiment": "Experiments", "win": "Wins", "question": "Questions"}
STATE_LABELS = {"planned": "Planned", "tried": "Tried", "debriefed": "Debriefed", "abandoned": "Set aside"}
FILTERS = ("kind", "room_id", "membership_id", "pinned", "state")


def _groups(hits: list[SearchHit]) -> list[dict[str, Any]]:
    """Hits by thread, in the order of each thread's best hit."""
    groups: dict[str, dict[str, Any]] = {}
    for hit in hits:
        groups.setdefault(hit.thread_id, {"thread_id": hit.thread_id, "room_id": hit.post.room_id, "hits": []})
        groups[hit.thread_id]["hits"].append(hit)
    return list(groups.values())


@get("/circles/{circle_id:str}/search", include_in_schema=False)
async def search_page(
    request: Request[Any, Any, Any],
    circle_id: FromPath[str],
    q: FromQuery[str] = "",
    kind: FromQuery[str] = "",
    room_id: FromQuery[str] = "",
    membership_id: FromQuery[str] = "",
    pinned: FromQuery[str] = "",
    # `state` is a name Litestar keeps for the application state; the query parameter is still called state.
    stage: Annotated[str, QueryParameter(name="state")] = "",
    offset: FromQuery[str] = "",
) -> Template:
    user = who(request)
    state = stage
    circle, membership = await circles.get_circle(user.account_id, circle_id)
    rooms = await circles.rooms(user.account_id, circle_id)
    members = await circles.members(user.account_id, circle_id)
    chosen = {"kind": kind, "room_id": room_id, "membership_id": membership_id, "pinned": pinned, "state": state}
    chosen = {k: v for k, v in chosen.items() if v}
    error, groups, next_offset, start = None, [], None, 0
    try:
        start = int(offset) if offset.strip() else 0
    except ValueError:
        start = 0
    if q.strip():
        try:
            check_length(q)
            filters = search.Filters(
                kind=kind or None,
                room_id=room_id or None,
                membership_id=membership_id or None,
                pinned=True if pinned else None,
                state=state or None,
            )
            found = await search.search(user.account_id, circle_id, q, filters, offset=max(0, min(start, 1000)))
            groups, next_offset = _groups(found.items), found.next_offset
        except (QueryError, ClientException) as exc:
            error = str(exc.detail if isinstance(exc, ClientException) else exc)

    def link(**change: str | int | None) -> str:
        params: dict[str, Any] = {"q": q, **chosen}
        params.update(change)
        return f"/circles/{circle.id}/search?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})

    room_names = {r.id: r.name for r in rooms}
    aliases = {m.membership_id: m.alias for m in members}
    chip_labels = {
        "kind": KIND_LABELS.get(kind, kind),
        "room_id": room_names.get(room_id, "a room"),
        "membership_id": f"by {aliases.get(membership_id, 'a member')}",
        "pinned": "Key insights",
        "state": STATE_LABELS.get(state, state),
    }
    return page(
        "search",
        me=await page_user(request),
        circle=circle,
        membership=membership,
        q=q,
        chosen=chosen,
        chips=[(chip_labels[k], link(**{k: None, "offset": None})) for k in FILTERS if k in chosen],
        add_chips=[(label, link(kind=value)) for value, label in KIND_LABELS.items() if kind != value]
        + ([("Key insights", link(pinned="true"))] if not pinned else []),
        kinds=KIND_LABELS,
        states=STATE_LABELS,
        rooms=rooms,
        members=members,
        room_names=room_names,
        groups=groups,
        error=error,
        next_link=link(offset=next_offset) if next_offset is not None else None,
        prev_link=link(offset=max(0, start - search.DEFAULT_LIMIT) or None) if start > 0 else None,
    )


ROUTES: list[Any] = [search_page]
