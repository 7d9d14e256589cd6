"""Limits counted in Redis are shared: two `kindred serve` processes with one Redis give one allowance, not two."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from tests.conftest import REDIS_URL, Templates
from tests.procs import KindredProcess

pytestmark = [pytest.mark.anyio, pytest.mark.multi]


async def test_a_per_address_limit_is_shared_by_two_instances(templates: Templates) -> None:
    pg_url = await templates.postgres()
    prefix = f"kt{uuid.uuid4().hex[:8]}"
    procs = [KindredProcess(pg_url, REDIS_URL, prefix, KINDRED_LOGINS_PER_ADDRESS="4") for _ in range(2)]
    await asyncio.gather(*(p.start() for p in procs))
    try:
        async with httpx.AsyncClient(timeout=20) as client:
            codes = []
            for n in range(5):
                # Alternate instances; malformed bodies are counted before they are read, and cost no hashing.
                target = procs[n % 2]
                r = await client.post(
                    f"{target.url}/api/v1/auth/login", json={"email": f"n{n}@example.org", "password": ""}
                )
                codes.append(r.status_code)
            assert codes == [400, 400, 400, 400, 429], codes
            other = await client.post(
                f"{procs[1].url}/api/v1/auth/login", json={"email": "x@example.org", "password": ""}
            )
            assert other.status_code == 429 and int(other.headers["retry-after"]) >= 1
    finally:
        for proc in procs:
            proc.stop()
