"""What Litestar's generated OpenAPI document cannot know by itself: the error answers every operation can give, and
the websocket (an ASGI route, which Litestar leaves out of the document)."""

from __future__ import annotations

import inspect
from typing import Any

from litestar import Litestar
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ServiceUnavailableException,
)
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, Operation, Parameter, PathItem, Schema
from litestar.openapi.spec.enums import OpenAPIType

from app.errors import Conflict, Gone, RateLimited


class TooLarge(HTTPException):
    status_code = 413


UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def document_errors(handlers: list[Any]) -> None:
    """Give each API handler the error answers it can give, unless it lists its own: 404 for what the caller may
    not know of, 403 for what they may not do, 401 without a sign-in, 409 for a write that conflicts, 413 for a body
    too large, 429 where a rate limit applies, and 503 while the database is unreachable."""
    for handler in handlers:
        if not isinstance(handler, HTTPRouteHandler) or handler.raises:
            continue
        raises: list[type[HTTPException]] = [NotFoundException, PermissionDeniedException, ServiceUnavailableException]
        if "principal" in inspect.signature(handler.fn).parameters:
            raises.append(NotAuthorizedException)
        if handler.http_methods & UNSAFE:
            raises += [Conflict, TooLarge]
        if handler.opt.get("rate"):
            raises.append(RateLimited)
        if handler.fn.__name__ == "join":
            raises.append(Gone)
        handler.raises = raises


def _schema(kind: OpenAPIType, description: str) -> Schema:
    return Schema(type=kind, description=description)


def document_websocket(path: str) -> Any:
    """An `on_startup` hook that adds the websocket to the document (frames as in shared/contract.md)."""

    def hook(app: Litestar) -> None:
        app.openapi_schema.paths = app.openapi_schema.paths or {}
        app.openapi_schema.paths[path] = PathItem(
            get=Operation(
                tags=["api"],
                summary="The multiplexed websocket: room events, presence and your notifications",
                description=(
                    "Upgrade to a websocket (cookie or `Authorization: Bearer`). Client frames: "
                    '`{"op": "subscribe", "room_id", "since"?}`, `{"op": "unsubscribe", "room_id"}`, `{"op": "ping"}`, '
                    '`{"op": "post", "room_id", "client_id", "body", "kind"?, "parent_id"?, "content_note"?, '
                    '"reply_wish"?, "experiment"?}` (a post, as `POST /rooms/{room_id}/posts` makes it). '
                    "Server frames: `subscribed`, `unsubscribed`, `resync`, `event` (with `seq`), `presence`, "
                    '`notification`, `pong`, `posted` (`{"client_id", "post"}`), `error` (for a post: with `op`, '
                    "`client_id`, and `status`, the HTTP API's status). Frames over 64 KiB close 1009, floods close "
                    "1008, a consumer "
                    "too slow to keep up closes 1013 and should reconnect with `since`. See shared/contract.md."
                ),
                operation_id="ApiV1Websocket",
                parameters=[
                    Parameter(
                        name="format",
                        param_in="query",
                        required=False,
                        schema=Schema(type=OpenAPIType.STRING, enum=["json", "html"]),
                        description="`html`: event frames carry a rendered fragment instead of `data` (Kindred's pages).",
                    )
                ],
                responses={
                    "101": OpenAPIResponse(description="Switching Protocols: the socket is open"),
                    "403": OpenAPIResponse(
                        description="Refused at the handshake: not signed in, a foreign Origin, or too many sockets"
                    ),
                    "426": OpenAPIResponse(
                        description="Upgrade Required: a plain HTTP request",
                        content={
                            "application/json": OpenAPIMediaType(
                                schema=Schema(
                                    type=OpenAPIType.OBJECT,
                                    properties={
                                        "status_code": _schema(OpenAPIType.INTEGER, "426"),
                                        "detail": _schema(OpenAPIType.STRING, "what to do instead"),
                                    },
                                )
                            )
                        },
                    ),
                },
            )
        )

    return hook
