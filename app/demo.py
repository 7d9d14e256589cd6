"""`kindred demo`: a realistic circle to look around in, made through the same services the app uses."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from app.main import create_app
from app.schemas import CircleCreate, InviteCreate, PostCreate, RoomCreate
from app.services import accounts, circles, posts
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
        plan = await post(
            ids["North Star"],
            experiments.id,
            "**Old assumption:** if I decline a favour, my brother will think I don't care.\n\n"
            '**New behaviour:** this week, say "I can\'t this time, but I can on Sunday".\n\n'
            "**What happened:** _to be logged_",
            kind="experiment",
        )
        await post(
            ids["Lantern"],
            experiments.id,
            "Offering an alternative is a good bridge. Curious how it lands.",
            parent=plan,
        )
        await post(ids["Lantern"], general.id, "How do you all handle the guilt *after* saying no?", kind="question")
        _print_details(say, "http://127.0.0.1:8000")


def _print_details(say: Callable[[str], None], base: str) -> None:
    say(f"Demo circle ready. Sign in at {base}/signin with password {PASSWORD!r}:")
    say(f"  coach  {COACH[0]:<16} {COACH[1]}")
    for name, email, alias in MEMBERS:
        say(f"  member {name:<16} {email:<22} appears as {alias!r}")
