"""Raw step after kindred_2026_12_06t10_09_36_991559 (membership.welcomed_at): members who joined before the welcome
card was stored had their card on the redirect after joining, so they count as welcomed from the moment they joined
and never see it again. Coaches never get the card; theirs is filled too, so the column says the truth for everyone.

Backwards has nothing of its own to undo (the column goes with the previous migration's backwards step).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-06T10:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "membership.welcomed_at filled for memberships made before it existed"

# No indexes: `welcomed_at` is only read with its own membership row.
INDEXES: tuple[tuple[str, str], ...] = ()


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="kindred", description=DESCRIPTION)

    async def run():
        await engine_finder().run_ddl("UPDATE membership SET welcomed_at = joined_at WHERE welcomed_at IS NULL")

    async def run_backwards():
        return None

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
