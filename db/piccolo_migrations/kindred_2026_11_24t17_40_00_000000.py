"""Indexes for drop-ins; the same SQL runs on SQLite and Postgres."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-24T17:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "drop-in indexes"

STATEMENTS = (
    # A hand is raised once; raising it again changes nothing.
    "CREATE UNIQUE INDEX dropin_hand_dropin_membership ON dropin_hand (dropin, membership)",
    "CREATE UNIQUE INDEX dropin_participant_dropin_membership ON dropin_participant (dropin, membership)",
    # The circle page's upcoming drop-ins, and the reminder job's look-ahead.
    "CREATE INDEX dropin_state_starts ON dropin (state, starts_at)",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="kindred", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
