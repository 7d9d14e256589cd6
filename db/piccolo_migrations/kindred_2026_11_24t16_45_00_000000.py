"""Indexes for notification preferences and push subscriptions; the same SQL runs on SQLite and Postgres."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-24T16:45:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "notification preference and push indexes"

STATEMENTS = (
    # One preference per account, circle (or none) and kind. COALESCE because NULLs are distinct in unique indexes.
    "CREATE UNIQUE INDEX notification_preference_key ON notification_preference "
    "(account, COALESCE(circle, '00000000-0000-0000-0000-000000000000'), kind)",
    # A browser subscribes once per account; subscribing again updates its keys.
    "CREATE UNIQUE INDEX push_subscription_account_endpoint ON push_subscription (account, endpoint)",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="kindred", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
