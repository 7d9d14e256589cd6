"""Two `kindred serve` instances on one Postgres queue and a real SMTP server (aiosmtpd in the test process): every
mail is delivered exactly once (by Message-ID) while both senders run, and mail the server refuses (4xx, then 5xx)
is retried until it is taken, and then delivered once."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest

from tests.client import PASSWORD
from tests.conftest import REDIS_URL
from tests.procs import KindredProcess
from tests.smtp import MailCatcher, catcher

pytestmark = [pytest.mark.anyio, pytest.mark.multi]

OPS_TOKEN = "ops-token-for-mail-tests"
MAILS = 24


@pytest.fixture
def smtp() -> Iterator[MailCatcher]:
    yield from catcher()


@contextlib.asynccontextmanager
async def two_senders(pg_url: str, smtp: MailCatcher) -> AsyncIterator[list[KindredProcess]]:
    prefix = f"kt{uuid.uuid4().hex[:8]}"
    env = {
        "KINDRED_OPS_TOKEN": OPS_TOKEN,
        "KINDRED_SMTP_URL": smtp.url,
        "KINDRED_MAIL_FROM": "Kindred <hello@kindred.test>",
        "KINDRED_PUBLIC_URL": "http://127.0.0.1:9",
        "KINDRED_MAIL_INTERVAL": "0.1",
        "KINDRED_MAIL_RETRY_SECONDS": "0.1",
        "KINDRED_RESETS_PER_ADDRESS": "1000",
        "KINDRED_RESETS_PER_EMAIL": "1000",
    }
    procs = [KindredProcess(pg_url, REDIS_URL, prefix, **env) for _ in range(2)]
    try:
        await asyncio.gather(*(p.start() for p in procs))
        yield procs
    finally:
        for p in procs:
            p.stop()


async def queue_empty(pg_url: str) -> None:
    """Wait until no mail is queued (each row sent): the SMTP server's 250 arrives a moment before it is recorded."""
    conn = await asyncpg.connect(pg_url)
    try:
        async with asyncio.timeout(20):
            # Other processes' writes: there is no event to wait on here, only the table to read again.
            while await conn.fetchval("SELECT count(*) FROM mail_message WHERE state = 'queued'"):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def mail_stats(http: httpx.AsyncClient, proc: KindredProcess) -> dict[str, int]:
    r = await http.get(f"{proc.url}/healthz", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
    stats: dict[str, int] = r.json()["mail"]
    return stats


async def row_ids(pg_url: str) -> list[str]:
    conn = await asyncpg.connect(pg_url)
    try:
        return [r["id"].hex for r in await conn.fetch("SELECT id FROM mail_message")]
    finally:
        await conn.close()


def delivered_once(smtp: MailCatcher, ids: list[str]) -> None:
    """Each queued mail arrived exactly once: its Message-ID carries its row's id."""
    message_ids = [m["Message-ID"] for m in smtp.messages]
    assert len(message_ids) == len(set(message_ids)) == len(ids)
    for row in ids:
        assert sum(row in mid for mid in message_ids) == 1, row


async def test_two_instances_deliver_every_mail_once_and_retry_refusals(pg_url: str, smtp: MailCatcher) -> None:
    async with two_senders(pg_url, smtp) as procs, httpx.AsyncClient(timeout=20) as http:
        email = f"twice-{uuid.uuid4().hex[:6]}@example.org"
        body = {"email": email, "password": PASSWORD, "name": "Em"}
        assert (await http.post(f"{procs[0].url}/api/v1/accounts", json=body)).status_code == 201
        # Resets through both instances at once (each a mail; KINDRED_RESETS_PER_EMAIL is lifted): each instance's
        # sender is woken by its own commits, and both claim from the one queue.
        answers = await asyncio.gather(
            *(http.post(f"{procs[i % 2].url}/api/v1/auth/reset", json={"email": email}) for i in range(MAILS))
        )
        assert {a.status_code for a in answers} == {202}
        await smtp.wait_for(MAILS)
        await queue_empty(pg_url)
        # The control: a mail queued after everything above was recorded arrives; nothing else came meanwhile.
        late = await http.post(f"{procs[1].url}/api/v1/auth/reset", json={"email": email})
        assert late.status_code == 202
        await smtp.wait_for(MAILS + 1)
        await queue_empty(pg_url)
        ids = await row_ids(pg_url)
        assert len(ids) == MAILS + 1
        delivered_once(smtp, ids)
        sent = [(await mail_stats(http, p))["sent"] for p in procs]
        assert sum(sent) == MAILS + 1 and all(n > 0 for n in sent), sent

        # The server refuses twice (busy, then strict), then takes it: delivered once, after three attempts.
        smtp.refusals = ["451 4.3.0 try again later", "554 5.7.1 not now"]
        refused = await http.post(f"{procs[0].url}/api/v1/auth/reset", json={"email": email})
        assert refused.status_code == 202
        await smtp.wait_for(MAILS + 2)
        await queue_empty(pg_url)
        assert smtp.refused == 2
        conn = await asyncpg.connect(pg_url)
        try:
            row = await conn.fetchrow(
                "SELECT state, attempts, last_error FROM mail_message ORDER BY created_at DESC LIMIT 1"
            )
        finally:
            await conn.close()
        assert row is not None and row["state"] == "sent" and row["attempts"] == 3, row
        assert "554" in row["last_error"]
        delivered_once(smtp, await row_ids(pg_url))
        stats = [await mail_stats(http, p) for p in procs]
        assert sum(s["retried"] for s in stats) == 2 and sum(s["sent"] for s in stats) == MAILS + 2
