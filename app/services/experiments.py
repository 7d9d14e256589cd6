"""The experiment record, without I/O: checking a plan, the moves of its lifecycle, its JSON and its HTML.

A member tests an old assumption with a small, safe action. The record holds, as practitioners write it down, the
belief and how strongly it is held before, the action, what the assumption predicts, the precautions to drop and when
to look back; then what happened, whether the prediction came true, the belief again, and what was learned.

Lifecycle, moved by the author only: planned -> tried -> debriefed, planned -> debriefed (tried and debriefed in one
go), and planned or tried -> abandoned. Anything else is a 409 that says which moves are open.
"""

from __future__ import annotations

import html
from datetime import datetime, timedelta

import msgspec
from litestar.exceptions import ClientException

from app.errors import Conflict
from app.schemas.lab import ExperimentMoveBody, ExperimentPlan
from realtime.events import Experiment, ExperimentStateName

DEFAULT_DUE = timedelta(days=7)
MAX_DUE = timedelta(days=60)
# A due time this close to now is still "in the future": the member pressed the button a moment after choosing it.
DUE_SLACK = timedelta(minutes=1)

MOVES: dict[ExperimentStateName, tuple[ExperimentStateName, ...]] = {
    "planned": ("tried", "debriefed", "abandoned"),
    "tried": ("debriefed", "abandoned"),
    "debriefed": (),
    "abandoned": (),
}

_decoder = msgspec.json.Decoder(Experiment)
_encoder = msgspec.json.Encoder()


def _text(value: str | None, field: str, limit: int, *, required: bool) -> str | None:
    cleaned = (value or "").strip()
    if not cleaned:
        if required:
            raise ClientException(f"experiment.{field} is required: write it in a sentence (1-{limit:,} characters)")
        return None
    if len(cleaned) > limit:
        raise ClientException(f"experiment.{field} is at most {limit:,} characters; this one has {len(cleaned):,}")
    return cleaned


def plan(data: ExperimentPlan, now: datetime) -> Experiment:
    """A new record in state `planned`, or a 400 naming the field to fix."""
    precautions = []
    for i, item in enumerate(data.safety_behaviours):
        cleaned = item.strip()
        if not cleaned:
            raise ClientException(f"experiment.safety_behaviours[{i}] is empty: name the precaution or leave it out")
        precautions.append(cleaned)
    due_at = data.due_at if data.due_at is not None else now + DEFAULT_DUE
    if due_at.tzinfo is None:
        raise ClientException("experiment.due_at needs a time zone (an ISO 8601 time ending in Z or +hh:mm)")
    if due_at < now - DUE_SLACK:
        raise ClientException("experiment.due_at is in the past: choose when to look back, from now on")
    if due_at > now + MAX_DUE:
        raise ClientException("experiment.due_at is at most 60 days ahead: a small experiment is looked back on soon")
    return Experiment(
        state="planned",
        assumption=_text(data.assumption, "assumption", 500, required=True) or "",
        belief_before=data.belief_before,
        action=_text(data.action, "action", 1000, required=True) or "",
        prediction=_text(data.prediction, "prediction", 500, required=True) or "",
        prediction_confidence=data.prediction_confidence,
        safety_behaviours=precautions,
        due_at=due_at,
    )


def move(record: Experiment, body: ExperimentMoveBody, now: datetime) -> Experiment:
    """The record after the move `body` asks for, or 409 (a move out of order) / 400 (a field missing or wrong)."""
    if body.state not in MOVES[record.state]:
        open_moves = MOVES[record.state]
        if not open_moves:
            raise Conflict(f"this experiment is {record.state}; it cannot move any more")
        raise Conflict(
            f"an experiment that is {record.state} can move to {' or '.join(open_moves)}, not to {body.state}"
        )
    if body.state == "tried":
        for field in ("matched_prediction", "belief_after", "learning"):
            if getattr(body, field) is not None:
                raise ClientException(f"{field} belongs to the debrief (state debriefed), not to tried")
        outcome = _text(body.outcome, "outcome", 2000, required=False)
        return msgspec.structs.replace(record, state="tried", outcome=outcome or record.outcome, tried_at=now)
    if body.state == "debriefed":
        outcome = _text(body.outcome, "outcome", 2000, required=True)
        learning = _text(body.learning, "learning", 2000, required=True)
        if body.matched_prediction is None:
            raise ClientException('matched_prediction is required: "yes", "partly" or "no"')
        if body.belief_after is None:
            raise ClientException("belief_after is required: how true the assumption feels now, 0 to 100")
        return msgspec.structs.replace(
            record,
            state="debriefed",
            outcome=outcome,
            matched_prediction=body.matched_prediction,
            belief_after=body.belief_after,
            learning=learning,
            tried_at=record.tried_at or now,
            debriefed_at=now,
        )
    # abandoned
    for field in ("matched_prediction", "belief_after"):
        if getattr(body, field) is not None:
            raise ClientException(f"{field} belongs to the debrief (state debriefed), not to abandoned")
    learning = _text(body.learning, "learning", 2000, required=False)
    return msgspec.structs.replace(record, state="abandoned", learning=learning or record.learning)


def encode(record: Experiment) -> str:
    return _encoder.encode(record).decode()


def decode(stored: str) -> Experiment:
    return _decoder.decode(stored)


MATCHED_WORDS = {"yes": "Yes", "partly": "Partly", "no": "No"}
STATE_WORDS = {"planned": "Planned", "tried": "Tried", "debriefed": "Debriefed", "abandoned": "Set aside"}


def record_html(record: Experiment) -> str:
    """The record as the post's sanitised HTML shows it (every value escaped; no markup from the member)."""
    e = html.escape
    parts = [
        f'<section class="experiment" data-state="{record.state}">',
        f'<p class="experiment-stage">{STATE_WORDS[record.state]}</p>',
        "<dl>",
        f"<dt>Old assumption</dt><dd>{e(record.assumption)}</dd>",
        f"<dt>How true it feels</dt><dd>{record.belief_before} / 100</dd>",
        f"<dt>The small action</dt><dd>{e(record.action)}</dd>",
        f"<dt>What the assumption predicts</dt><dd>{e(record.prediction)}</dd>",
    ]
    if record.safety_behaviours:
        items = "".join(f"<li>{e(item)}</li>" for item in record.safety_behaviours)
        parts.append(f"<dt>Precautions to drop</dt><dd><ul>{items}</ul></dd>")
    if record.outcome:
        parts.append(f"<dt>What happened</dt><dd>{e(record.outcome)}</dd>")
    if record.matched_prediction:
        parts.append(f"<dt>Did the prediction come true?</dt><dd>{MATCHED_WORDS[record.matched_prediction]}</dd>")
    if record.belief_after is not None:
        parts.append(f"<dt>Belief before → after</dt><dd>{record.belief_before} → {record.belief_after}</dd>")
    if record.learning:
        parts.append(f"<dt>What I learned</dt><dd>{e(record.learning)}</dd>")
    parts.append("</dl></section>")
    return "".join(parts)
