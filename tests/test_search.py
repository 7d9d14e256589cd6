"""Search within a circle on both backends: matching, ranking, phrases, exclusions, the prefix, filters, paging,
sanitized highlights, every wall (other circles, journals, hidden and deleted posts, removed members), and the index
following edits, deletes and hides at once. Each wall has a control that the same caller does find."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from app.services.search_query import MARK_OPEN
from tests.client import ApiClient, User, make_circle

pytestmark = pytest.mark.anyio


async def mid_of(user: User, circle_id: str) -> str:
    me = await user.ok("GET", "/api/v1/me")
    return str(next(m["membership_id"] for m in me["memberships"] if m["circle_id"] == circle_id))


async def find(user: User, circle_id: str, q: str, **params: Any) -> list[str]:
    r = await user.call("GET", f"/api/v1/circles/{circle_id}/search", params={"q": q, **params})
    assert r.status_code == 200, r.text
    page = r.json()
    return [hit["post"]["id"] for hit in page["items"]]


async def test_search_matches_ranks_pages_and_filters(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    ana, ben = c.members

    async def say(body: str) -> dict[str, Any]:
        return await ana.post(c.room_id, body)

    strong = await say("Saying no to my mother. Saying no felt scary, but saying no worked.")
    weak = await say("I keep saying yes when I want to refuse; maybe next week I try no.")
    phrase = await say("My mother said no to me, for once.")
    other = await say("Boundaries at work with my manager")
    html_post = await say('I wrote <script>alert("no")</script> & said **no** again')
    reply = await ben.post(c.room_id, "Rejection hurts, yet saying no was right", parent_id=strong["id"])
    win = await ben.post(c.room_id, "A win: I said no to overtime", kind="win")
    plan = {
        "assumption": "If I refuse overtime my boss will fire me",
        "belief_before": 80,
        "action": "refuse",
        "prediction": "fired",
    }
    exp = await ben.post(c.room_id, "", kind="experiment", experiment=plan)
    await c.coach.ok("PUT", f"/api/v1/posts/{win['id']}/pin", {"note": "key"})

    base = f"/api/v1/circles/{c.id}/search"
    # Matching and ranking: the post that says it three times comes before one that says it once.
    found = await find(ana, c.id, "saying no ")
    assert found[0] == strong["id"] and set(found) == {strong["id"], weak["id"], reply["id"]}
    # A phrase holds its words in order; an exclusion takes posts out; the last word is a prefix while typing.
    assert set(await find(ana, c.id, '"said no"')) == {phrase["id"], html_post["id"], win["id"]}
    assert set(await find(ana, c.id, '"said no" -mother')) == {html_post["id"], win["id"]}
    assert await find(ana, c.id, "rejec") == [reply["id"]]
    assert await find(ana, c.id, "rejec ") == [], "a trailing space: whole words only"
    assert await find(ana, c.id, "refuse overtime") == [exp["id"]], "the experiment's assumption is searched"
    # Highlights: matches in <mark>, everything else escaped.
    r = await ana.call("GET", base, params={"q": "alert"})
    snippet = r.json()["items"][0]["snippet_html"]
    assert "<mark>alert</mark>" in snippet and "<script>" not in snippet and "&lt;script&gt;" in snippet
    assert all(tag in ("<mark>", "</mark>") for tag in re.findall(r"<[^>]*>", snippet))

    # Filters: kind, room, member, pinned, experiment state.
    assert await find(ana, c.id, "overtime", kind="win") == [win["id"]]
    assert await find(ana, c.id, "overtime", pinned="true") == [win["id"]]
    assert await find(ana, c.id, "overtime", state="planned") == [exp["id"]]
    ben_mid = await mid_of(ben, c.id)
    assert set(await find(ana, c.id, "no", membership_id=ben_mid)) == {reply["id"], win["id"]}
    assert set(await find(ana, c.id, "manager", room_id=c.room_id)) == {other["id"]}
    for params, name in (
        ({"q": "no", "kind": "poem"}, "kind"),
        ({"q": "no", "room_id": "nope"}, "room_id"),
        ({"q": "no", "membership_id": c.id}, "membership_id"),
        ({"q": "n"}, "q"),
        ({"q": "x" * 201}, "q"),
        ({}, "q"),
        ({"q": "no", "limit": "0"}, "limit"),
    ):
        r = await ana.call("GET", base, params=params)
        assert r.status_code == 400 and name in r.text, (params, r.text)

    # Paging: pages do not overlap and together are the whole list; the last page says so.
    everything = await find(ana, c.id, "no", limit=50)
    first = (await ana.call("GET", base, params={"q": "no", "limit": 3})).json()
    second = (await ana.call("GET", base, params={"q": "no", "limit": 3, "offset": first["next_offset"]})).json()
    assert first["next_offset"] == 3
    assert [h["post"]["id"] for h in first["items"] + second["items"]] == everything[:6]
    last = (await ana.call("GET", base, params={"q": "no", "limit": 50})).json()
    assert last["next_offset"] is None

    # Others who tested a similar assumption: ana's experiment finds ben's, not itself.
    mine = await ana.post(
        c.room_id, "", kind="experiment", experiment={**plan, "assumption": "My boss fires me if I refuse"}
    )
    similar = await ana.ok("GET", f"/api/v1/posts/{mine['id']}/similar-experiments")
    assert [h["post"]["id"] for h in similar["items"]] == [exp["id"]]
    assert "<mark>" in similar["items"][0]["snippet_html"]

    # Hostile queries: never a 500, and they find what their words find.
    for q in (
        '"unbalanced',
        "NEAR(a b)",
        "body:no*",
        "x'); DROP TABLE post; --",
        "no\x00no",
        "a & | ! <->",
        '""',
        "-no",
        "{body} : no",
        "^no",
        "no OR mother",
        "%00%",
    ):
        r = await ana.call("GET", base, params={"q": q})
        assert r.status_code in (200, 400), (q, r.status_code, r.text)


async def test_search_walls_and_the_index_following_every_write(api: ApiClient) -> None:
    c = await make_circle(api, members=2)
    ana, ben = c.members
    other = await make_circle(api, members=0)
    ana_mid = await mid_of(ana, c.id)

    public = await ana.post(c.room_id, "zebracanary in the room")
    journal = await ana.ok("GET", f"/api/v1/memberships/{ana_mid}/journal")
    private = await ana.post(journal["id"], "zebracanary in my journal")
    hidden = await ana.post(c.room_id, "zebracanary that the coach hides")
    await c.coach.ok("PUT", f"/api/v1/posts/{hidden['id']}/hidden", {"reason": "too much"})
    deleted = await ben.post(c.room_id, "zebracanary that ben deletes")
    await ben.ok("DELETE", f"/api/v1/posts/{deleted['id']}")
    elsewhere = await other.coach.post(other.room_id, "zebracanary in another circle")

    # The coach: everything of the circle (the hidden post marked), never the deleted one or another circle.
    page = await c.coach.ok("GET", f"/api/v1/circles/{c.id}/search?q=zebracanary")
    by_id = {h["post"]["id"]: h["post"] for h in page["items"]}
    assert set(by_id) == {public["id"], private["id"], hidden["id"]}
    assert by_id[hidden["id"]]["hidden"] is True and by_id[public["id"]]["hidden"] is False
    # Ana: her journal and her hidden post (marked); Ben: only the room's post (the control).
    assert set(await find(ana, c.id, "zebracanary")) == {public["id"], private["id"], hidden["id"]}
    assert await find(ben, c.id, "zebracanary") == [public["id"]]
    r = await ben.call("GET", f"/api/v1/circles/{c.id}/search", params={"q": "zebracanary", "room_id": journal["id"]})
    assert r.status_code == 400
    # Outsiders: 404, like the circle itself; the other circle's coach finds only their own post.
    assert (await other.coach.call("GET", f"/api/v1/circles/{c.id}/search?q=zebracanary")).status_code == 404
    assert await find(other.coach, other.id, "zebracanary") == [elsewhere["id"]]

    # Edits are re-indexed at once: the old word is gone, the new one found; a shown-again post is back for Ben.
    await ana.ok("PATCH", f"/api/v1/posts/{public['id']}", {"body": "quaggaword now"})
    assert await find(ben, c.id, "zebracanary") == []
    assert await find(ben, c.id, "quaggaword") == [public["id"]]
    await c.coach.ok("DELETE", f"/api/v1/posts/{hidden['id']}/hidden", status=200)
    assert await find(ben, c.id, "zebracanary") == [hidden["id"]]
    await ana.ok("DELETE", f"/api/v1/posts/{hidden['id']}")
    assert await find(c.coach, c.id, "zebracanary") == [private["id"]]

    # A removed member: 404 from then on; their posts stay in the circle (as the rooms show them) and are found.
    kept = await ben.post(c.room_id, "okapiword by ben")
    ben_mid = await mid_of(ben, c.id)
    await c.coach.ok("DELETE", f"/api/v1/circles/{c.id}/members/{ben_mid}")
    assert (await ben.call("GET", f"/api/v1/circles/{c.id}/search?q=okapiword")).status_code == 404
    assert await find(ana, c.id, "okapiword") == [kept["id"]]
    room = await ana.ok("GET", f"/api/v1/rooms/{c.room_id}/posts")
    assert kept["id"] in [p["id"] for p in room["items"]], "search follows what the room shows"
    assert "Person" not in json.dumps(await ana.ok("GET", f"/api/v1/circles/{c.id}/search?q=okapiword"))


async def test_a_post_cannot_forge_highlight_markers(api: ApiClient) -> None:
    """The private-use characters that mark matches inside the backends are spaces in the index and the excerpt."""
    c = await make_circle(api, members=1)
    post = await c.members[0].post(c.room_id, f"marker {MARK_OPEN}fake{MARK_OPEN} unbalanced")
    page = await c.coach.ok("GET", f"/api/v1/circles/{c.id}/search?q=fake")
    assert [h["post"]["id"] for h in page["items"]] == [post["id"]]
    snippet = page["items"][0]["snippet_html"]
    assert MARK_OPEN not in snippet and snippet.count("<mark>") == snippet.count("</mark>")


async def test_a_broad_query_ranks_the_newest_matches_the_caller_may_read(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past NEWEST matches, the best among the newest NEWEST readable ones (docs/search.md, "Ranking"); posts the
    caller may not read take no place among them. The control: with room for every match, the best of all first."""
    from app.services import search

    c = await make_circle(api, members=2)
    ana, ben = c.members
    best = await ana.post(c.room_id, "quillbeam quillbeam quillbeam, the oldest and the best match")
    older = [await ana.post(c.room_id, f"quillbeam once, post {i}") for i in range(3)]
    hidden = await ben.post(c.room_id, "quillbeam, the newest, hidden by the coach")
    await c.coach.ok("PUT", f"/api/v1/posts/{hidden['id']}/hidden", {"reason": "too much"})

    monkeypatch.setattr(search, "NEWEST", 3)
    # Ana cannot read Ben's hidden post: her newest three are the three "once" posts, all of them (the walk).
    assert set(await find(ana, c.id, "quillbeam")) == {p["id"] for p in older}
    # The coach reads the hidden post too: it is among the coach's newest three.
    assert set(await find(c.coach, c.id, "quillbeam")) == {hidden["id"], older[2]["id"], older[1]["id"]}
    # Paging stays inside the same newest three.
    page = await ana.ok("GET", f"/api/v1/circles/{c.id}/search?q=quillbeam&limit=2")
    rest = await ana.ok("GET", f"/api/v1/circles/{c.id}/search?q=quillbeam&limit=2&offset=2")
    assert page["next_offset"] == 2 and rest["next_offset"] is None
    assert {h["post"]["id"] for h in page["items"] + rest["items"]} == {p["id"] for p in older}
    # A narrow query (no more than NEWEST matches) ranks all of its matches: the best first.
    assert (await find(ana, c.id, "quillbeam oldest"))[0] == best["id"]

    monkeypatch.setattr(search, "NEWEST", 10)
    assert (await find(ana, c.id, "quillbeam"))[0] == best["id"]
