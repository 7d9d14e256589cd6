"""Engines from a URL, and the one way services open a write transaction.

Piccolo finds its engine through `piccolo_conf`; Kindred instead builds the engine from `DATABASE_URL` at start-up
and binds every table to it, so one process can be pointed anywhere without a config module per database.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from piccolo.apps.migrations.tables import Migration
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType
from piccolo.table import Table

from db.tables import TABLES

# Seconds a SQLite writer waits for the file lock before giving up (sqlite3 `timeout`): writers queue, not fail.
SQLITE_BUSY_SECONDS = 5.0
# asyncpg: seconds to establish a connection, and to run one statement, before the request fails with 503.
PG_CONNECT_TIMEOUT = 5.0
PG_COMMAND_TIMEOUT = 15.0


def make_engine(database_url: str) -> Engine[Any]:
    if database_url.startswith("sqlite"):
        path = database_url.split("://", 1)[1][1:]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return SQLiteEngine(path=path, timeout=SQLITE_BUSY_SECONDS)
    dsn = database_url.replace("postgres://", "postgresql://", 1)
    return PostgresEngine(
        config={"dsn": dsn, "timeout": PG_CONNECT_TIMEOUT, "command_timeout": PG_COMMAND_TIMEOUT},
        # Kindred makes its UUIDs in Python; no extension needed, so a least-privileged role works too.
        extensions=(),
    )


def bind(engine: Engine[Any]) -> None:
    """Point every Kindred table (and Piccolo's migration table) at `engine`."""
    tables: tuple[type[Table], ...] = (*TABLES, Migration)
    for table in tables:
        table._meta.db = engine


def current_engine() -> Engine[Any]:
    return TABLES[0]._meta.db


async def _keep_session(connection: Any) -> None:
    """Pool release hook. asyncpg's default sends RESET ALL (a round trip per query); Kindred never changes session
    state on pooled connections (the migration lock takes a connection of its own), so there is nothing to reset.
    asyncpg still rolls back a transaction left open before calling this."""


async def start(engine: Engine[Any], pool_size: int = 10) -> None:
    if isinstance(engine, PostgresEngine):
        await engine.start_connection_pool(min_size=1, max_size=pool_size, reset=_keep_session)
    elif isinstance(engine, SQLiteEngine):
        # WAL lets readers proceed while one writer commits; the setting is stored in the file.
        await engine.run_ddl("PRAGMA journal_mode=WAL")


_expiring: set[asyncio.Task[None]] = set()


def expire_pool() -> None:
    """After the server dropped us (restart, failover, terminated backends), every idle pooled connection is dead but
    asyncpg only finds out one acquire at a time, so each would fail one more request. Mark them all for replacement
    on their next acquire instead: the first request after the database is back already gets a fresh connection."""
    engine = current_engine()
    if isinstance(engine, PostgresEngine) and engine.pool is not None:
        task = asyncio.get_running_loop().create_task(engine.pool.expire_connections())
        _expiring.add(task)
        task.add_done_callback(_expiring.discard)


async def stop(engine: Engine[Any]) -> None:
    if isinstance(engine, PostgresEngine) and engine.pool is not None:
        await engine.close_connection_pool()


@contextlib.asynccontextmanager
async def write_transaction() -> AsyncIterator[None]:
    """The outermost transaction of a service write.

    SQLite: BEGIN IMMEDIATE takes the write lock up front, so two writers queue instead of deadlocking when both
    try to upgrade a read lock. Postgres: row locks (`UPDATE room ... RETURNING last_seq`) order writers per room.
    Piccolo treats a nested `transaction()` as a no-op, so callers publish only after this block exits.
    """
    engine = current_engine()
    if isinstance(engine, SQLiteEngine):
        async with engine.transaction(transaction_type=TransactionType.immediate):
            yield
    else:
        async with engine.transaction():
            yield
