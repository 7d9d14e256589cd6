"""What every page module shares: asking for a sign-in, answering a 4xx, reading forms, rendering, the reader's
frame (their name, unread count, live drop-ins) and a post's excerpt."""

from __future__ import annotations

import html as html_text
import re
from typing import Any, TypeVar
from urllib.parse import quote, unquote

import msgspec
from litestar import Request, Response
from litestar.exceptions import ClientException, HTTPException
from litestar.params import URLEncodedBody
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from app.auth.tokens import Principal
from app.schemas import LiveNow
from app.services import accounts, dropins, mailprefs, notifications

Form = URLEncodedBody[dict[str, str]]
T = TypeVar("T")


class SignInRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def _redirect_to_sign_in(request: Request[Any, Any, Any], exc: SignInRequired) -> Response[Any]:
    target = f"/signin?next={quote(exc.next_path)}"
    if request.headers.get("hx-request"):
        # A partial request would swap the sign-in page into a fragment; send the whole window there instead.
        return Response(None, status_code=204, headers={"HX-Redirect": target})
    return Redirect(target, status_code=HTTP_303_SEE_OTHER)


def _page_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """4xx on a page: a readable page for navigations, an inline message for htmx swaps. The exception's own headers
    (Retry-After on a 429) go out with either."""
    headers = dict(exc.headers or {})
    if request.headers.get("hx-request"):
        # Every htmx form has an id and, beside it, an element `<id>-error` for messages; buttons use the flash.
        trigger = request.headers.get("hx-trigger")
        headers.update({"HX-Retarget": f"#{trigger}-error" if trigger else "#flash", "HX-Reswap": "innerHTML"})
        return Template(
            "fragments/error.html", context={"message": exc.detail}, status_code=exc.status_code, headers=headers
        )
    return Template(
        "pages/error.html",
        context={"status": exc.status_code, "message": exc.detail, "me": None},
        status_code=exc.status_code,
        headers=headers,
    )


def who(request: Request[Any, Any, Any]) -> Principal:
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        raise SignInRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return user


def prompt_answer(request: Request[Any, Any, Any]) -> str | None:
    """What the reader typed into an `hx-prompt`. A header is Latin-1 only, so htmx sends text beyond it (curly quotes,
    dashes, emoji) percent-encoded and says so in `HX-Prompt-URI-AutoEncoded`."""
    answer = request.headers.get("hx-prompt")
    if answer is not None and request.headers.get("hx-prompt-uri-autoencoded") == "true":
        return unquote(answer)
    return answer


async def typed(request: Request[Any, Any, Any], field: str) -> str | None:
    """A few words typed for an action: the in-page form's field, or (older pages, scripts) an `hx-prompt` answer."""
    if "urlencoded" in request.headers.get("content-type", "") or "multipart" in request.headers.get(
        "content-type", ""
    ):
        value = (await request.form()).get(field)
        if isinstance(value, str):
            return value
    return prompt_answer(request)


def safe_next(value: str | None) -> str:
    """Only same-site paths: `//evil.example` or `https://...` would make sign-in an open redirect."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def form_body(kind: type[T], fields: dict[str, Any]) -> T:
    """A page form as the API's own body struct. `msgspec.convert` runs the struct's constraints (lengths, bounds),
    which its constructor does not; lax mode turns the form's strings into numbers. Bad input is a 400 that says
    which field, never a 500."""
    try:
        return msgspec.convert(fields, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise ClientException(f"check the form: {exc}") from None


def page(name: str, status_code: int = 200, **context: Any) -> Template:
    return Template(f"pages/{name}.html", context=context, status_code=status_code)


def fragment(name: str, status_code: int = 200, **context: Any) -> Template:
    return Template(f"fragments/{name}.html", context=context, status_code=status_code)


class PageUser(msgspec.Struct):
    """What the page frame shows about its reader (their own name is theirs to see)."""

    name: str
    email: str
    unread: int
    # Drop-ins live now in the reader's circles: a banner on every page until they end.
    live_dropins: list[LiveNow]


async def page_user(request: Request[Any, Any, Any]) -> PageUser | None:
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        return None
    me = await accounts.me(user.account_id)
    await mailprefs.visited(user.account_id)
    return PageUser(
        name=me.name,
        email=me.email,
        unread=await notifications.unread_count(user.account_id),
        live_dropins=await dropins.live_for_account(user.account_id),
    )


TAGS = re.compile(r"<[^>]+>")
EXCERPT = 80


def excerpt(rendered: str, size: int = EXCERPT) -> str:
    """About `size` characters of a post's sanitised HTML as plain text, cut at a word where one is near."""
    text = " ".join(html_text.unescape(TAGS.sub(" ", rendered)).split())
    if len(text) <= size:
        return text
    cut = text[: size - 1]
    if " " in cut[size // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:—-") + "…"


# How a page answers a missing sign-in and a 4xx (every page router uses them).
PAGE_ERRORS: dict[Any, Any] = {SignInRequired: _redirect_to_sign_in, HTTPException: _page_error}
