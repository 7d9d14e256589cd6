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
