"""GET /api/v1/ws: the one multiplexed socket (contract), and its HTML variant for Kindred's own pages."""

from __future__ import annotations

from typing import Any

from litestar import WebSocket, websocket
from litestar.datastructures import State

from app.auth.origins import origin_allowed
from app.auth.tokens import Principal
from realtime.connection import CLOSE_POLICY, Connection, Variant
from realtime.hub import Hub

# Closing before accepting makes the server refuse the handshake with HTTP 403.
_REFUSE = 1008


@websocket("/ws", summary="Realtime: subscribe to rooms, receive events, presence and notifications")
async def ws(socket: WebSocket[Any, Any, Any], state: State) -> None:
    settings = state["settings"]
    hub: Hub = state["hub"]
    principal = socket.scope.get("user")
    if not isinstance(principal, Principal) or not origin_allowed(socket.scope, settings):
        await socket.close(code=_REFUSE)
        return
    account_id = str(principal.account_id)
    if hub.socket_count(account_id) >= hub.limits.sockets_per_account:
        await socket.close(code=_REFUSE)
        return
    variant: Variant = "html" if socket.query_params.get("format") == "html" else "json"
    conn = Connection(socket, hub, account_id=account_id, token_id=str(principal.token_id), variant=variant)
    # Registered before the handshake completes: every notification created after it reaches this socket.
    await hub.attach(conn)
    try:
        await socket.accept()
    except Exception:
        await hub.detach(conn)
        raise
    await conn.run()


__all__ = ["CLOSE_POLICY", "ws"]
