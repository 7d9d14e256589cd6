"""Markdown to safe HTML, with @alias mentions.

markdown-it-py renders with raw HTML disabled (a member's `<script>` is text), then nh3 keeps only an allow-list of
tags and attributes. No `hx-*`/`data-hx-*` attribute can survive: they are not on the list. Pages also render user
HTML inside an `hx-disable` container, so even a future allow-list mistake cannot make htmx issue requests.
"""

from __future__ import annotations

import html as html_lib
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "strong",
    "em",
    "del",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "h3",
    "h4",
    "h5",
    "h6",
    "span",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "span": {"class", "data-membership"},
    "code": {"class"},
    "ol": {"start"},
    "th": {"align"},
    "td": {"align"},
}


def _mention_rule(state: StateInline, silent: bool) -> bool:
    """`@alias`, matched against the circle's aliases (longest first, ignoring case), not inside a word or email."""
    src, pos = state.src, state.pos
    if src[pos] != "@":
        return False
    if pos > 0 and (src[pos - 1].isalnum() or src[pos - 1] in "._-"):
        return False
    aliases: dict[str, str] = state.env.get("aliases") or {}
    if not aliases:
        return False
    rest = src[pos + 1 : pos + 1 + 41].casefold()
    for key in state.env["_alias_order"]:
        if rest.startswith(key):
            end = pos + 1 + len(key)
            # A mention ends at a non-word character, so @Sam does not match inside @Samantha.
            if end < len(src) and (src[end].isalnum() or src[end] == "_"):
                continue
            if not silent:
                token = state.push("mention", "", 0)
                token.meta = {"membership_id": aliases[key], "text": src[pos:end]}
                state.env.setdefault("mentioned", []).append(aliases[key])
            state.pos = end
            return True
    return False


def _render_mention(self: RendererHTML, tokens: list[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    meta = tokens[idx].meta
    return (
        f'<span class="mention" data-membership="{html_lib.escape(meta["membership_id"])}">'
        f"{html_lib.escape(meta['text'])}</span>"
    )


def _build() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": True, "typographer": False})
    md.enable(["linkify", "strikethrough", "table"])
    # Headings above h3 would shout inside a post; they render as h3 by shifting levels in the sanitised output.
    md.inline.ruler.before("emphasis", "mention", _mention_rule)
    md.add_render_rule("mention", _render_mention)
    return md


_md = _build()


def render(body: str, aliases: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """(sanitised HTML, ids of mentioned memberships in order of first mention).

    `aliases` maps casefolded alias -> membership id for the circle the text is posted in.
    """
    env: dict[str, Any] = {"aliases": aliases or {}, "_alias_order": sorted(aliases or {}, key=len, reverse=True)}
    raw = _md.render(body, env)
    for level in (1, 2):
        raw = raw.replace(f"<h{level}>", "<h3>").replace(f"</h{level}>", "</h3>")
    clean = nh3.clean(
        raw,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow ugc",
    )
    mentioned = list(dict.fromkeys(env.get("mentioned", [])))
    return clean, mentioned
