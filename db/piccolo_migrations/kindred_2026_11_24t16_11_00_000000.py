"""Indexes for moderation; the same SQL runs on SQLite and Postgres."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-24T16:11:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "moderation indexes"

STATEMENTS = (
    # A member reports a post once; reporting again changes nothing.
    "CREATE UNIQUE INDEX report_post_reporter ON report (post, reporter)",
    # The coach's queue: a circle's open reports, oldest first.
    "CREATE INDEX report_circle_open ON report (circle, created_at) WHERE resolved_at IS NULL",
    # The audit log, newest first.
    "CREATE INDEX moderation_log_circle_created ON moderation_log (circle, created_at)",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="kindred", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
