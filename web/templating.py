"""The Jinja environment shared by the pages (through Litestar) and the realtime renderer (directly)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

KIND_LABELS = {"reflection": "Reflection", "experiment": "Experiment", "win": "Small win", "question": "Question"}
ACTION_LABELS = {
    "hide": "hid a post",
    "restore": "showed a post again",
    "remove": "removed a post",
    "mute": "paused posting",
    "unmute": "resumed posting",
    "remove_member": "removed a member",
    "leave": "left",
    "report_dismissed": "dismissed a report",
    "report_reopened": "reported a post again after the coach had looked at it",
    "allow_rejoin": "let a removed member rejoin",
    "close": "closed the circle",
    "reopen": "reopened the circle",
    "identity_on": "let the coach see the identity of members who join from now on",
    "identity_off": "hid every member's identity from the coach",
}


def iso(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.isoformat().replace("+00:00", "Z")


def pretty(value: datetime | None) -> str:
    """Server-side fallback; the page's script rewrites <time> elements into the reader's own time zone."""
    if value is None:
        return ""
    return value.strftime("%d %b %Y, %H:%M UTC")


RECORD_MARK = '<section class="experiment"'


def without_record(html: str) -> str:
    """An experiment post's html without the record that app.services.experiments.record_html appends (the pages show
    the record as a card of their own). Member markup never carries that mark: Markdown output is sanitised and class
    attributes are not allowed on a section."""
    return html.split(RECORD_MARK, 1)[0].strip()


# Care (docs/care.md): one line of guidance for repliers, by the author's reply wish.
REPLY_WISHES = {
    "listen": ("They asked to be listened to:", "reflect back what you hear; don't advise."),
    "questions": (
        "They'd welcome questions:",
        "ask what would help them see it more clearly; leave the answers to them.",
    ),
    "ideas": ("They'd welcome ideas:", "share what has worked for you, briefly and gently; they'll take what fits."),
}


def collapsed_for(content_note: str | None, body: str, themes: list[str]) -> str | None:
    """Why a post opens only by choice for this reader: its content note, else the first of the reader's collapsed
    themes that its text names (as a whole word or phrase); None when it shows open."""
    if content_note:
        return content_note
    text = body.casefold()
    for theme in themes:
        if re.search(r"(?<!\w)" + re.escape(theme) + r"(?!\w)", text):
            return theme
    return None


def make_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        enable_async=False,
    )
    env.filters["iso"] = iso
    env.filters["pretty"] = pretty
    env.filters["without_record"] = without_record
    env.globals["KIND_LABELS"] = KIND_LABELS
    env.globals["ACTION_LABELS"] = ACTION_LABELS
    env.globals["REPLY_WISHES"] = REPLY_WISHES
    env.globals["collapsed_for"] = collapsed_for
    return env


environment = make_environment()


def render_fragment(name: str, **context: Any) -> str:
    return environment.get_template(name).render(**context)
