"""The hub's window on the database: realtime never imports db or the services; these callbacks are how it reads."""

from __future__ import annotations

from app.services import dropins
from db import queries
from realtime.events import Membership, encode_event
from realtime.types import Access, Entry


def envelope(room_id: str, seq: int, name: str, data: str) -> bytes:
    return encode_event(room_id, seq, name, data.encode())


class DatabaseHubStore:
    """The hub's window on the database (realtime never imports db; these callbacks are how it reads)."""

    async def authorize(self, account_id: str, room_id: str) -> Access | None:
        aid, rid = queries.as_uuid(account_id), queries.as_uuid(room_id)
        if aid is None or rid is None:
            return None
        found = await queries.room_access(aid, rid)
        if found is None:
            return None
        room, membership = found
        who = Membership(membership_id=str(membership.id), alias=membership.alias, role=membership.role)
        if room.dropin_state == "live" and room.dropin is not None:
            await queries.add_participants(room.dropin, [membership.id])
        return Access(circle_id=str(room.circle), who=who, dropin=room.dropin is not None)

    async def hands(self, room_id: str) -> list[Membership]:
        return await dropins.hands_in_room(room_id)

    async def read_events(self, room_id: str, after: int, limit: int) -> tuple[list[Entry], int]:
        rid = queries.as_uuid(room_id)
        if rid is None:
            return [], 0
        rows, last = await queries.read_events(rid, after, limit)
        return [Entry(seq, name, envelope(room_id, seq, name, data)) for seq, name, data in rows], last

    async def last_seqs(self, room_ids: list[str]) -> dict[str, int]:
        ids = [u for u in (queries.as_uuid(r) for r in room_ids) if u is not None]
        return {str(k): v for k, v in (await queries.last_seqs(ids)).items()}

    async def still_allowed(self, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
        return await queries.current_pairs(pairs)
