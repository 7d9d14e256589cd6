"""Posts and threads."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from app.schemas.common import Id
from app.schemas.lab import ExperimentPlan
from realtime.events import Post, PostKind, ReplyWish

# Care (docs/care.md): a short note on what a post touches ("grief", "family conflict"); readers open it by choice.
ContentNote = Annotated[str, Meta(max_length=80, description="At most 80 characters; empty or null for none.")]


class PostCreate(msgspec.Struct):
    body: str = ""
    kind: PostKind = "reflection"
    parent_id: Id | None = None
    client_id: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    # Only with kind "experiment" (the lab): what the member plans to test.
    experiment: ExperimentPlan | None = None
    content_note: ContentNote | None = None
    reply_wish: ReplyWish | None = None


class PostEdit(msgspec.Struct):
    body: str
    # Absent: left as it is; null (or an empty note): taken off.
    content_note: ContentNote | msgspec.UnsetType | None = msgspec.UNSET
    reply_wish: ReplyWish | msgspec.UnsetType | None = msgspec.UNSET


class PostListItem(Post, kw_only=True):
    reply_count: int


class PostPage(msgspec.Struct):
    items: list[PostListItem]
    next_before: str | None


class PostThread(Post, kw_only=True):
    replies: list[PostThread]
