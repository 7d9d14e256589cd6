"""The lab: behavioural experiments (contract, second part)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from app.schemas.common import Id
from realtime.events import ExperimentStateName, Matched, Post

Percent = Annotated[int, Meta(ge=0, le=100, description="0 (not at all) to 100 (completely)")]


class ExperimentPlan(msgspec.Struct, forbid_unknown_fields=True):
    """What a member plans, sent with `POST /rooms/{room_id}/posts` and `kind: "experiment"`. Lengths are checked
    after trimming, and each refusal names its field."""

    assumption: Annotated[str, Meta(max_length=500)]
    belief_before: Percent
    action: Annotated[str, Meta(max_length=1000)]
    prediction: Annotated[str, Meta(max_length=500)]
    prediction_confidence: Percent | None = None
    safety_behaviours: Annotated[list[Annotated[str, Meta(max_length=200)]], Meta(max_length=10)] = msgspec.field(
        default_factory=list
    )
    due_at: datetime | None = None


class ExperimentMoveBody(msgspec.Struct, forbid_unknown_fields=True):
    """`PATCH /posts/{post_id}/experiment`: the next stage, with what that stage records."""

    state: ExperimentStateName
    outcome: Annotated[str, Meta(max_length=2000)] | None = None
    matched_prediction: Matched | None = None
    belief_after: Percent | None = None
    learning: Annotated[str, Meta(max_length=2000)] | None = None


class ExperimentPage(msgspec.Struct):
    items: list[Post]
    next_before: Id | None
