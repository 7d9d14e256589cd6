"""Apply Piccolo migrations to the engine Kindred is bound to."""

from __future__ import annotations

import contextlib
import importlib
import io
import os
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from piccolo.apps.migrations.commands.base import BaseMigrationManager
from piccolo.apps.migrations.commands.forwards import ForwardsMigrationManager
from piccolo.apps.migrations.tables import Migration
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine

APP_NAME = "kindred"
# Any constant works; it only has to be the same for every Kindred instance sharing a database.
_PG_MIGRATION_LOCK = 0x4B696E64


def _install(engine: Engine[Any]) -> None:
    """Make Piccolo's engine finder (used inside MigrationManager) return `engine`."""
    os.environ.setdefault("PICCOLO_CONF", "db.piccolo_conf")
    conf = importlib.import_module(os.environ["PICCOLO_CONF"])
    conf.DB = engine  # type: ignore[attr-defined]


class UnknownHistory(RuntimeError):
    """The database records migrations this code does not have: made by another (e.g. a pre-squash) history."""


async def pending(engine: Engine[Any]) -> list[str]:
    _install(engine)
    manager = BaseMigrationManager()
    app_config = manager.get_app_config(APP_NAME)
    known = set(manager.get_migration_ids(manager.get_migration_modules(app_config.resolved_migrations_folder_path)))
    if not await Migration.table_exists().run():
        return sorted(known)
    ran = set(await Migration.get_migrations_which_ran(app_name=APP_NAME))
    if ran - known:
        # Applying "pending" migrations on top would re-create tables that exist; say what happened instead.
        raise UnknownHistory(
            f"the database records {len(ran - known)} migration(s) this version does not know "
            f"(e.g. {min(ran - known)}); it was made by an older migration history (see docs/migrations.md): "
            "use a fresh database"
        )
    return sorted(known - ran)


@contextlib.asynccontextmanager
async def _exclusive(engine: Engine[Any]) -> AsyncIterator[None]:
    """Two instances starting at once must not both run the same migration (Postgres advisory lock)."""
    if not isinstance(engine, PostgresEngine):
        yield
        return
    conn = await asyncpg.connect(**engine.config)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _PG_MIGRATION_LOCK)
        yield
    finally:
        with contextlib.suppress(Exception):
            await conn.execute("SELECT pg_advisory_unlock($1)", _PG_MIGRATION_LOCK)
        await conn.close()


async def migrate(engine: Engine[Any], *, quiet: bool = False) -> list[str]:
    """Apply every pending migration; return the ids applied."""
    async with _exclusive(engine):
        todo = await pending(engine)
        if not todo:
            return []
        manager = ForwardsMigrationManager(app_name=APP_NAME)
        out = io.StringIO()
        with contextlib.redirect_stdout(out) if quiet else contextlib.nullcontext():
            result = await manager.run()
        if not result.success:
            raise RuntimeError(f"migration failed: {result.message}\n{out.getvalue()}")
        return todo
