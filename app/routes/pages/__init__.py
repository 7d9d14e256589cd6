"""The HTMX pages: a second front over the same services as the JSON API.

Full pages work as plain HTML forms (no script needed to sign up, open a circle or join); inside a room, htmx posts,
replies and edits in place, and the page's socket brings everyone else's changes live.

One module a part of the site (accounts, circles, rooms and posts, gestures, safety, the account, notifications,
drop-ins, the lab and journals), the helpers they share in `common`; `router` serves them all, with the pages' own answers to a missing
sign-in and a 4xx (`PAGE_ERRORS`).
"""

from __future__ import annotations

from typing import Any

from litestar import Router

from app.routes.pages import (
    account,
    accounts,
    care,
    circles,
    dropins,
    email_change,
    gestures,
    lab,
    notifications,
    pulse,
    recovery,
    rooms,
    safety,
    search,
    unsubscribe,
)
from app.routes.pages.common import PAGE_ERRORS

ROUTES: list[Any] = [
    *accounts.ROUTES,
    *circles.ROUTES,
    *rooms.ROUTES,
    *gestures.ROUTES,
    *safety.ROUTES,
    *account.ROUTES,
    *notifications.ROUTES,
    *dropins.ROUTES,
    *lab.ROUTES,
    *search.ROUTES,
    *care.ROUTES,
    *pulse.ROUTES,
    *recovery.ROUTES,
    *email_change.ROUTES,
    *unsubscribe.ROUTES,
]
router = Router(path="/", route_handlers=ROUTES, exception_handlers=PAGE_ERRORS, include_in_schema=False)

__all__ = ["PAGE_ERRORS", "ROUTES", "router"]
