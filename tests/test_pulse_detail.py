"""The page's pulse (with the posts behind the counts) and the API's (counts only, open questions counted in SQL)
agree figure by figure, through deleted and hidden posts, replies in other threads and a member who left."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.services import pulse
from db.tables import Post as PostRow
from tests.client import ApiClient, make_circle

pytestmark = pytest.mark.anyio


async def test_the_page_lists_what_the_api_counts(api: ApiClient) -> None:
    c = await make_circle(api, members=3)
    coach, (a, b, d) = c.coach, c.members
    ask = {"kind": "question"}
    # Member1: a question answered in another thread (open); one whose answer was deleted (open again); one hidden.
    a1 = await a.post(c.room_id, "First")
    q1 = await coach.post(c.room_id, "Why?", parent_id=a1["id"], **ask)
    a2 = await a.post(c.room_id, "Second")
    await a.post(c.room_id, "An answer, but to the other thread", parent_id=a2["id"])
    q2 = await coach.post(c.room_id, "And then?", parent_id=a2["id"], **ask)
    gone = await a.post(c.room_id, "Said, then taken back", parent_id=q2["id"])
    await a.ok("DELETE", f"/api/v1/posts/{gone['id']}")
    q3 = await coach.post(c.room_id, "Hidden question", parent_id=a2["id"], **ask)
    await coach.ok("PUT", f"/api/v1/posts/{q3['id']}/hidden", {"reason": "asked twice"})
    # Member2: a question answered in its thread (closed), an experiment past due, a post nobody answers.
    b1 = await b.post(c.room_id, "Mine")
    q4 = await coach.post(c.room_id, "What now?", parent_id=b1["id"], **ask)
    await b.post(c.room_id, "This", parent_id=q4["id"])
    plan = {"assumption": "If I say no she leaves", "belief_before": 80, "action": "say no", "prediction": "cold"}
    e1 = await b.post(c.room_id, "", kind="experiment", experiment=plan)
    await PostRow.update({PostRow.experiment_due_at: datetime.now(UTC) - timedelta(minutes=1)}).where(
        PostRow.id == uuid.UUID(e1["id"])
    )
    alone = await b.post(c.room_id, "Nobody answers me")
    # Member3: an open question, then leaves: gone from the counts and the lists.
    d1 = await d.post(c.room_id, "Leaving soon")
    await coach.post(c.room_id, "Before you go?", parent_id=d1["id"], **ask)
    me = await d.ok("GET", "/api/v1/me")
    mid = next(m["membership_id"] for m in me["memberships"] if m["circle_id"] == c.id)
    await d.ok("DELETE", f"/api/v1/circles/{c.id}/members/{mid}")

    at = datetime.now(UTC)
    page = await pulse.compute(uuid.UUID(c.id), 30, at)
    counts = await pulse.compute(uuid.UUID(c.id), 30, at, detail=False)
    assert counts.pulse == page.pulse, "the same figures both ways"
    assert not (counts.open_questions or counts.unanswered or counts.overdue), "the API builds no lists"
    assert [i.post_id for i in page.open_questions] == [q1["id"], q2["id"]]
    by_alias = {m.member.alias: m for m in page.pulse.members}
    assert list(by_alias) == ["Member1", "Member2"]
    assert (by_alias["Member1"].open_questions, by_alias["Member2"].open_questions) == (2, 0)
    assert page.pulse.circle.open_questions == 2
    assert [i.post_id for i in page.unanswered] == page.pulse.circle.unanswered == [e1["id"], alone["id"]]
    assert [i.post_id for i in page.overdue] == [e1["id"]] and by_alias["Member2"].experiments.overdue == 1
