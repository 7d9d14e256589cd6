"""The circle's audit log: every moderation action and every change to how the circle treats its members' privacy,
written inside the transaction of the change it records. Append-only; the coach reads it back."""

from __future__ import annotations

import uuid

from db.queries import now
from db.rows import Member
from db.tables import ModerationLog


async def record(
    circle_id: uuid.UUID,
    actor: Member,
    action: str,
    *,
    post_id: uuid.UUID | None = None,
    member: uuid.UUID | None = None,
    reason: str | None = None,
) -> None:
    await ModerationLog.insert(
        ModerationLog(
            id=uuid.uuid4(),
            circle=circle_id,
            actor=actor.id,
            action=action,
            post_id=post_id,
            member=member,
            reason=reason,
            created_at=now(),
        )
    )
