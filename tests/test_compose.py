"""compose.yaml cannot be run here (no Docker engine), so it is read and checked instead."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_runs_two_instances_on_shared_postgres_and_redis() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "kindred-a", "kindred-b"} <= set(services)
    instances = [services["kindred-a"], services["kindred-b"]]
    for svc in instances:
        env = svc["environment"]
        assert env["DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert "KINDRED_SECRET" in env
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert svc["depends_on"]["redis"]["condition"] == "service_healthy"
    assert instances[0]["environment"] == instances[1]["environment"], "instances must share database, Redis, secret"
    assert {p.split(":")[0] for svc in instances for p in svc["ports"]} == {"8001", "8002"}
    assert services["migrate"]["command"] == ["kindred", "migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    db = services["postgres"]["environment"]
    assert (
        f"{db['POSTGRES_USER']}:{db['POSTGRES_PASSWORD']}@postgres:5432/{db['POSTGRES_DB']}"
        in instances[0]["environment"]["DATABASE_URL"]
    )


def test_dockerfile_installs_the_locked_app_and_serves() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "uv sync --frozen --no-default-groups" in dockerfile
    for package in ("app", "realtime", "db", "web"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert 'CMD ["kindred", "serve", "--host", "0.0.0.0", "--port", "8000"]' in dockerfile


def test_the_image_gets_the_app_dependencies_and_nothing_for_tests_or_benchmarks() -> None:
    """What the Dockerfile's `uv sync` line would install, read from the lock with the same flags."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on the PATH")
    lines = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("RUN uv sync")]
    flags = [f for f in shlex.split(lines[-1])[3:] if f != "--no-install-project"]
    exported = subprocess.run(
        [uv, "export", *flags, "--no-hashes", "--no-emit-project"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    names = {line.split("==")[0].strip() for line in exported.splitlines() if "==" in line}
    assert {"litestar", "piccolo", "msgspec", "uvicorn", "redis", "nh3", "argon2-cffi"} <= names
    assert not names & {"pytest", "playwright", "schemathesis", "matplotlib", "py-spy", "psutil", "mypy", "ruff"}
