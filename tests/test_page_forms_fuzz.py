"""Hypothesis against the page forms, on both backends: whatever a browser (or someone pretending to be one) posts to
the invite, pause, room, circle and drop-in forms, the answer is never a 5xx, and a refusal says what to fix.

Hypothesis drives a synchronous client from a worker thread while the server keeps running on the test's event
loop, so every example is a real HTTP request through the real middleware, CSRF included."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import anyio.to_thread
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.client import ApiClient, make_circle, page_client

pytestmark = pytest.mark.anyio

# Limits raised so examples are spent on the forms, not on 429s (limits have their own tests).
GENEROUS = {
    name: "1000000"
    for name in (
        "KINDRED_INVITES_PER_HOUR",
        "KINDRED_CIRCLES_PER_HOUR",
        "KINDRED_ROOMS_PER_HOUR",
    )
}

# Numbers as people and scripts write them: digits of other scripts ("²", "٣"), signs, huge and tiny values.
NUMBERISH = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["", " ", "²", "٣", "1e3", "0x10", "+5", "-0", "1.5", "99999999999999999999999", "３"]),
    st.text(alphabet=st.characters(categories=["Nd", "No", "Zs", "Pd"]), max_size=6),
)
TEXT = st.one_of(
    st.sampled_from(["Saying no", "Experiments", "Quiet River", "", "  "]),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=60),
    st.integers(min_value=0, max_value=6000).map(lambda n: "x" * n),
)
DATES = st.one_of(
    st.integers(min_value=-2, max_value=400).map(
        lambda days: (datetime.now() + timedelta(days=days)).isoformat(timespec="minutes")
    ),
    st.datetimes().map(lambda d: d.isoformat(timespec="minutes")),
    st.sampled_from(["", "9999-12-31T23:59", "0001-01-01T00:00", "2026-13-40T25:61", "tomorrow", "2027-02-29T10:00"]),
)


@pytest.mark.parametrize("settings_env", [GENEROUS])
async def test_page_forms_never_answer_5xx(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    target = (await c.members[0].ok("GET", "/api/v1/me"))["memberships"][0]["membership_id"]
    async with page_client(api, c.coach) as pages:
        cookies = dict(pages.cookies)
        headers = dict(pages.headers)
    forms: list[tuple[str, str, Any]] = [
        ("POST", f"/circles/{c.id}/invites", st.fixed_dictionaries({"max_uses": NUMBERISH, "hours": NUMBERISH})),
        (
            "PUT",
            f"/circles/{c.id}/members/{target}/mute",
            st.fixed_dictionaries({"minutes": NUMBERISH, "reason": TEXT}),
        ),
        ("POST", f"/circles/{c.id}/rooms", st.fixed_dictionaries({"name": TEXT, "topic": TEXT})),
        (
            "POST",
            "/circles/new",
            st.fixed_dictionaries({"name": TEXT, "commonality": TEXT, "norms": TEXT, "coach_alias": TEXT}),
        ),
        (
            "POST",
            f"/circles/{c.id}/dropins",
            st.fixed_dictionaries(
                {
                    "title": TEXT,
                    "starts_at": DATES,
                    "duration_minutes": NUMBERISH,
                    "tz_offset": NUMBERISH,
                    "agenda": TEXT,
                }
            ),
        ),
    ]

    def fuzz_one(client: httpx.Client, method: str, path: str, strategy: Any) -> None:
        @settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
        @given(form=strategy, htmx=st.booleans())
        def one_form(form: dict[str, str], htmx: bool) -> None:
            extra = {"hx-request": "true"} if htmx else {}
            response = client.request(method, path, data=form, headers=extra)
            assert response.status_code < 500, (method, path, form, response.status_code, response.text[:300])
            if response.status_code >= 400:
                assert response.status_code in (400, 403, 404, 409, 413, 429), (path, form, response.text)

        one_form()

    def fuzz() -> None:
        with httpx.Client(base_url=api.base_url, cookies=cookies, headers=headers, timeout=20) as client:
            for method, path, strategy in forms:
                fuzz_one(client, method, path, strategy)

    await anyio.to_thread.run_sync(fuzz)
    # Good input still works through the same forms.
    async with page_client(api, c.coach) as pages:
        made = await pages.post(f"/circles/{c.id}/invites", data={"max_uses": "10", "hours": "24"})
        assert made.status_code == 200 and "/join/" in made.text
        refused = await pages.post(f"/circles/{c.id}/invites", data={"max_uses": "²", "hours": "24"})
        assert refused.status_code == 400 and "max_uses" in refused.text
        huge = await pages.post(f"/circles/{c.id}/invites", data={"max_uses": "99999999999999999999999"})
        assert huge.status_code == 400 and "max_uses" in huge.text
