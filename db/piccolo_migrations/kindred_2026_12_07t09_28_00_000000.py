"""Backfill for the email column of notification_preference (added in the migration before): rows saved before it
existed take their kind's default (app/services/notifications.py EMAIL_DEFAULT), as accounts without rows do.
Backwards has nothing to undo (the column goes with the migration before)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-07T09:28:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "email preferences: defaults for existing rows"

# A copy, not an import: a migration must keep meaning what it meant when it landed.
EMAIL_DEFAULT = ("question", "reply", "mention", "tag", "coach_like", "pin", "share", "experiment.due")


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="kindred", description=DESCRIPTION)

    async def run():
        kinds = ", ".join(f"'{k}'" for k in EMAIL_DEFAULT)
        await engine_finder().run_ddl(f"UPDATE notification_preference SET email = (kind IN ({kinds}))")

    async def run_backwards():
        pass

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
