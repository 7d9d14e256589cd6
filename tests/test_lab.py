"""The lab over the API and the socket, on both backends: an experiment's record on its post, every refusal naming
its field, the lifecycle by its author only, `experiment.changed` live and on replay, the circle's list with its
filters, the coach told of a debrief, and the due reminder exactly once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from db.tables import Post as PostRow
from tests.client import ApiClient, Match, make_circle
from tests.conftest import Server

pytestmark = pytest.mark.anyio

PLAN = {
    "assumption": "If I say no, she will stop trusting me",
    "belief_before": 80,
    "action": "Decline the Friday extra shift, kindly and briefly, on Tuesday",
    "prediction": "She will be cold with me for the rest of the week",
    "prediction_confidence": 70,
    "safety_behaviours": ["over-explaining", "offering to do it next time"],
}


def experiment_event(room_id: str) -> Match:
    return lambda f: f.get("type") == "event" and f["room_id"] == room_id and f["event"] == "experiment.changed"


def soon(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


async def test_an_experiment_is_planned_tried_and_debriefed_live_and_on_replay(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    jackie, peer = c.members
    watching = await peer.ws()
    await watching.subscribe(c.room_id)
    post = await jackie.post(c.room_id, "", kind="experiment", experiment={**PLAN, "due_at": soon(3)})
    record = post["experiment"]
    assert record["state"] == "planned" and record["belief_before"] == 80
    assert record["safety_behaviours"] == PLAN["safety_behaviours"] and record["outcome"] is None
    assert "If I say no, she will stop trusting me" in post["html"] and post["body"] == ""
    created = await watching.recv_until(lambda f: f.get("event") == "post.created")
    assert created["data"]["experiment"]["assumption"] == PLAN["assumption"]

    tried = await jackie.ok("PATCH", f"/api/v1/posts/{post['id']}/experiment", {"state": "tried"})
    assert tried["experiment"]["state"] == "tried" and tried["experiment"]["tried_at"] is not None
    debrief = {
        "state": "debriefed",
        "outcome": "She said fine, and asked about my weekend",
        "matched_prediction": "no",
        "belief_after": 30,
        "learning": "A kind no kept the relationship; the coldness was my prediction, not hers",
    }
    done = await jackie.ok("PATCH", f"/api/v1/posts/{post['id']}/experiment", debrief)
    assert (done["experiment"]["belief_before"], done["experiment"]["belief_after"]) == (80, 30)
    assert "80 → 30" in done["html"]

    live = [await watching.recv_until(experiment_event(c.room_id)) for _ in range(2)]
    assert [f["data"]["experiment"]["state"] for f in live] == ["tried", "debriefed"]
    assert live[1]["data"]["post_id"] == post["id"] and live[1]["seq"] == live[0]["seq"] + 1

    # A socket that comes later replays the whole story, in order.
    late = await peer.ws()
    await late.subscribe(c.room_id, since=0)
    replayed = [await late.recv_until(lambda f: f.get("type") == "event") for _ in range(3)]
    assert [f["event"] for f in replayed] == ["post.created", "experiment.changed", "experiment.changed"]
    assert replayed[2]["data"]["experiment"]["learning"] == debrief["learning"]

    # The post reads as it is now, and the coach heard of the debrief (the peer did not).
    thread = await peer.ok("GET", f"/api/v1/posts/{post['id']}")
    assert thread["experiment"]["state"] == "debriefed"
    coach_notes = await c.coach.ok("GET", "/api/v1/notifications")
    assert [(n["kind"], n["post_id"]) for n in coach_notes] == [("experiment.debriefed", post["id"])]
    assert coach_notes[0]["text"] == "Member1 debriefed an experiment"
    assert await peer.ok("GET", "/api/v1/notifications") == []
    for frame in [created, *live, *replayed]:
        assert jackie.email not in str(frame) and jackie.id not in str(frame)


async def test_every_refusal_names_what_to_fix_and_writes_nothing(api: ApiClient) -> None:
    c = await make_circle(api, members=1)
    jackie = c.members[0]
    path = f"/api/v1/rooms/{c.room_id}/posts"
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({**PLAN, "belief_before": 101}, 400, "belief_before"),
        ({**PLAN, "belief_before": -1}, 400, "belief_before"),
        ({**PLAN, "prediction_confidence": 140}, 400, "prediction_confidence"),
        ({**PLAN, "assumption": "   "}, 400, "assumption"),
        ({**PLAN, "assumption": "x" * 501}, 400, "assumption"),
        ({**PLAN, "action": "x" * 1001}, 400, "action"),
        ({k: v for k, v in PLAN.items() if k != "prediction"}, 400, "prediction"),
        ({**PLAN, "safety_behaviours": ["x"] * 11}, 400, "safety_behaviours"),
        ({**PLAN, "safety_behaviours": ["x" * 201]}, 400, "safety_behaviours"),
        ({**PLAN, "safety_behaviours": [" "]}, 400, "safety_behaviours[0]"),
        ({**PLAN, "due_at": soon(-1)}, 400, "due_at"),
        ({**PLAN, "due_at": soon(61)}, 400, "due_at"),
        ({**PLAN, "due_at": "next tuesday"}, 400, "due_at"),
        ({**PLAN, "mood": "brave"}, 400, "mood"),
    ]
    for experiment, status, field in cases:
        r = await jackie.call("POST", path, {"body": "", "kind": "experiment", "experiment": experiment})
        assert r.status_code == status, (experiment, r.text)
        assert field in r.json()["detail"] + str(r.json().get("extra", "")), (field, r.text)
    r = await jackie.call("POST", path, {"body": "a reflection", "kind": "reflection", "experiment": PLAN})
    assert r.status_code == 400 and 'kind "experiment"' in r.json()["detail"]
    # A first-part client's experiment post, with no record, still works and carries experiment: null.
    bare = await jackie.post(c.room_id, "I will try saying no this week", kind="experiment")
    assert bare["experiment"] is None
    r = await jackie.call("PATCH", f"/api/v1/posts/{bare['id']}/experiment", {"state": "tried"})
    assert r.status_code == 400 and "no experiment record" in r.json()["detail"]
    assert await PostRow.count().where(PostRow.experiment_state.is_not_null()) == 0, "nothing refused was written"


async def test_only_its_author_moves_it_and_only_forwards(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    jackie, peer = c.members
    post = await jackie.post(c.room_id, "trying something", kind="experiment", experiment=PLAN)
    move = f"/api/v1/posts/{post['id']}/experiment"
    r = await peer.call("PATCH", move, {"state": "tried"})
    assert r.status_code == 403 and "only the member who planned" in r.json()["detail"]
    r = await c.coach.call("PATCH", move, {"state": "tried"})
    assert r.status_code == 403
    outsider = await api.signup()
    assert (await outsider.call("PATCH", move, {"state": "tried"})).status_code == 404
    r = await jackie.call("PATCH", move, {"state": "debriefed", "outcome": "it went fine"})
    assert r.status_code == 400 and "learning" in r.json()["detail"]
    r = await jackie.call("PATCH", move, {"state": "debriefed", "outcome": "ok", "learning": "x", "belief_after": 20})
    assert r.status_code == 400 and "matched_prediction" in r.json()["detail"]
    r = await jackie.call("PATCH", move, {"state": "tried", "belief_after": 20})
    assert r.status_code == 400 and "belief_after" in r.json()["detail"]
    r = await jackie.call("PATCH", move, {"state": "planned"})
    assert r.status_code == 409 and "tried or debriefed or abandoned" in r.json()["detail"]
    r = await jackie.call("PATCH", move, {"state": "exploded"})
    assert r.status_code == 400
    await jackie.ok("PATCH", move, {"state": "abandoned", "learning": "Not the right week for it"})
    r = await jackie.call("PATCH", move, {"state": "tried"})
    assert r.status_code == 409 and "cannot move any more" in r.json()["detail"]
    # Nothing refused reached the room: one experiment.changed, the abandon.
    ws = await peer.ws()
    ack = await ws.subscribe(c.room_id, since=0)
    assert ack["last_seq"] == 2, "the room holds two events"
    frames = [await ws.recv_until(lambda f: f.get("type") == "event") for _ in range(2)]
    assert [f["event"] for f in frames] == ["post.created", "experiment.changed"]
    assert frames[1]["data"]["experiment"]["state"] == "abandoned"


async def test_the_circle_lists_its_experiments_with_filters(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    a, b = c.members
    first = await a.post(c.room_id, "", kind="experiment", experiment=PLAN)
    second = await b.post(c.room_id, "", kind="experiment", experiment={**PLAN, "assumption": "If I rest, I fail"})
    third = await a.post(c.room_id, "", kind="experiment", experiment={**PLAN, "assumption": "Asking is weak"})
    await a.post(c.room_id, "just a reflection")
    await a.ok("PATCH", f"/api/v1/posts/{third['id']}/experiment", {"state": "tried"})
    path = f"/api/v1/circles/{c.id}/experiments"
    everything = await b.ok("GET", path)
    assert [p["id"] for p in everything["items"]] == [third["id"], second["id"], first["id"]]
    assert everything["next_before"] is None
    tried = await b.ok("GET", f"{path}?state=tried")
    assert [p["id"] for p in tried["items"]] == [third["id"]]
    me = await a.ok("GET", "/api/v1/me")
    mid = next(m["membership_id"] for m in me["memberships"] if m["circle_id"] == c.id)
    mine = await b.ok("GET", f"{path}?membership_id={mid}")
    assert [p["id"] for p in mine["items"]] == [third["id"], first["id"]]
    page = await b.ok("GET", f"{path}?limit=2")
    assert len(page["items"]) == 2 and page["next_before"] == second["id"]
    rest = await b.ok("GET", f"{path}?limit=2&before={page['next_before']}")
    assert [p["id"] for p in rest["items"]] == [first["id"]]
    # Hidden: gone for peers, still there for its author and the coach; deleted: gone for everyone.
    await c.coach.ok("PUT", f"/api/v1/posts/{first['id']}/hidden", {"reason": "names a colleague"})
    assert first["id"] not in [p["id"] for p in (await b.ok("GET", path))["items"]]
    assert first["id"] in [p["id"] for p in (await a.ok("GET", path))["items"]]
    # Its move would reach every reader of the room (as an edit would): refused while hidden, and nothing written.
    refused = await a.call("PATCH", f"/api/v1/posts/{first['id']}/experiment", {"state": "tried"})
    assert refused.status_code == 409 and "hidden" in refused.json()["detail"]
    assert (await a.ok("GET", f"{path}?state=planned"))["items"][-1]["id"] == first["id"]
    await b.ok("DELETE", f"/api/v1/posts/{second['id']}")
    assert second["id"] not in [p["id"] for p in (await c.coach.ok("GET", path))["items"]]
    assert (await b.call("GET", f"{path}?state=exploded")).status_code == 400
    assert (await b.call("GET", f"{path}?membership_id=nope")).status_code == 400
    outsider = await api.signup()
    assert (await outsider.call("GET", path)).status_code == 404


async def test_the_due_reminder_goes_out_once_however_many_look(api: ApiClient, server: Server) -> None:
    from app.services import lab

    c = await make_circle(api, members=2)
    jackie, peer = c.members
    due = await jackie.post(c.room_id, "", kind="experiment", experiment={**PLAN, "due_at": soon(1)})
    later = await jackie.post(c.room_id, "", kind="experiment", experiment={**PLAN, "due_at": soon(5)})
    done = await peer.post(c.room_id, "", kind="experiment", experiment={**PLAN, "due_at": soon(1)})
    await peer.ok(
        "PATCH",
        f"/api/v1/posts/{done['id']}/experiment",
        {"state": "debriefed", "outcome": "fine", "matched_prediction": "yes", "belief_after": 80, "learning": "x"},
    )
    # A day passes (in the database): the first and the debriefed one are past their time.
    past = datetime.now(UTC) - timedelta(minutes=5)
    for pid in (due["id"], done["id"]):
        await PostRow.update({PostRow.experiment_due_at: past}).where(PostRow.id == uuid.UUID(pid))
    sock = await jackie.ws()
    live = server.app.state["live"]
    # Two instances (or the periodic check and this one) look at the same moment: one reminder.
    await asyncio.gather(lab.send_due(live), lab.send_due(live), lab.send_due(live))
    assert await lab.send_due(live) == 0, "claimed once, never again"
    frame = await sock.recv_until(lambda f: f.get("type") == "notification")
    assert (frame["data"]["kind"], frame["data"]["post_id"]) == ("experiment.due", due["id"])
    notes = await jackie.ok("GET", "/api/v1/notifications")
    assert [(n["kind"], n["post_id"]) for n in notes] == [("experiment.due", due["id"])]
    assert notes[0]["text"] == "Time to look back at your experiment. How did it go?"
    assert later["id"] not in str(notes)
    assert [n["kind"] for n in await peer.ok("GET", "/api/v1/notifications")] == [], "a debriefed one is not due"


async def test_peers_cheer_and_the_coach_asks_on_an_experiment_as_on_any_post(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    jackie, peer = c.members
    post = await jackie.post(c.room_id, "", kind="experiment", experiment=PLAN)
    await peer.ok("PUT", f"/api/v1/posts/{post['id']}/like")
    await peer.post(c.room_id, "Go for it, you've got this", parent_id=post["id"])
    await c.coach.post(c.room_id, "What would tell you it went well?", kind="question", parent_id=post["id"])
    await c.coach.ok("PUT", f"/api/v1/posts/{post['id']}/like")
    kinds = sorted(n["kind"] for n in await jackie.ok("GET", "/api/v1/notifications"))
    assert kinds == ["coach_like", "like", "question", "reply"]
    got = await jackie.ok("GET", f"/api/v1/posts/{post['id']}")
    assert got["like_count"] == 2 and got["liked_by_coach"] and got["experiment"]["state"] == "planned"
