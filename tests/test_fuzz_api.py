"""Schemathesis against /schema/openapi.json on a running `kindred serve`, on both backends: generated and mutated
requests for every operation (coverage, fuzzing and stateful phases, bounded), and not one 5xx."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.client import ApiClient, make_circle
from tests.conftest import REDIS_URL
from tests.procs import ROOT, KindredProcess

pytestmark = [pytest.mark.anyio, pytest.mark.multi]

# CI's short run; the deep run (docs/reliability.md) sets KINDRED_FUZZ_EXAMPLES=500 and a longer KINDRED_FUZZ_SECONDS.
EXAMPLES = os.environ.get("KINDRED_FUZZ_EXAMPLES", "12")
SECONDS = float(os.environ.get("KINDRED_FUZZ_SECONDS", "300"))

# Limits raised so the fuzzer spends its budget on behaviour, not on 429s (limits have their own tests).
GENEROUS = {
    name: "1000000"
    for name in (
        "KINDRED_POSTS_PER_MINUTE",
        "KINDRED_GESTURES_PER_MINUTE",
        "KINDRED_INVITES_PER_HOUR",
        "KINDRED_JOINS_PER_HOUR",
        "KINDRED_LOGINS_PER_ACCOUNT",
        "KINDRED_LOGINS_PER_ADDRESS",
        "KINDRED_SIGNUPS_PER_ADDRESS",
        "KINDRED_REPORTS_PER_HOUR",
        "KINDRED_EDITS_PER_MINUTE",
        "KINDRED_ALIAS_CHANGES_PER_HOUR",
        "KINDRED_CIRCLES_PER_HOUR",
        "KINDRED_ROOMS_PER_HOUR",
        "KINDRED_LOGIN_FAILURES_PER_EMAIL",
        "KINDRED_RESETS_PER_ADDRESS",
    )
}


async def test_no_request_makes_a_server_error(backend: str, database_url: str, tmp_path: Path) -> None:
    proc = KindredProcess(
        database_url, REDIS_URL if backend == "postgres" else None, f"kf{uuid.uuid4().hex[:8]}", **GENEROUS
    )
    await proc.start()
    api = ApiClient(proc.url, proc.ws_url)
    try:
        c = await make_circle(api, members=2)
        post = await c.members[0].post(c.room_id, "fuzz target")
        reply = await c.members[1].post(c.room_id, "reply", parent_id=post["id"])
        report = await c.members[1].ok("POST", f"/api/v1/posts/{post['id']}/reports", {"reason": "seed"})
        notes = await c.members[0].ok("GET", "/api/v1/notifications")
        me = await c.members[0].ok("GET", "/api/v1/me")
        ids = {
            "circle_id": [c.id],
            "room_id": [c.room_id],
            "post_id": [post["id"], reply["id"]],
            "membership_id": [me["memberships"][0]["membership_id"]],
            "code": [c.invite],
            "report_id": [report["id"]],
            "id": [n["id"] for n in notes],
        }
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks", "KINDRED_FUZZ_IDS": json.dumps(ids)}
        command = [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{proc.url}/schema/openapi.json",
            "-H",
            f"Authorization: Bearer {c.coach.token}",
            "--checks",
            "not_a_server_error",
            "--phases",
            "coverage,fuzzing,stateful",
            "--max-examples",
            EXAMPLES,
            "--seed",
            "7",
            "--no-shrink",
            "--workers",
            "1",
            "--request-timeout",
            "20",
            # These end the token the run uses; they have their own tests.
            "--exclude-path",
            "/api/v1/auth/logout",
            "--exclude-path",
            "/api/v1/me/password",
            "--exclude-operation-id",
            "ApiV1MeDeleteMe",
        ]
        result = await asyncio.to_thread(
            subprocess.run, command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=SECONDS
        )
        output = result.stdout + result.stderr
        if report := os.environ.get("KINDRED_FUZZ_REPORT"):
            await asyncio.to_thread(Path(f"{report}-{backend}.txt").write_text, output)
        assert result.returncode == 0, output[-4000:]
        assert " passed" in output and "failed" not in output.split("SUMMARY")[-1], output[-2000:]
        server_log = proc.log.read_text()
        assert "unhandled error" not in server_log and "Traceback" not in server_log, server_log[-4000:]
    finally:
        await api.aclose()
        proc.stop()
