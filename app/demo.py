"""`kindred demo`: a realistic circle to look around in, made through the same services the app uses: rooms and
threads, the coach's gestures, the lab (an experiment at every stage, a learning pinned as a key insight), small wins
and a journal conversation."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from app.live import Live
from app.main import create_app
from app.schemas import CircleCreate, InviteCreate, PostCreate, RoomCreate
from app.schemas.lab import ExperimentMoveBody, ExperimentPlan
from app.services import accounts, circles, gestures, journals, lab, posts
from app.settings import load_settings
from db.tables import Account

PASSWORD = "kindred demo circle"
COACH = ("Dana Whitfield", "coach@demo.kindred")
MEMBERS = [
    ("Samuel Ortega", "sam@demo.kindred", "Quiet River"),
    ("Priya Natarajan", "priya@demo.kindred", "Lantern"),
    ("Jonas Berg", "jonas@demo.kindred", "North Star"),
]


async def seed(say: Callable[[str], None]) -> None:
    settings = load_settings()
    app = create_app(settings)
    async with app.lifespan():
        live = app.state["live"]
        if await Account.exists().where(Account.email == COACH[1]):
            say("The demo circle already exists.")
            _print_details(say, settings.public_url or "http://127.0.0.1:8000")
            return
        coach = await accounts.register(COACH[1], PASSWORD, COACH[0])
        coach_id = uuid.UUID(coach.id)
        circle = await circles.create_circle(
            coach_id,
            CircleCreate(
                name="Saying No, Kindly",
                commonality=(
                    "We are all learning to say no without fearing for the relationship: to colleagues, family, "
                    "friends, and the voice that says we must always be available."
                ),
                norms=(
                    "What is said here stays here.\nCuriosity before advice.\nSmall experiments beat big resolutions."
                ),
            ),
        )
        general = (await circles.rooms(coach_id, circle.id))[0]
        experiments = await circles.create_room(
            coach_id, circle.id, RoomCreate(name="Experiments", topic="Plan one, run it, log what happened.")
        )
        invite = await circles.create_invite(coach_id, circle.id, InviteCreate(), "http://127.0.0.1:8000")
        ids = {}
        for name, email, alias in MEMBERS:
            account = await accounts.register(email, PASSWORD, name)
            ids[alias] = uuid.UUID(account.id)
            await circles.join(ids[alias], invite.code, alias)

        async def experiment(who: uuid.UUID, room: str, plan: ExperimentPlan, body: str = "") -> str:
            created = await posts.create_post(
                who, room, PostCreate(body=body, kind="experiment", experiment=plan), live
            )
            return created.id

        async def post(
            who: uuid.UUID, room: str, body: str, kind: str = "reflection", parent: str | None = None
        ) -> str:
            created = await posts.create_post(who, room, PostCreate(body=body, kind=kind, parent_id=parent), live)  # type: ignore[arg-type]
            return created.id

        welcome = await post(
            coach_id,
            general.id,
            "Welcome, everyone. This is a place to practise before the real world: try a small **no**, tell us "
            "how it went, and notice what you told yourself just before.",
        )
        await post(
            ids["Lantern"],
            general.id,
            "Glad to be here. I say yes before I have even heard the question.",
            parent=welcome,
        )
        win = await post(
            ids["Quiet River"],
            general.id,
            "Told my manager I could not take the Friday release on top of my sprint work. She said *fine*. "
            "That was it.",
            kind="win",
        )
        await post(
            coach_id,
            general.id,
            "What did you expect her to say, just before you said it?",
            kind="question",
            parent=win,
        )
        await post(
            ids["Quiet River"],
            general.id,
            "That I was not a team player. Which is what I tell myself, not what she thinks.",
            parent=win,
        )
        plan = await experiment(
            ids["North Star"],
            experiments.id,
            ExperimentPlan(
                assumption="If I decline a favour, my brother will think I don't care",
                belief_before=75,
                action='When he asks me to help him move on Saturday, say "I can\'t this time, but I can on Sunday"',
                prediction="He will go quiet on me for days",
                prediction_confidence=60,
                safety_behaviours=["apologising three times", "explaining my whole week"],
                due_at=datetime.now(UTC) + timedelta(days=3),
            ),
        )
        await post(
            ids["Lantern"],
            experiments.id,
            "Offering an alternative is a good bridge. Curious how it lands.",
            parent=plan,
        )
        await post(ids["Lantern"], general.id, "How do you all handle the guilt *after* saying no?", kind="question")
        await _seed_lab(coach_id, circle.id, ids, general.id, experiments.id, experiment, post, live)
        _print_details(say, "http://127.0.0.1:8000")


async def _seed_lab(
    coach_id: uuid.UUID,
    circle_id: str,
    ids: dict[str, uuid.UUID],
    general: str,
    room: str,
    experiment: Callable[..., Awaitable[str]],
    post: Callable[..., Awaitable[str]],
    live: Live,
) -> None:
    """The lab alive: an experiment at every stage, what was learned (one pinned as a key insight), a few small wins
    with the coach's likes, and a journal conversation between Lantern and the coach."""
    soon = datetime.now(UTC) + timedelta(days=7)
    done = await experiment(
        ids["Quiet River"],
        room,
        ExperimentPlan(
            assumption="If I say no to extra work, my manager will see me as lazy",
            belief_before=80,
            action="Decline the Friday release, kindly and briefly, in Tuesday's stand-up",
            prediction="She will be cold with me for the rest of the week",
            prediction_confidence=70,
            safety_behaviours=["over-explaining", "offering to do it next time"],
            due_at=soon,
        ),
    )
    await lab.move(ids["Quiet River"], done, ExperimentMoveBody(state="tried"), live)
    await lab.move(
        ids["Quiet River"],
        done,
        ExperimentMoveBody(
            state="debriefed",
            outcome="She said fine, and asked how my sprint was going. Nothing changed between us.",
            matched_prediction="no",
            belief_after=30,
            learning="A kind, short no kept the relationship. The coldness was my prediction, not her reaction.",
        ),
        live,
    )
    await gestures.like(coach_id, done, live)
    await gestures.pin(coach_id, done, "A clear no, and the relationship held.", live)
    tried = await experiment(
        ids["Lantern"],
        room,
        ExperimentPlan(
            assumption="If I don't answer messages within the hour, my friends will think I'm ignoring them",
            belief_before=65,
            action="Leave my phone in the hall from 7 to 9 pm, three evenings this week",
            prediction="I'll find three annoyed messages each time",
            safety_behaviours=["checking 'just once'"],
            due_at=soon,
        ),
    )
    await lab.move(ids["Lantern"], tried, ExperimentMoveBody(state="tried", outcome="Did two evenings so far."), live)
    aside = await experiment(
        ids["North Star"],
        room,
        ExperimentPlan(
            assumption="If I skip the family dinner, my mother will be hurt for weeks",
            belief_before=90,
            action="Tell her this month I will come every other Sunday",
            prediction="She will cry on the phone",
            due_at=soon,
        ),
    )
    await lab.move(
        ids["North Star"],
        aside,
        ExperimentMoveBody(state="abandoned", learning="Too big a first step; I'll start with something smaller."),
        live,
    )
    for who, text in (
        ("Lantern", "Said I'd reply to the group chat tomorrow. Nobody minded. Tiny, but it's a first."),
        ("North Star", "Didn't apologise when I left the meeting on time. Just left."),
    ):
        win = await post(ids[who], general, text, kind="win")
        await gestures.like(coach_id, win, live)
    await post(ids["Quiet River"], general, "Took my full lunch break, away from my desk, every day.", kind="win")
    # Lantern's journal: a first reflection, a private plan, and the coach's reply.
    journal, _ = await journals.my_journal(ids["Lantern"], circle_id)
    first = await post(
        ids["Lantern"],
        journal.id,
        "Not ready to say this in the circle yet: I think I say yes because I'm scared people only like me for "
        "being useful.",
    )
    await post(
        coach_id,
        journal.id,
        "Thank you for trusting me with this. What would a small test of that belief look like?",
        kind="question",
        parent=first,
    )
    await experiment(
        ids["Lantern"],
        journal.id,
        ExperimentPlan(
            assumption="People only like me because I'm useful",
            belief_before=70,
            action="Meet a friend for coffee without offering to help with anything",
            prediction="The conversation will feel flat and she won't suggest meeting again",
            due_at=datetime.now(UTC) + timedelta(days=10),
        ),
    )


def _print_details(say: Callable[[str], None], base: str) -> None:
    say(f"Demo circle ready. Sign in at {base}/signin with password {PASSWORD!r}:")
    say(f"  coach  {COACH[0]:<16} {COACH[1]}")
    for name, email, alias in MEMBERS:
        say(f"  member {name:<16} {email:<22} appears as {alias!r}")
