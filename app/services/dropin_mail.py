"""Drop-in reminders by email, with the drop-in's .ics attached (docs/email.md).

Written by the reminder job inside the transaction that claims the reminder (`dropin.reminded_at`), so each member
gets one mail whichever instance claims it, and none if the claim rolls back. Only members whose preference for
`dropin.reminder` has email on (per circle, then the circle's mute, then everywhere: notifications.resolve).
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from app import mail
from app.services import mailprefs
from app.services.notifications import resolve, time_zone
from app.services.outbox import Outbox
from app.settings import Settings
from db.queries import chunks
from db.tables import Membership, NotificationPreference

KIND = "dropin.reminder"


async def recipients(circle_id: Any) -> list[dict[str, Any]]:
    """The circle's current members (not the coach) whose preferences want the reminder by mail: account, address,
    time zone. One look-up of members and one of preferences per thousand."""
    members = await Membership.select(
        Membership.account,
        Membership.account.email.as_alias("email"),
        Membership.account.timezone.as_alias("timezone"),
        Membership.account.deleted_at.as_alias("deleted_at"),
    ).where((Membership.circle == circle_id) & Membership.removed_at.is_null() & (Membership.role == "member"))
    members = [m for m in members if m["deleted_at"] is None and m["email"]]
    by_account: dict[Any, list[dict[str, Any]]] = {}
    for part in chunks([m["account"] for m in members]):
        for row in await NotificationPreference.select().where(
            NotificationPreference.account.is_in(part)
            & NotificationPreference.kind.is_in([KIND, "*"])
            & (NotificationPreference.circle.is_null() | (NotificationPreference.circle == circle_id))
        ):
            by_account.setdefault(row["account"], []).append(row)
    return [m for m in members if resolve(KIND, circle_id, by_account.get(m["account"], [])).email]


async def send(outbox: Outbox, row: dict[str, Any], settings: Settings) -> int:
    """Queue the reminder mail for each member who wants it, inside the caller's (claiming) transaction."""
    wanted = await recipients(row["circle"])
    if not wanted:
        return 0
    from app.services.dropins import calendar_name, ics

    room = f"{settings.link_base}/rooms/{row['room']}"
    attachment = mail.Attachment(calendar_name(row["title"]), "text/calendar; method=PUBLISH", ics(row, room))
    for member in wanted:
        zone = time_zone(member["timezone"]) or UTC
        starts = row["starts_at"].astimezone(zone)
        rendered = mail.render(
            "dropin_reminder",
            f"Drop-in at {starts:%H:%M}: {row['title']}",
            title=row["title"],
            agenda=row["agenda"] or "",
            starts=f"{starts:%A %d %B, %H:%M} ({getattr(zone, 'key', 'UTC')})",
            minutes=int(row["duration_minutes"]),
            link=room,
            **(foot := await mailprefs.footer(member["account"], KIND, settings.link_base)),
        )
        await mail.enqueue(
            outbox,
            member["account"],
            member["email"],
            KIND,
            rendered,
            unsubscribe=foot["unsubscribe"],
            attachment=attachment,
        )
    return len(wanted)
