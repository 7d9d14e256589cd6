"""Notifications: written in the same transaction as the change that causes them, pushed after commit.

A notification names its actor by membership (alias and role in that circle), never by account.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from litestar.exceptions import ClientException

from app.services.common import membership_struct
from app.services.outbox import Outbox
from db import queries
from db.queries import now
from db.tables import Membership
from db.tables import Notification as NotificationRow
from realtime.events import Notification

DEFAULT_PAGE, MAX_PAGE = 30, 100


async def notify(
    outbox: Outbox,
    *,
    kind: str,
    recipients: Iterable[uuid.UUID],
    actor: dict[str, Any] | None,
    circle_id: uuid.UUID | None,
    room_id: uuid.UUID | None,
    post_id: uuid.UUID | None,
    reason: str | None = None,
) -> None:
    """Notify the accounts behind `recipients` (membership ids), never the actor themself; one INSERT for all.

    Must run inside the caller's write transaction; the frames go out when the caller publishes its outbox.
    """
    wanted = {m for m in recipients if actor is None or m != actor["id"]}
    if not wanted:
        return
    rows = await Membership.select(Membership.id, Membership.account).where(
        Membership.id.is_in(list(wanted)) & Membership.removed_at.is_null()
    )
    accounts = {r["account"] for r in rows}
    if actor is not None:
        accounts.discard(actor["account"])
    if not accounts:
        return
    created = now()
    actor_struct = membership_struct(actor) if actor is not None else None
    inserts = []
    for account_id in accounts:
        note_id = uuid.uuid4()
        inserts.append(
            NotificationRow(
                id=note_id,
                account=account_id,
                kind=kind,
                circle=circle_id,
                room=room_id,
                post_id=post_id,
                actor=actor["id"] if actor is not None else None,
                reason=reason,
                created_at=created,
                read_at=None,
            )
        )
        outbox.notify(
            account_id,
            Notification(
                id=str(note_id),
                kind=kind,
                circle_id=_s(circle_id),
                room_id=_s(room_id),
                post_id=_s(post_id),
                actor=actor_struct,
                created_at=created,
                read=False,
                reason=reason,
            ),
        )
    await NotificationRow.insert(*inserts)


def _s(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


async def feed(
    account_id: uuid.UUID, *, unread: bool = False, limit: int | None = None, before: str | None = None
) -> list[Notification]:
    size = min(max(limit or DEFAULT_PAGE, 1), MAX_PAGE)
    query = NotificationRow.select().where(NotificationRow.account == account_id)
    if unread:
        query = query.where(NotificationRow.read_at.is_null())
    if before:
        anchor = (
            await NotificationRow.select(NotificationRow.created_at)
            .where(
                (NotificationRow.id == (queries.as_uuid(before) or uuid.UUID(int=0)))
                & (NotificationRow.account == account_id)
            )
            .first()
        )
        if anchor is None:
            raise ClientException("before must be the id of one of your notifications")
        query = query.where(NotificationRow.created_at < anchor["created_at"])
    rows = await query.order_by(NotificationRow.created_at, ascending=False).limit(size)
    actors = await queries.memberships_by_id(r["actor"] for r in rows if r["actor"] is not None)
    return [
        Notification(
            id=str(r["id"]),
            kind=r["kind"],
            circle_id=_s(r["circle"]),
            room_id=_s(r["room"]),
            post_id=_s(r["post_id"]),
            actor=membership_struct(actors[r["actor"]]) if r["actor"] in actors else None,
            created_at=r["created_at"],
            read=r["read_at"] is not None,
            reason=r["reason"],
        )
        for r in rows
    ]


async def unread_count(account_id: uuid.UUID) -> int:
    return int(
        await NotificationRow.count().where((NotificationRow.account == account_id) & NotificationRow.read_at.is_null())
    )


async def mark_read(account_id: uuid.UUID, ids: list[str] | None, everything: bool) -> None:
    if not everything and not ids:
        raise ClientException('send {"ids": [...]} or {"all": true}')
    query = NotificationRow.update({NotificationRow.read_at: now()}).where(
        (NotificationRow.account == account_id) & NotificationRow.read_at.is_null()
    )
    if not everything:
        parsed = [u for u in (queries.as_uuid(i) for i in ids or []) if u is not None]
        if not parsed:
            return
        query = query.where(NotificationRow.id.is_in(parsed))
    await query
