"""The migration record tells the truth: Piccolo's auto-migration against the tables comes out empty, a freshly
migrated database has exactly the tables' columns and the indexes the raw migration names, and every migration can
be walked back and forward again. On SQLite and on Postgres.

If the first test fails, a table changed without a migration: generate one with `--auto` (docs/migrations.md).
"""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from piccolo.apps.migrations.commands.backwards import BackwardsMigrationManager
from piccolo.apps.migrations.commands.new import AutoMigrationManager
from piccolo.conf.apps import AppConfig
from piccolo.engine.base import Engine

from db.engine import bind, make_engine, start, stop
from db.migrate import APP_NAME, _install, migrate, pending
from db.piccolo_app import APP_CONFIG
from db.tables import TABLES
from tests.conftest import PG_ADMIN_DSN, Templates

pytestmark = pytest.mark.anyio


def _all_migrations() -> list[Any]:
    import importlib
    import pkgutil

    import db.piccolo_migrations as package

    return [importlib.import_module(f"{package.__name__}.{m.name}") for m in pkgutil.iter_modules(package.__path__)]


def _raw_index_migrations() -> list[Any]:
    """Every hand-written index migration (those that list INDEXES), in the order they apply."""
    return sorted((m for m in _all_migrations() if hasattr(m, "INDEXES")), key=lambda m: m.ID)


RAW_INDEX_MIGRATIONS = _raw_index_migrations()
RAW_INDEXES = {name for m in RAW_INDEX_MIGRATIONS for name, _ in m.INDEXES}


async def test_auto_migration_comes_out_empty() -> None:
    statements = await AutoMigrationManager().get_alter_statements(app_config=APP_CONFIG)
    changes = [s for group in statements for s in group.statements]
    assert changes == [], "tables changed without a migration; generate one with --auto:\n" + "\n".join(changes)


async def test_auto_migration_notices_a_change() -> None:
    """The control: the same check sees a column that no migration made."""
    from piccolo.columns import Text
    from piccolo.table import create_table_class

    extra = create_table_class(
        class_name="Canary", class_kwargs={"tablename": "canary"}, class_members={"note": Text()}
    )
    config = AppConfig(
        app_name=APP_NAME,
        migrations_folder_path=APP_CONFIG.migrations_folder_path,
        table_classes=[*TABLES, extra],
    )
    statements = await AutoMigrationManager().get_alter_statements(app_config=config)
    assert any("canary" in s.lower() for group in statements for s in group.statements)


@contextlib.asynccontextmanager
async def _fresh(backend: str, tmp_path: Path, templates: Templates) -> AsyncIterator[tuple[Engine[Any], str]]:
    """An empty database of the backend, bound; dropped afterwards."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        name = None
    else:
        await templates.postgres()  # skips loudly (fails in CI) without the services
        name = f"kindred_migr_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        admin = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        url = PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
    engine = make_engine(url)
    bind(engine)
    await start(engine, pool_size=2)
    try:
        yield engine, backend
    finally:
        await stop(engine)
        if name is not None:
            admin = await asyncpg.connect(PG_ADMIN_DSN)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()


async def _columns(engine: Engine[Any], backend: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for table in TABLES:
        name = table._meta.tablename
        if backend == "sqlite":
            rows = await engine.run_querystring(_raw(f'PRAGMA table_info("{name}")'))
            found[name] = {r["name"] for r in rows}
        else:
            rows = await engine.run_querystring(
                _raw("SELECT column_name FROM information_schema.columns WHERE table_name = {}", name)
            )
            found[name] = {r["column_name"] for r in rows}
    return found


async def _indexes(engine: Engine[Any], backend: str) -> set[str]:
    if backend == "sqlite":
        rows = await engine.run_querystring(_raw("SELECT name FROM sqlite_master WHERE type = 'index'"))
        return {r["name"] for r in rows}
    rows = await engine.run_querystring(_raw("SELECT indexname AS name FROM pg_indexes WHERE schemaname = 'public'"))
    return {r["name"] for r in rows}


def _raw(sql: str, *args: Any) -> Any:
    from piccolo.querystring import QueryString

    return QueryString(sql, *args)


async def test_a_migrated_database_has_the_tables_columns_and_indexes(
    backend: str, tmp_path: Path, templates: Templates
) -> None:
    async with _fresh(backend, tmp_path, templates) as (engine, kind):
        await migrate(engine, quiet=True)
        assert await pending(engine) == []
        columns = await _columns(engine, kind)
        for table in TABLES:
            expected = {c._meta.db_column_name for c in table._meta.columns}
            assert columns[table._meta.tablename] == expected, table._meta.tablename
        assert await _indexes(engine, kind) >= RAW_INDEXES


async def test_every_migration_walks_back_and_forward_again(backend: str, tmp_path: Path, templates: Templates) -> None:
    async with _fresh(backend, tmp_path, templates) as (engine, kind):
        applied = await migrate(engine, quiet=True)
        assert applied
        raw_names = RAW_INDEXES
        last = RAW_INDEX_MIGRATIONS[-1]
        # Generated migrations (columns only) may come after it: the walk steps back through them and it.
        last_names = {name for name, _ in last.INDEXES}

        _install(engine)
        # Back to before the last raw migration: its backwards drops exactly its indexes and leaves the tables.
        with contextlib.redirect_stdout(io.StringIO()):
            result = await BackwardsMigrationManager(app_name=APP_NAME, migration_id=last.ID, auto_agree=True).run()
        assert result.success, result.message
        left = await _indexes(engine, kind)
        assert not last_names & left and (raw_names - last_names) <= left
        assert set((await _columns(engine, kind))["post"]) >= {"id", "room", "body"}

        # All the way back: no Kindred table is left.
        with contextlib.redirect_stdout(io.StringIO()):
            result = await BackwardsMigrationManager(app_name=APP_NAME, migration_id="all", auto_agree=True).run()
        assert result.success, result.message
        assert all(not cols for cols in (await _columns(engine, kind)).values())

        # And forward again to the same schema.
        assert await migrate(engine, quiet=True) == applied
        assert raw_names <= await _indexes(engine, kind)


async def test_a_database_from_another_history_is_refused_in_words(
    backend: str, tmp_path: Path, templates: Templates
) -> None:
    """A database migrated by the pre-squash history (its ids unknown here) is not "migrated" on top."""
    from piccolo.apps.migrations.tables import Migration

    from db.migrate import UnknownHistory

    async with _fresh(backend, tmp_path, templates) as (engine, _):
        await migrate(engine, quiet=True)
        assert await pending(engine) == []  # the control: this history is known
        await Migration.insert(Migration(name="2026-11-24T15:14:38:660179", app_name=APP_NAME))
        with pytest.raises(UnknownHistory, match="older migration history"):
            await pending(engine)
