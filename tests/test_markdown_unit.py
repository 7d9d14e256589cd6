"""Mentions carried into another circle, without a server: the text reads the same and mentions nobody."""

from __future__ import annotations

import pytest

from web.markdown import neutralise_mentions, render

ALIASES = {"bob": "m-bob", "coach dana": "m-coach"}


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        ("Thanks @Bob and @Coach Dana!", "<p>Thanks @Bob and @Coach Dana!</p>"),
        ("@bob first", "<p>@bob first</p>"),
        ("> quoting @Bob\n> and @Bob again", "<blockquote>\n<p>quoting @Bob\nand @Bob again</p>\n</blockquote>"),
        ("* @Bob\n* **@Bob**", "<ul>\n<li>@Bob</li>\n<li><strong>@Bob</strong></li>\n</ul>"),
        ("| who |\n|---|\n| @Bob |", "<td>@Bob</td>"),
        ("a literal \\\\@Bob", "<p>a literal \\@Bob</p>"),
        ("line\r\n@Bob", "<p>line\n@Bob</p>"),
    ],
)
def test_mentions_become_text(body: str, shown: str) -> None:
    assert render(body, ALIASES)[1], "the original mentions someone"
    html, mentioned = render(neutralise_mentions(body), ALIASES)
    assert mentioned == [] and "mention" not in html
    assert shown in html


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        ("`@Bob` in code", "<code>@Bob</code>"),
        ("``a ` @Bob``", "<code>a ` @Bob</code>"),
        ("```\n@Bob\n```", "<pre><code>@Bob\n</code></pre>"),
        ("    @Bob indented", "<pre><code>@Bob indented\n</code></pre>"),
        ("mail bob@example.org", 'href="mailto:bob@example.org"'),
        ("<https://example.org/@Bob>", 'href="https://example.org/@Bob"'),
        ("see https://example.org/@Bob", 'href="https://example.org/@Bob"'),
        ("[here](https://example.org/@Bob)", 'href="https://example.org/@Bob"'),
        ("already \\@Bob", "<p>already @Bob</p>"),
    ],
)
def test_code_links_and_emails_are_left_as_they_were(body: str, shown: str) -> None:
    assert shown in render(neutralise_mentions(body), ALIASES)[0]


def test_what_escaping_cannot_reach_still_mentions_nobody() -> None:
    # A bare URL inside link text is not made a link, so an @ in it could mention: the fallback covers it.
    body = "[see https://example.org/@Bob](https://example.org) @Bob"
    html, mentioned = render(neutralise_mentions(body), ALIASES)
    assert mentioned == [] and "mention" not in html and "@\u2060Bob" in html


@pytest.mark.anyio
async def test_long_bodies_render_off_the_event_loop_the_same_as_inline() -> None:
    """A long body renders in a worker thread (each thread with its own renderer: linkify-it keeps state on its
    instance); the result is the one `render` gives, mentions included, also when several render at once."""
    import asyncio

    from web.markdown import OFF_LOOP_CHARS, render_off_loop

    aliases = {"bob": "m-bob"}
    bodies = [
        (f"Thanks @Bob, see https://example.org/{i} and *this* [link](https://example.org/x{i}).\n\n" * 40)
        for i in range(4)
    ]
    assert all(len(b) >= OFF_LOOP_CHARS for b in bodies)
    together = await asyncio.gather(*(render_off_loop(b, aliases) for b in bodies))
    assert together == [render(b, aliases) for b in bodies]
    assert together[0][1] == ["m-bob"]
    short = "short @Bob"
    assert await render_off_loop(short, aliases) == render(short, aliases)
