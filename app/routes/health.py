"""GET /healthz: is this instance able to serve (database reachable, bus connected)?"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response, get
from litestar.datastructures import State

from db.tables import Room


class Health(msgspec.Struct):
    status: str
    database: str
    bus: str
    sockets: int
    rooms: int
    stats: dict[str, int]


@get("/healthz", summary="Liveness and readiness", include_in_schema=False)
async def healthz(state: State) -> Response[Health]:
    hub: Any = state["hub"]
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
            sockets=sockets,
            rooms=len(hub.rooms),
            stats=dict(hub.stats),
        ),
        status_code=200 if ok else 503,
    )
