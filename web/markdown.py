"""Markdown to safe HTML, with @alias mentions.

markdown-it-py renders with raw HTML disabled (a member's `<script>` is text), then nh3 keeps only an allow-list of
tags and attributes. No `hx-*`/`data-hx-*` attribute can survive: they are not on the list. Pages also render user
HTML inside an `hx-disable` container, so even a future allow-list mistake cannot make htmx issue requests.
"""

from __future__ import annotations

import asyncio
import html as html_lib
import re
import threading
from concurrent.futures import ThreadPoolExecutor
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
    if "probe" in state.env:
        # neutralise_mentions checking its work: an @ reached here could be a mention of someone.
        state.env["probe"] += 1
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


# One renderer per thread: linkify-it keeps per-call state on its instance, and long bodies render in a worker
# thread (`render_off_loop`) while the event loop's thread renders short ones.
_local = threading.local()


def _renderer() -> MarkdownIt:
    md: MarkdownIt | None = getattr(_local, "md", None)
    if md is None:
        md = _local.md = _build()
    return md


# Bodies at least this long render in a worker thread: a 20,000-character post takes a few hundred ms of pure
# Python, which would stall every socket of the instance (docs/performance.md "Caching sign-ins and room access").
OFF_LOOP_CHARS = 2_000
_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="kindred-markdown")


def render(body: str, aliases: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """(sanitised HTML, ids of mentioned memberships in order of first mention).

    `aliases` maps casefolded alias -> membership id for the circle the text is posted in.
    """
    env: dict[str, Any] = {"aliases": aliases or {}, "_alias_order": sorted(aliases or {}, key=len, reverse=True)}
    raw = _renderer().render(body, env)
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


async def render_off_loop(body: str, aliases: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """`render`, in a worker thread when the body is long, so the event loop keeps serving meanwhile (the GIL is
    handed back every few ms); short bodies render inline, where the thread hop would cost more than it saves."""
    if len(body) < OFF_LOOP_CHARS:
        return render(body, aliases)
    return await asyncio.get_running_loop().run_in_executor(_executor, render, body, aliases)


# CommonMark autolinks (`<https://…>`): backslash escapes do not work inside them, and mentions never match there.
_AUTOLINK = re.compile(r"<[A-Za-z][A-Za-z0-9.+-]{1,31}:[^\s<>]*>")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
# Put after an @, it lets the @ match no alias (aliases start with a letter or digit): the fallback, should escaping
# ever miss one.
_WORD_JOINER = "\u2060"


def neutralise_mentions(body: str) -> str:
    """The same text, reading the same, in which no `@alias` is a mention, whatever circle renders it.

    For a post carried into another circle: an alias there may belong to someone else entirely. Each `@` that could
    start a mention gets a Markdown backslash escape, so it still shows as `@Alias`; code is left as it is (mentions
    never match in code).
    """
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    lines = re.findall(r"[^\n]*\n|[^\n]+", body)
    in_code = [False] * len(lines)
    for token in _renderer().parse(body):
        if token.type in ("fence", "code_block") and token.map:
            for i in range(token.map[0], min(token.map[1], len(lines))):
                in_code[i] = True
    out: list[str] = []
    prose: list[str] = []
    for line, code in zip(lines, in_code, strict=True):
        if code:
            out.append(_escape_ats("".join(prose)))
            prose = []
            out.append(line)
        else:
            prose.append(line)
    out.append(_escape_ats("".join(prose)))
    escaped = "".join(out)
    if _mention_candidates(escaped):
        return body.replace("@", "@" + _WORD_JOINER)
    return escaped


def _mention_candidates(body: str) -> int:
    """How many `@` the mention rule would try to match against a circle's aliases."""
    env: dict[str, Any] = {"probe": 0}
    _renderer().render(body, env)
    return int(env["probe"])


def _escape_ats(text: str) -> str:
    out: list[str] = []
    # Bare links the renderer turns into links (where mentions never match, and an escape would change the URL).
    linkify = _renderer().linkify
    assert linkify is not None  # the renderer is made with linkify on
    links = {m.index: m.last_index for m in linkify.match(text) or []}
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if i in links:
            out.append(text[i : links[i]])
            i = links[i]
        elif ch == "\\" and i + 1 < n:
            out.append(text[i : i + 2])
            i += 2
        elif ch == "`":
            run_end = i
            while run_end < n and text[run_end] == "`":
                run_end += 1
            close = _code_span_end(text, run_end, run_end - i)
            out.append(text[i : close or run_end])
            i = close or run_end
        elif ch == "<" and (link := _AUTOLINK.match(text, i)):
            out.append(link.group())
            i = link.end()
        elif ch == "@" and not (i > 0 and (text[i - 1].isalnum() or text[i - 1] in "._-")):
            out.append("\\@")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _code_span_end(text: str, start: int, run: int) -> int | None:
    """The end of a code span opened by `run` backticks ending at `start`: after the next run of exactly as many,
    within the same paragraph; None when there is none (the backticks are literal)."""
    limit = found.start() if (found := _PARAGRAPH_BREAK.search(text, start)) else len(text)
    i = start
    while i < limit:
        if text[i] == "`":
            j = i
            while j < limit and text[j] == "`":
                j += 1
            if j - i == run:
                return j
            i = j
        else:
            i += 1
    return None
