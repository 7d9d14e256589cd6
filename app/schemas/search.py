"""Search within a circle (contract, second part: "Search")."""

from __future__ import annotations

import msgspec

from realtime.events import Post


class SearchHit(msgspec.Struct, kw_only=True):
    """One post that matched, as the caller may read it (`post.hidden` marks a hidden one, which only its author and
    the coach find), with `snippet_html`: a short excerpt, HTML-escaped, each match in `<mark>` (no other tag)."""

    post: Post
    snippet_html: str
    # Extension: the thread the post belongs to (its top-level post's id; the post's own id when it is top-level),
    # so that clients can group results by thread.
    thread_id: str


class SearchPage(msgspec.Struct, kw_only=True):
    """Best match first. `next_offset` is the `offset` of the next page, null on the last page."""

    items: list[SearchHit]
    next_offset: int | None


class SimilarExperiments(msgspec.Struct, kw_only=True):
    """Other members' experiments whose assumption shares words with this one's, best match first."""

    items: list[SearchHit]
