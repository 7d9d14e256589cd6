"""Push subscriptions belong to a sign-in, and an endpoint to one account.

Each subscription now names the auth token (sign-in) that made it, and is deleted with it (ON DELETE CASCADE): signing
out, a password change that ends other sign-ins, or deleting the account stops pushes to that browser. Subscriptions
made before this migration cannot be tied to a sign-in, so they are removed; a member turns browser notifications on
again from the settings page. One endpoint (one browser's push channel) now belongs to one account only. Hand-written:
the column through Piccolo (so its schema history knows it), the rest as SQL that runs on SQLite and Postgres.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import OnDelete, OnUpdate
from piccolo.columns.column_types import UUID, ForeignKey
from piccolo.columns.defaults.uuid import UUID4
from piccolo.columns.indexes import IndexMethod
from piccolo.engine import engine_finder
from piccolo.table import Table


class AuthToken(Table, tablename="auth_token", schema=None):
    id = UUID(
        default=UUID4(),
        null=False,
        primary_key=True,
        unique=False,
        index=False,
        index_method=IndexMethod.btree,
        choices=None,
        db_column_name=None,
        secret=False,
    )


ID = "2026-12-01T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "push subscriptions belong to a sign-in; one account per endpoint"

# Run before the column is added (Piccolo runs raw steps first).
STATEMENTS = (
    "DELETE FROM push_subscription",
    "DROP INDEX push_subscription_account_endpoint",
    # A browser's endpoint belongs to whoever subscribed it last; subscribing moves it (app.services.preferences).
    "CREATE UNIQUE INDEX push_subscription_endpoint ON push_subscription (endpoint)",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="kindred", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    manager.add_column(
        table_class_name="PushSubscription",
        tablename="push_subscription",
        column_name="token",
        db_column_name="token",
        column_class_name="ForeignKey",
        column_class=ForeignKey,
        params={
            "references": AuthToken,
            "on_delete": OnDelete.cascade,
            "on_update": OnUpdate.cascade,
            "target_column": None,
            "null": True,
            "primary_key": False,
            "unique": False,
            "index": True,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )
    return manager
