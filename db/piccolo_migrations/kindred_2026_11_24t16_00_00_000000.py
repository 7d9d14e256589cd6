"""Indexes for gestures and notifications; the same SQL runs on SQLite and Postgres."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-24T16:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "gesture and notification indexes"

STATEMENTS = (
    # One like per member per post: a repeated PUT changes nothing.
    "CREATE UNIQUE INDEX post_like_post_membership ON post_like (post, membership)",
    # One tag per member per post: tagging twice notifies once.
    "CREATE UNIQUE INDEX tag_post_membership ON tag (post, membership)",
    # The feed: an account's notifications, newest first, and its unread count.
    "CREATE INDEX notification_account_created ON notification (account, created_at)",
    "CREATE INDEX notification_account_unread ON notification (account) WHERE read_at IS NULL",
    # Key insights board: a circle's pins, newest first.
    "CREATE INDEX pin_circle_pinned_at ON pin (circle, pinned_at)",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="kindred", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
