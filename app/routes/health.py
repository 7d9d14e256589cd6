"""GET /healthz: is this instance able to serve (database reachable, bus connected)?

Anyone may ask whether it is up; how many sockets and rooms it holds and its delivery counters are for an operator
only (`Authorization: Bearer $KINDRED_OPS_TOKEN`): they say how busy a circle's service is, which is nobody else's
business, and help time an attack."""

from __future__ import annotations

import hmac
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.datastructures import State

from db.tables import Room


class Health(msgspec.Struct, omit_defaults=True):
    status: str
    database: str
    bus: str
    sockets: int | None = None
    rooms: int | None = None
    stats: dict[str, int] | None = None
    # This instance's mail sender: sent, logged, retried, failed (app/mail.py).
    mail: dict[str, int] | None = None


def _is_operator(request: Request[Any, Any, Any], token: str | None) -> bool:
    if not token:
        return False
    given = request.headers.get("authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


@get("/healthz", summary="Liveness and readiness", include_in_schema=False)
async def healthz(state: State, request: Request[Any, Any, Any]) -> Response[Health]:
    hub: Any = state["hub"]
    operator = _is_operator(request, state["settings"].ops_token)
    try:
        await Room.select(Room.id).limit(1)
        database = "ok"
    except Exception:
        database = "unreachable"
    bus = "up" if hub.bus is not None and hub.bus.is_up else "down"
    ok = database == "ok"
    sockets = sum(len(conns) for conns in hub.accounts.values())
    return Response(
        Health(
            status="ok" if ok and bus == "up" else "degraded",
            database=database,
            bus=bus,
            sockets=sockets if operator else None,
            rooms=len(hub.rooms) if operator else None,
            stats={**hub.stats, **state["live"].caches.stats, **state["live"].caches.sizes()} if operator else None,
            mail=dict(state["mailer"].stats) if operator and "mailer" in state else None,
        ),
        status_code=200 if ok else 503,
    )
