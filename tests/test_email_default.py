"""A newcomer on the embedded default (no SMTP server): the reset mail is written to the log and kept, `kindred mail`
shows it, and its link, built from the allowed host and the served port, sets a new password."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.client import DEADLINE, PASSWORD
from tests.procs import ROOT, KindredProcess

pytestmark = pytest.mark.anyio


async def test_without_smtp_the_reset_link_is_in_the_log_and_in_kindred_mail(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kindred.sqlite3'}"
    proc = KindredProcess(url, None, "ktmail", KINDRED_MAIL_INTERVAL="0.2")
    await proc.start()
    try:
        async with httpx.AsyncClient(base_url=proc.url, timeout=10) as http:
            email = "newcomer@example.org"
            r = await http.post("/api/v1/accounts", json={"email": email, "password": PASSWORD, "name": "New"})
            assert r.status_code == 201
            assert (await http.post("/api/v1/auth/reset", json={"email": email})).status_code == 202
            link = re.compile(rf"http://localhost:{proc.port}/reset/([A-Za-z0-9_-]+)")
            async with asyncio.timeout(DEADLINE):
                # Another process's log file: there is no event to wait on, only the file to read again.
                while not (found := link.search(proc.log.read_text())):  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
            listing = subprocess.run(  # noqa: ASYNC221 (the server is another process; this loop runs only the test)
                [sys.executable, "-m", "app.cli", "mail"], env=proc.env, cwd=ROOT, capture_output=True, text=True
            )
            assert listing.returncode == 0, listing.stderr
            assert "logged  reset  to newcomer@example.org" in listing.stdout
            assert found.group(0) in listing.stdout
            done = await http.post(
                "/api/v1/auth/reset/confirm", json={"token": found.group(1), "password": "a fresh new passphrase"}
            )
            assert done.status_code == 204
    finally:
        proc.stop()
