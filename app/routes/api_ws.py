"""GET /api/v1/ws: the one multiplexed socket (contract), and its HTML variant for Kindred's own pages.

A raw ASGI route rather than Litestar's WebSocket handler: the socket's writer sends every frame through the
server's own `send`, without Litestar's per-message wrapper. On the fan-out path that wrapper was a tenth of the
cost of a delivery. Authentication still comes from AuthMiddleware (scope["user"]), which runs for this route.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from litestar import asgi
from litestar.enums import ScopeType
from litestar.types import (
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
    WebSocketCloseEvent,
)

from app.auth.origins import origin_allowed
from app.auth.tokens import Principal
from realtime.connection import Connection
from realtime.hub import Hub
from realtime.types import Variant

# Closing before accepting makes the server refuse the handshake with HTTP 403.
_REFUSE = 1008


class _Socket:
    """The two ASGI callables the connection uses, nothing else."""

    __slots__ = ("receive", "send")

    def __init__(self, receive: Receive, send: Send) -> None:
        self.receive = receive
        self.send = send


def _refusal() -> WebSocketCloseEvent:
    return {"type": "websocket.close", "code": _REFUSE, "reason": ""}


@asgi("/ws", copy_scope=False)
async def ws(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != ScopeType.WEBSOCKET:
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": 426,
            "headers": [(b"content-type", b"application/json")],
        }
        body: HTTPResponseBodyEvent = {
            "type": "http.response.body",
            "body": b'{"status_code":426,"detail":"open a websocket here"}',
            "more_body": False,
        }
        await send(start)
        await send(body)
        return
    state: Any = scope["litestar_app"].state
    hub: Hub = state["hub"]
    principal = scope.get("user")
    if not isinstance(principal, Principal) or not origin_allowed(scope, state["settings"]):
        await send(_refusal())
        return
    account_id = str(principal.account_id)
    if hub.socket_count(account_id) >= hub.limits.sockets_per_account:
        await send(_refusal())
        return
    conn = Connection(
        _Socket(receive, send),
        hub,
        account_id=account_id,
        token_id=str(principal.token_id),
        variant=_variant(scope),
        poster=state["poster"],
    )
    if (await receive())["type"] != "websocket.connect":
        return
    # Registered before the handshake completes: every notification created after it reaches this socket.
    await hub.attach(conn)
    try:
        await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
    except Exception:
        await hub.detach(conn)
        raise
    # The handshake's headers are read by nothing from here on (authentication and the origin check are done); the
    # scope lives as long as the socket, so it stops holding them (bench S3: what an idle socket costs).
    scope["headers"] = []
    del state, principal, account_id
    await conn.run()


def _variant(scope: Scope) -> Variant:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return "html" if query.get("format") == ["html"] else "json"
