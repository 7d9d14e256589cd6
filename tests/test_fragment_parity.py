"""What a page's socket pushes is what the page would fetch: the HTML fragment of a post that arrives over the HTML
socket equals, for the same post and the same viewer, the fragment HTTP GET serves. Both backends.

Kindred's pages swap pushed fragments in place, and htmx fetches the same fragments by HTTP (after an edit, a
restore, a reload). If the two drifted (a template rendered with other context on one path), a member would see a
post change shape depending on how it reached them."""

from __future__ import annotations

import json

import pytest
import websockets

from tests.client import ApiClient, Frame, Match, WsClient, make_circle, page_client
from tests.conftest import Server

pytestmark = pytest.mark.anyio


def html_event(room_id: str, name: str, post_id: str) -> Match:
    return lambda f: (
        f.get("type") == "event" and f["room_id"] == room_id and f["event"] == name and f["post_id"] == post_id
    )


async def test_the_fragment_pushed_equals_the_fragment_served(api: ApiClient, server: Server) -> None:
    c = await make_circle(api, members=2)
    author, reader = c.members
    conn = await websockets.connect(
        server.ws_url + "?format=html", additional_headers={"Authorization": f"Bearer {reader.token}"}
    )
    sock = WsClient(conn)
    try:
        await sock.subscribe(c.room_id)
        async with page_client(api, reader) as browser:
            post = await author.post(c.room_id, "First *try*, with a [link](https://example.org) and @Member2")
            created: Frame = await sock.recv_until(html_event(c.room_id, "post.created", post["id"]))
            # The room's newest threads, as the page loads them: here, just this post (and the "older" marker).
            listed = await browser.get(f"/rooms/{c.room_id}/threads")
            assert listed.status_code == 200, listed.text
            await author.ok("PATCH", f"/api/v1/posts/{post['id']}", {"body": "Second *try*, edited"})
            updated: Frame = await sock.recv_until(html_event(c.room_id, "post.updated", post["id"]))
            served = await browser.get(f"/posts/{post['id']}/main")
            assert served.status_code == 200, served.text
    finally:
        await sock.close()

    # The controls: each pushed fragment holds the words it was pushed for.
    assert "First <em>try</em>" in created["html"] and "Second <em>try</em>" in updated["html"]
    # A new post: the article pushed is the article GET serves the same reader, byte for byte.
    assert listed.text.strip().startswith(created["html"].strip())
    # An edit: the pushed fragment is the one GET /posts/{id}/main serves.
    assert updated["html"].strip() == served.text.strip()
    # Nothing in either says who is behind the alias.
    for text in (json.dumps(created), json.dumps(updated), listed.text, served.text):
        assert author.email not in text and author.id not in text and author.name not in text


async def test_an_experiment_card_pushed_live_is_the_card_the_page_serves(api: ApiClient, server: Server) -> None:
    c = await make_circle(api, members=2)
    author, reader = c.members
    conn = await websockets.connect(
        server.ws_url + "?format=html", additional_headers={"Authorization": f"Bearer {reader.token}"}
    )
    sock = WsClient(conn)
    plan = {"assumption": "If I rest, I fail", "belief_before": 80, "action": "Rest on Sunday", "prediction": "Chaos"}
    try:
        await sock.subscribe(c.room_id)
        post = await author.post(c.room_id, "", kind="experiment", experiment=plan)
        created: Frame = await sock.recv_until(html_event(c.room_id, "post.created", post["id"]))
        debrief = {"state": "debriefed", "outcome": "Calm", "matched_prediction": "no", "belief_after": 30}
        await author.ok("PATCH", f"/api/v1/posts/{post['id']}/experiment", {**debrief, "learning": "Rest is allowed"})
        changed: Frame = await sock.recv_until(html_event(c.room_id, "experiment.changed", post["id"]))
        async with page_client(api, reader) as browser:
            served = (await browser.get(f"/posts/{post['id']}/main")).text
    finally:
        await sock.close()
    # The controls: the card arrived with the post, planned, and again live, debriefed, with before -> after.
    assert f'id="experiment-{post["id"]}"' in created["html"] and "stage-planned" in created["html"]
    card = changed["html"].strip()
    assert card.startswith(f'<section class="experiment-card stage-debriefed" id="experiment-{post["id"]}"')
    assert 'class="num before">80</span>' in card and 'class="num after">30</span>' in card
    # The card pushed is the card inside what GET /posts/{id}/main serves, byte for byte.
    assert card in served
