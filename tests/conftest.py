"""Test fixtures: every storage/pub-sub test runs on SQLite + memory channels and on Postgres + Redis.

On a machine without Postgres or Redis the second variant skips with a loud reason; with CI=true a missing service
fails the run instead. Each test gets a fresh database (a copy of a migrated SQLite file, or a truncated Postgres
database) and its own Redis key prefix, and talks to a real uvicorn server over real sockets.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn

from app.settings import Settings, load_settings
from tests.client import DEADLINE, ApiClient

pytest_plugins = ["tests.browser"]

PG_ADMIN_DSN = os.environ.get("KINDRED_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("KINDRED_TEST_REDIS", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# The ASGI server the tests' servers run under: "uvicorn" (as `kindred serve` ships) or "granian".
TEST_SERVER = os.environ.get("KINDRED_TEST_SERVER", "uvicorn")
SECRET = "test-secret-" + "x" * 40

logging.getLogger("httpx").setLevel(logging.WARNING)

TRUNCATE = "TRUNCATE account, auth_token, circle, membership, invite, room, post, room_event RESTART IDENTITY CASCADE"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def _unavailable(what: str, exc: BaseException) -> None:
    message = f"{what} is not reachable ({exc!r}); the Postgres + Redis variant cannot run here"
    if IN_CI:
        pytest.fail(f"CI=true requires Postgres and Redis: {message}")
    pytest.skip(f"SKIPPING POSTGRES+REDIS VARIANT: {message}")


async def _services_up() -> BaseException | None:
    try:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
        await conn.close()
    except Exception as exc:
        return exc
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:
        return exc
    finally:
        await client.aclose()
    return None


class Templates:
    """Migrated databases made once per session; each test gets a fresh copy."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sqlite: Path | None = None
        self.pg_dsn: str | None = None
        self.pg_error: BaseException | None = None
        self.pg_checked = False

    async def sqlite_copy(self, dest: Path) -> str:
        if self.sqlite is None:
            path = self.root / "template.sqlite3"
            await _migrate(f"sqlite:///{path}")
            self.sqlite = path
        shutil.copy(self.sqlite, dest)
        return f"sqlite:///{dest}"

    async def postgres(self) -> str:
        if not self.pg_checked:
            self.pg_checked = True
            self.pg_error = await _services_up()
            if self.pg_error is None:
                name = f"kindred_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
                admin = await asyncpg.connect(PG_ADMIN_DSN)
                try:
                    await admin.execute(f'CREATE DATABASE "{name}"')
                finally:
                    await admin.close()
                self.pg_dsn = PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
                await _migrate(self.pg_dsn)
        if self.pg_error is not None or self.pg_dsn is None:
            _unavailable("Postgres or Redis", self.pg_error or RuntimeError("unknown"))
        assert self.pg_dsn is not None
        conn = await asyncpg.connect(self.pg_dsn)
        try:
            await conn.execute(TRUNCATE)
        finally:
            await conn.close()
        return self.pg_dsn

    async def drop(self) -> None:
        if self.pg_dsn is None:
            return
        name = self.pg_dsn.rsplit("/", 1)[1]
        admin = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def _migrate(url: str) -> None:
    from db.engine import bind, make_engine, start, stop
    from db.migrate import migrate

    engine = make_engine(url)
    bind(engine)
    await start(engine, pool_size=2)
    try:
        await migrate(engine, quiet=True)
    finally:
        await stop(engine)


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    holder = Templates(tmp_path_factory.mktemp("templates"))
    yield holder
    asyncio.run(holder.drop())


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_settings(database_url: str, redis_url: str | None, data_dir: Path, **env: str) -> Settings:
    base = {
        "DATABASE_URL": database_url,
        "KINDRED_SECRET": SECRET,
        "KINDRED_DATA_DIR": str(data_dir),
        "KINDRED_REDIS_PREFIX": f"kt{uuid.uuid4().hex[:10]}",
        # Presence frames without their random delay, so tests that wait for presence wait less; the jitter itself
        # is tested on its own (tests/test_hardening.py, tests/test_hub_unit.py).
        "KINDRED_PRESENCE_JITTER": "0",
        **env,
    }
    if redis_url:
        base["REDIS_URL"] = redis_url
    return load_settings(base)


@pytest.fixture
async def pg_url(templates: Templates) -> str:
    """A fresh Postgres database: for the multi-instance tests, which only have the Postgres + Redis variant."""
    return await templates.postgres()


@pytest.fixture
async def private_redis() -> AsyncIterator[Any]:
    """A Redis of the test's own on a spare port, which the test may stop and start (tests/procs.RedisProcess)."""
    from tests.procs import RedisProcess

    redis = RedisProcess()
    await redis.start()
    try:
        yield redis
    finally:
        redis.stop()


@pytest.fixture
async def database_url(backend: str, templates: Templates, tmp_path: Path) -> str:
    if backend == "sqlite":
        return await templates.sqlite_copy(tmp_path / "kindred.sqlite3")
    return await templates.postgres()


@pytest.fixture
def settings_env() -> dict[str, str]:
    """Extra KINDRED_* settings for one test (override in the test module or with indirect parametrisation)."""
    return {}


@pytest.fixture
def settings(backend: str, database_url: str, tmp_path: Path, settings_env: dict[str, str]) -> Settings:
    return make_settings(database_url, REDIS_URL if backend == "postgres" else None, tmp_path, **settings_env)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """The application under the test's chosen ASGI server, in this process: uvicorn, or with
    KINDRED_TEST_SERVER=granian Granian's embedded server, configured as `kindred serve --server` configures each."""

    def __init__(self, settings: Settings) -> None:
        from app.main import create_app

        self.settings = settings
        self.app = create_app(settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/api/v1/ws"
        self._task: asyncio.Task[None] | None = None
        self.server: uvicorn.Server | None = None
        self.granian: Any = None
        if TEST_SERVER == "granian":
            from granian.constants import HTTPModes, Interfaces
            from granian.log import LogLevels
            from granian.server.embed import Server as Embedded

            from app.main import trusted_proxy_headers

            self.granian = Embedded(
                trusted_proxy_headers(self.app, settings.trust_proxy),
                address="127.0.0.1",
                port=self.port,
                interface=Interfaces.ASGI,
                http=HTTPModes.http1,
                websockets=True,
                log_level=LogLevels.warning,
            )
            return
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            ws="websockets-sansio",
            ws_max_size=settings.limits.max_frame_bytes,
            ws_per_message_deflate=False,
            # As `kindred serve` does: only a configured proxy may say who the client is.
            proxy_headers=settings.trust_proxy is not None,
            forwarded_allow_ips=settings.trust_proxy,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)

    @property
    def hub(self) -> Any:
        return self.app.state["hub"]

    async def start(self) -> None:
        serve = self.granian.serve() if self.granian is not None else self.server.serve()  # type: ignore[union-attr]
        self._task = asyncio.create_task(serve)
        deadline = asyncio.get_running_loop().time() + 2 * DEADLINE
        while asyncio.get_running_loop().time() < deadline:
            if await self._started():
                return
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        raise RuntimeError("server did not start")

    async def _started(self) -> bool:
        if self.server is not None:
            return self.server.started
        # Granian binds its socket before the lifespan runs and says nothing when it is ready: ready is answering.
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                await client.get(f"{self.url}/healthz")
        except httpx.HTTPError:
            return False
        return True

    async def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        else:
            self.granian.stop()
        if self._task is not None:
            await asyncio.wait_for(self._task, 10)

    def client(self) -> ApiClient:
        return ApiClient(self.url, self.ws_url)


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Server]:
    srv = Server(settings)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def api(server: Server) -> AsyncIterator[ApiClient]:
    client = server.client()
    try:
        yield client
    finally:
        await client.aclose()
