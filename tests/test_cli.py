"""The `kindred` command as a newcomer and an operator run it: serve with no configuration, migrate, demo, workers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import PG_ADMIN_DSN, REDIS_URL, SECRET, TEST_SERVER, Templates, free_port

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parent.parent


def kindred(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def clean_env(**extra: str) -> dict[str, str]:
    """The machine's environment without any Kindred configuration (but the tests' ASGI server), plus `extra`."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("KINDRED_") and k not in {"DATABASE_URL", "REDIS_URL"}
    }
    return {**env, "KINDRED_SERVER": TEST_SERVER, **extra}


async def serving(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=2) as client:
        for _ in range(300):
            if proc.poll() is not None:
                raise AssertionError(f"kindred serve exited with {proc.returncode}")
            try:
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return proc, url
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    proc.terminate()
    raise AssertionError("kindred serve did not become ready")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture
async def empty_postgres(templates: Templates) -> AsyncIterator[str]:
    await templates.postgres()  # skips loudly (or fails in CI) without the services
    name = f"kindred_cli_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
    finally:
        admin = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def test_serve_with_no_configuration_migrates_and_serves(tmp_path: Path) -> None:
    env = clean_env(KINDRED_DATA_DIR=str(tmp_path / "data"))
    proc, url = await serving(env)
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            page = await client.get("/signup")
            assert page.status_code == 200 and "Create" in page.text
            health = (await client.get("/healthz")).json()
            assert health["database"] == "ok" and health["bus"] == "up"
    finally:
        stop(proc)
    assert (tmp_path / "data" / "kindred.sqlite3").exists()
    secret = tmp_path / "data" / "secret.key"
    assert secret.exists() and oct(secret.stat().st_mode & 0o777) == "0o600"
    # The same secret on the next start (CSRF tokens and push keys survive a restart).
    first = secret.read_text()
    proc, _ = await serving(env)
    stop(proc)
    assert secret.read_text() == first


async def test_the_secret_is_kept_beside_a_sqlite_file_elsewhere(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    env = clean_env(KINDRED_DATA_DIR=str(tmp_path / "data"), DATABASE_URL=f"sqlite:///{elsewhere / 'circles.db'}")
    result = kindred("migrate", env=env)
    assert result.returncode == 0, result.stderr
    proc, _ = await serving(env)
    stop(proc)
    assert (elsewhere / "circles.db").exists() and (elsewhere / "secret.key").exists()


def test_several_workers_need_shared_services(tmp_path: Path) -> None:
    result = kindred("serve", "--workers", "2", env=clean_env(KINDRED_DATA_DIR=str(tmp_path)))
    assert result.returncode == 2 and "DATABASE_URL" in result.stderr


async def test_postgres_is_migrated_explicitly(empty_postgres: str) -> None:
    env = clean_env(DATABASE_URL=empty_postgres, KINDRED_SECRET=SECRET)
    refused = kindred("serve", env=env)
    assert refused.returncode == 2
    assert "pending: run `kindred migrate` first" in refused.stderr and "Traceback" not in refused.stderr
    # Migrating signs nothing, so it needs no secret.
    migrated = kindred("migrate", env=clean_env(DATABASE_URL=empty_postgres))
    assert migrated.returncode == 0 and "applied" in migrated.stdout, migrated.stderr
    again = kindred("migrate", env=clean_env(DATABASE_URL=empty_postgres))
    assert again.returncode == 0 and "up to date" in again.stdout
    # Serving Postgres without a secret is refused in one clear line.
    no_secret = kindred("serve", env=clean_env(DATABASE_URL=empty_postgres))
    assert no_secret.returncode == 2 and "KINDRED_SECRET" in no_secret.stderr

    # Two workers sharing Postgres and Redis.
    proc, url = await serving({**env, "REDIS_URL": REDIS_URL, "KINDRED_REDIS_PREFIX": "kcli"}, "--workers", "2")
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            for _ in range(6):
                assert (await client.get("/healthz")).json()["bus"] == "up"
    finally:
        stop(proc)


def test_demo_seeds_a_circle_once_and_prints_how_to_sign_in(tmp_path: Path) -> None:
    env = clean_env(KINDRED_DATA_DIR=str(tmp_path))
    first = kindred("demo", env=env, timeout=600)
    assert first.returncode == 0, first.stderr
    assert "coach@demo.kindred" in first.stdout and "Quiet River" in first.stdout
    second = kindred("demo", env=env, timeout=600)
    assert second.returncode == 0 and "already exists" in second.stdout
    # The lab is alive: an experiment at every stage, a few small wins, and a journal conversation.
    import sqlite3

    db = sqlite3.connect(tmp_path / "kindred.sqlite3")
    try:
        states = {row[0] for row in db.execute("SELECT experiment_state FROM post WHERE experiment_state IS NOT NULL")}
        assert states == {"planned", "tried", "debriefed", "abandoned"}
        assert db.execute("SELECT COUNT(*) FROM post WHERE kind = 'win' AND parent IS NULL").fetchone()[0] >= 3
        journal_posts = db.execute(
            "SELECT COUNT(DISTINCT p.author) FROM post p JOIN room r ON r.id = p.room WHERE r.kind = 'journal'"
        ).fetchone()[0]
        assert journal_posts == 2, "the member and the coach both wrote in the journal"
    finally:
        db.close()
