"""The pages' small in-page forms for a post (a pin's note, the reasons to hide or remove, a report), over HTTP on
both backends: what is typed arrives as typed, an empty reason is a 400 in words, an unknown form a 404, and a
report after a resolved one reopens it, and the welcome card is put away once for every device."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.client import ApiClient, User, make_circle

pytestmark = pytest.mark.anyio

TYPED = "“Names” — leave them out ✓"


async def page_call(api: ApiClient, user: User, method: str, path: str, **form: str) -> Any:
    return await api.http.request(
        method, path, data=form or None, headers={**user.headers, "HX-Request": "true", "HX-Trigger": "f"}
    )


async def test_in_page_forms_carry_what_is_typed(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    post = await a.post(c.room_id, "Jo at Acme again")
    pid = post["id"]

    for which in ("pin", "hide", "remove", "report"):
        shown = await page_call(api, c.coach, "GET", f"/posts/{pid}/form/{which}")
        assert shown.status_code == 200 and f'id="{which}-{pid}"' in shown.text
    unknown = await page_call(api, c.coach, "GET", f"/posts/{pid}/form/delete-everything")
    assert unknown.status_code == 404 and "no such form" in unknown.text
    asking = await page_call(api, c.coach, "GET", f"/posts/{pid}/reply?kind=question")
    assert 'name="kind" value="question"' in asking.text and "Ask Member1 a question" in asking.text
    plain = await page_call(api, c.coach, "GET", f"/posts/{pid}/reply")
    assert 'value="question"' not in plain.text

    assert (await page_call(api, c.coach, "PUT", f"/posts/{pid}/pin", note=TYPED)).status_code == 200
    assert (await a.ok("GET", f"/api/v1/circles/{c.id}/insights"))[0]["pin_note"] == TYPED

    # An empty reason is refused in words, beside the form; the control with words is accepted.
    empty = await page_call(api, c.coach, "PUT", f"/posts/{pid}/hidden", reason="  ")
    assert empty.status_code == 400 and "give a reason" in empty.text
    assert empty.headers["hx-retarget"] == "#f-error"
    assert (await a.ok("GET", f"/api/v1/posts/{pid}"))["hidden"] is False
    assert (await page_call(api, c.coach, "PUT", f"/posts/{pid}/hidden", reason=TYPED)).status_code == 200
    assert (await a.ok("GET", f"/api/v1/posts/{pid}"))["moderation_reason"] == TYPED

    other = await a.post(c.room_id, "Call me on 555-0100")
    removed = await page_call(api, c.coach, "POST", f"/posts/{other['id']}/removal", reason="No phone numbers")
    assert removed.status_code == 200 and "deleted" in removed.text

    # Reports: thanked the first time, told the truth while it is open, reopened after the coach looked.
    third = await a.post(c.room_id, "Everyone here is too soft.")
    silent = await page_call(api, b, "POST", f"/posts/{third['id']}/report", reason=" ")
    assert silent.status_code == 400 and "what is wrong" in silent.text
    assert await c.coach.ok("GET", f"/api/v1/circles/{c.id}/reports") == []
    first = await page_call(api, b, "POST", f"/posts/{third['id']}/report", reason="Unkind")
    assert "Thank you. Your coach will look at it." in first.text
    again = await page_call(api, b, "POST", f"/posts/{third['id']}/report", reason="Still unkind")
    assert "You already reported this post" in again.text
    queue = await c.coach.ok("GET", f"/api/v1/circles/{c.id}/reports")
    assert [r["reason"] for r in queue] == ["Unkind"]
    await c.coach.ok("POST", f"/api/v1/reports/{queue[0]['id']}/resolve", {"action": "dismiss"}, status=200)
    assert await c.coach.ok("GET", f"/api/v1/circles/{c.id}/reports") == [], "dismissed: the open queue is empty"
    # Once the coach has looked at it, reporting again reopens it with the new reason, back in the queue.
    after = await page_call(api, b, "POST", f"/posts/{third['id']}/report", reason="It is still there")
    assert "Thank you. Your coach will look at it." in after.text
    reopened = await c.coach.ok("GET", f"/api/v1/circles/{c.id}/reports")
    assert [(r["id"], r["reason"], r["resolved_at"]) for r in reopened] == [(queue[0]["id"], "It is still there", None)]
    kinds = [n["kind"] for n in await c.coach.ok("GET", "/api/v1/notifications")]
    assert kinds.count("report") == 2, "the coach is told again"


async def test_the_welcome_card_is_put_away_once_for_every_device(api: ApiClient) -> None:
    """Stored on the membership, not in a cookie: once put away (Got it, or its next step) it is gone on any client;
    another new member still gets theirs (the control)."""
    c = await make_circle(api, members=2)
    a, b = c.members
    for user in (a, b):
        page = await api.http.get(f"/circles/{c.id}", headers=user.headers)
        assert page.status_code == 200 and "welcome-card" in page.text
    coach_page = await api.http.get(f"/circles/{c.id}", headers=c.coach.headers)
    assert "welcome-card" not in coach_page.text, "the coach gets no welcome card"
    got_it = await page_call(api, a, "POST", f"/circles/{c.id}/welcomed")
    assert got_it.status_code == 200 and got_it.text == ""
    async with httpx.AsyncClient(base_url=api.base_url) as other_device:
        again = await other_device.get(f"/circles/{c.id}", headers=a.headers)
        assert again.status_code == 200 and "What we share" in again.text and "welcome-card" not in again.text
    assert "welcome-card" in (await api.http.get(f"/circles/{c.id}", headers=b.headers)).text
    # The next step: on to the room's composer, and the card is put away too.
    wrong = await api.http.post(f"/circles/{c.id}/welcomed", data={"next": "not-a-room"}, headers=b.headers)
    assert wrong.status_code == 400 and "next must be a room" in wrong.text
    assert "welcome-card" in (await api.http.get(f"/circles/{c.id}", headers=b.headers)).text, "nothing written"
    step = await api.http.post(f"/circles/{c.id}/welcomed", data={"next": c.room_id}, headers=b.headers)
    assert step.status_code == 303 and step.headers["location"] == f"/rooms/{c.room_id}#composer"
    assert "welcome-card" not in (await api.http.get(f"/circles/{c.id}", headers=b.headers)).text
    # Someone else's circle: 404, as for every circle page.
    outsider = await api.signup()
    assert (await page_call(api, outsider, "POST", f"/circles/{c.id}/welcomed")).status_code == 404
