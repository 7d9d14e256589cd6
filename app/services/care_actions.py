"""Care, the parts that touch the database: the care check for a member, telling the coach, collapsed themes.

The check is answered and forgotten: its text is neither stored nor logged, and nobody is told of it. Telling the
coach is a separate, explicit choice of the member: one notification of kind `care.concern` to the circle's coach,
pointing at the member's journal (the private place the two share), carrying no text of the post.
"""

from __future__ import annotations

import uuid

from app.live import Live
from app.schemas import CareCheck, CollapsedThemes
from app.services import care, journals, notifications
from app.services.common import parse_id, require_member
from app.services.notifications import About
from app.services.outbox import unit_of_work
from db.rows import Member
from db.tables import Circle, Membership

THEMES_MAX = 30


async def _member(account_id: uuid.UUID, circle_id: str) -> tuple[uuid.UUID, Member]:
    cid = parse_id(circle_id, "circle")
    return cid, await require_member(account_id, cid)


async def circle_resources(cid: uuid.UUID) -> str | None:
    row = await Circle.select(Circle.care_resources).where(Circle.id == cid).first()
    return row["care_resources"] if row else None


async def check(account_id: uuid.UUID, circle_id: str, body: str) -> CareCheck:
    """POST /circles/{id}/care-check: members only (404 to anyone else). Pure apart from the membership look-up."""
    cid, _me = await _member(account_id, circle_id)
    return CareCheck(concern=care.concern(body), resources_html=care.resources_html(await circle_resources(cid)))


async def tell_coach(account_id: uuid.UUID, circle_id: str, live: Live) -> None:
    """The member chose to let the coach know. The coach (only) gets `care.concern`, opening the member's journal."""
    cid, me = await _member(account_id, circle_id)
    journal = await journals.my_journal(account_id, circle_id)
    coaches = await notifications.members_of(cid, roles=("coach",))
    async with unit_of_work(live) as outbox:
        await notifications.notify(
            outbox, "care.concern", coaches, me, About(cid, uuid.UUID(journal[0].id)), reason=None
        )


def clean_themes(themes: list[str]) -> list[str]:
    """Themes as stored: folded whitespace, case-folded, no repeats, at most THEMES_MAX."""
    seen: dict[str, None] = {}
    for theme in themes:
        folded = " ".join(theme.split()).casefold()
        if folded:
            seen.setdefault(folded[:40], None)
    return list(seen)[:THEMES_MAX]


def parse_themes(stored: str | None) -> list[str]:
    return [t for t in (stored or "").split("\n") if t]


async def themes(account_id: uuid.UUID, circle_id: str) -> CollapsedThemes:
    _cid, me = await _member(account_id, circle_id)
    row = await Membership.select(Membership.collapsed_themes).where(Membership.id == me.id).first()
    return CollapsedThemes(themes=parse_themes(row["collapsed_themes"] if row else ""))


async def set_themes(account_id: uuid.UUID, circle_id: str, data: CollapsedThemes) -> CollapsedThemes:
    _cid, me = await _member(account_id, circle_id)
    cleaned = clean_themes(data.themes)
    await Membership.update({Membership.collapsed_themes: "\n".join(cleaned)}).where(Membership.id == me.id)
    return CollapsedThemes(themes=cleaned)


async def circle_resources_by_id(circle_id: str) -> str | None:
    return await circle_resources(parse_id(circle_id, "circle"))


async def themes_of(membership_id: uuid.UUID) -> list[str]:
    row = await Membership.select(Membership.collapsed_themes).where(Membership.id == membership_id).first()
    return parse_themes(row["collapsed_themes"] if row else "")
