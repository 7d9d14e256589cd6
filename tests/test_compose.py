"""compose.yaml cannot be run here (no Docker engine), so it is read and checked instead."""

from __future__ import annotations

from pathlib import Path

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
    assert "uv sync --frozen --no-dev" in dockerfile
    for package in ("app", "realtime", "db", "web"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert 'CMD ["kindred", "serve", "--host", "0.0.0.0", "--port", "8000"]' in dockerfile
