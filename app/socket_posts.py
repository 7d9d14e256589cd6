"""Posting over the websocket (issue 20; docs/realtime.md "Posting over the socket").

`{"op": "post", ...}` is `POST /api/v1/rooms/{room_id}/posts` without the HTTP request: the same sign-in check, the
same rate-limit bucket, the same service (`app.services.posts.create_post`: rights, validation, idempotency by
`client_id`, the outbox and its fan-out), and the same status and message in the `error` frame that answers a refusal.
"""

from __future__ import annotations

import logging
import uuid
from typing import Literal

import msgspec
from litestar.exceptions import HTTPException

from app.auth.cache import AuthCaches, SignIn
from app.errors import is_db_down
from app.limits import RateLimits
from app.live import Live
from app.schemas import PostCreate
from app.schemas.lab import ExperimentPlan
from app.services import posts
from db.engine import expire_pool
from db.queries import now
from db.tables import AuthToken
from realtime.connection import Connection, post_refused
from realtime.events import OpError, Posted
from realtime.protocol import PostOp
from realtime.types import CLOSE_POLICY

log = logging.getLogger("kindred.ws.posts")

# The sign-in the socket was opened with must still hold for each post: a token revoked on another instance while
# Redis was away would otherwise keep a socket posting, since its `signed_out` never arrived.
_STILL_SIGNED_IN = (
    "SELECT t.expires_at FROM auth_token t JOIN account a ON a.id = t.account "
    "WHERE t.id = {} AND t.account = {} AND a.deleted_at IS NULL"
)
_experiment_decoder = msgspec.json.Decoder(ExperimentPlan | None)

# The contract's error codes for the statuses a post can be refused with.
_CODES = {
    400: "invalid",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    410: "gone",
    413: "too_large",
    422: "invalid",
    429: "rate_limited",
    503: "unavailable",
}
DB_DOWN_DETAIL = "the database is unreachable right now; nothing was saved, try again shortly"


async def still_signed_in(account_id: str, token_id: str | None, caches: AuthCaches | None = None) -> bool:
    if token_id is None:
        return False
    token, account = uuid.UUID(token_id), uuid.UUID(account_id)

    async def load() -> SignIn | None:
        rows = await AuthToken.raw(_STILL_SIGNED_IN, token, account)
        return SignIn(account_id=account, token_id=token, expires_at=rows[0]["expires_at"]) if rows else None

    # Keyed by the token's id (the socket holds no secret): dropped with the digest's entry by the same events.
    found = await (caches.sign_in(("id", token), load) if caches is not None else load())
    return found is not None and found.account_id == account and found.expires_at > now()


def refusal(op: PostOp, status: int, detail: str, retry_after: int | None = None) -> OpError:
    return post_refused(op, _CODES.get(status, "internal"), detail, status, retry_after)


def _retry_after(exc: HTTPException) -> int | None:
    value = (exc.headers or {}).get("Retry-After")
    return int(value) if value is not None and value.isdigit() else None


def as_create(op: PostOp) -> PostCreate:
    """The HTTP body the op stands for. The op's own decoding already checked what msgspec checks for that body."""
    raw = bytes(op.experiment)
    try:
        experiment = _experiment_decoder.decode(raw) if raw else None
    except msgspec.ValidationError as exc:
        # The HTTP API says this in `extra`; the frame has only `detail`, so it names the field there, in full.
        where = str(exc).replace("`$", "`$.experiment")
        raise HTTPException(status_code=400, detail=f"frame does not match the protocol: {where}") from None
    return PostCreate(
        body=op.body,
        kind=op.kind,
        parent_id=op.parent_id,
        client_id=op.client_id,
        experiment=experiment,
        content_note=op.content_note,
        reply_wish=op.reply_wish,
    )


class SocketPoster:
    """The application's `realtime.connection.Poster`: one per instance."""

    def __init__(self, rates: RateLimits, live: Live) -> None:
        self._rates = rates
        self._live = live

    async def post(self, conn: Connection, op: PostOp) -> msgspec.Struct | None:
        outcome: Posted | OpError | Literal["signed_out"]
        try:
            outcome = await self._create(conn, op)
        except HTTPException as exc:
            outcome = refusal(op, exc.status_code, exc.detail, _retry_after(exc))
        except Exception as exc:
            if is_db_down(exc):
                log.warning("database unavailable for a socket post: %s", exc)
                expire_pool()
                outcome = refusal(op, 503, DB_DOWN_DETAIL, 5)
            else:
                log.exception("unhandled error for a socket post", exc_info=exc)
                outcome = refusal(op, 500, "something went wrong on our side; it has been logged")
        if outcome == "signed_out":
            # As when `signed_out` arrives on the bus: the socket closes (1008), and nothing is written.
            conn.close_soon(CLOSE_POLICY, "signed out")
            return None
        return outcome

    async def _create(self, conn: Connection, op: PostOp) -> Posted | Literal["signed_out"]:
        if not await still_signed_in(conn.account_id, conn.token_id, self._live.caches):
            return "signed_out"
        # The HTTP route's bucket (`opt={"rate": "post"}`), counted before the body is looked at, as there.
        await self._rates.check("post", conn.account_id)
        post = await posts.create_post(uuid.UUID(conn.account_id), op.room_id, as_create(op), self._live)
        return Posted(client_id=op.client_id, post=post)
