"""Composite and partial indexes Piccolo's column options cannot express; the same SQL runs on SQLite and Postgres."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-24T15:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "composite and partial indexes"

STATEMENTS = (
    # Aliases are unique per circle ignoring case, among current members only (a departed alias may be reused).
    "CREATE UNIQUE INDEX membership_circle_alias_key ON membership (circle, alias_key) WHERE removed_at IS NULL",
    # One current membership per account and circle.
    "CREATE UNIQUE INDEX membership_circle_account ON membership (circle, account) WHERE removed_at IS NULL",
    # client_id makes post creation idempotent per author.
    "CREATE UNIQUE INDEX post_author_client_id ON post (author, client_id) WHERE client_id IS NOT NULL",
    # Room listings: top-level posts of a room, newest first.
    "CREATE INDEX post_room_toplevel_seq ON post (room, seq) WHERE parent IS NULL",
    # The room log: one row per (room, seq); replay reads it by range.
    "CREATE UNIQUE INDEX room_event_room_seq ON room_event (room, seq)",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="kindred", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
