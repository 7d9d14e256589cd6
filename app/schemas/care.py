"""Care (docs/care.md): the care check, telling the coach, and the themes a member prefers collapsed."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

MAX_CHECK = 20_000


class CareCheckBody(msgspec.Struct):
    body: Annotated[str, Meta(max_length=MAX_CHECK, description="The text about to be posted; never stored.")]


class CareCheck(msgspec.Struct):
    """`concern`: the text suggests its writer may be at risk of harming themselves. `resources_html`: the circle's
    care resources, rendered (always sent, so a client can show them whatever the answer)."""

    concern: bool
    resources_html: str


class CareConcernBody(msgspec.Struct):
    """The member's explicit choice to let the coach know, privately. Nothing of the text goes with it."""

    note: Annotated[str, Meta(max_length=500)] = ""


class CollapsedThemes(msgspec.Struct):
    """Themes the member prefers collapsed always: a post whose content note or text names one opens only by
    choice (posts with any content note are collapsed by default anyway)."""

    themes: Annotated[list[Annotated[str, Meta(min_length=1, max_length=40)]], Meta(max_length=30)]
