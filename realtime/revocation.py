"""Losing access, on this instance: a removal, a circle closed, an alias changed, a revoke lost with the bus.

A revoke arrives on the account's channel. The account's sockets are cut off from the circle's rooms at once (before
anything else is delivered), then unsubscribed (presence, the error frame) in a task. Because a revoke published
while Redis was away is lost, every live subscription is also re-checked against the database: after a reconnect,
before events read back from the log are delivered, and on a slow timer as a backstop.
"""

from __future__ import annotations

import logging
from typing import Protocol

import msgspec

from realtime.events import AliasChanged, ErrorFrame, Membership
from realtime.types import CLOSE_POLICY, Socket

log = logging.getLogger("kindred.revocation")


class SocketIndex(Protocol):
    """What revocation needs of the hub: the sockets by account, and ways to unsubscribe and to re-join presence."""

    accounts: dict[str, set[Socket]]

    def cut_off(self, conn: Socket, room_id: str) -> None:
        """Stop delivering the room to `conn` now (synchronously); the unsubscribe follows."""
        ...

    async def unsubscribe(self, conn: Socket, room_id: str, *, quiet: bool = False) -> None: ...

    async def still_allowed(self, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]: ...

    async def rejoin_presence(self, conn: Socket, room_id: str, old: Membership, new: Membership) -> None: ...


class Revocations:
    def __init__(self, index: SocketIndex) -> None:
        self.index = index

    def cut_off(self, account_id: str, circle_id: str) -> None:
        for conn in self.index.accounts.get(account_id, ()):
            for room_id, access in conn.rooms.items():
                if access.circle_id == circle_id:
                    self.index.cut_off(conn, room_id)

    async def revoke(self, account_id: str, circle_id: str) -> None:
        for conn in list(self.index.accounts.get(account_id, ())):
            lost = False
            for room_id, access in list(conn.rooms.items()):
                if access.circle_id == circle_id:
                    lost = True
                    await self.index.unsubscribe(conn, room_id, quiet=True)
                    conn.reply(
                        ErrorFrame(
                            code="forbidden", detail="you are no longer a member of this circle", room_id=room_id
                        )
                    )
            # A page's socket exists for one room; with that room gone it is closed, not left open and idle.
            if lost and conn.variant == "html" and not conn.rooms:
                conn.close_soon(CLOSE_POLICY, "no longer a member of this circle")

    async def revalidate(self) -> None:
        """Re-check every live subscription's (account, circle) against the database; revoke what is no longer so."""
        pairs = {
            (conn.account_id, access.circle_id)
            for conns in self.index.accounts.values()
            for conn in conns
            for access in conn.rooms.values()
        }
        if not pairs:
            return
        allowed = await self.index.still_allowed(pairs)
        for account_id, circle_id in pairs - allowed:
            await self.revoke(account_id, circle_id)

    async def alias_changed(self, message: AliasChanged) -> None:
        """The account's sockets in that circle appear under the new alias from now on, in presence as everywhere."""
        for conn in list(self.index.accounts.get(message.account_id, ())):
            for room_id, access in list(conn.rooms.items()):
                if access.circle_id != message.circle_id or access.who.membership_id != message.who.membership_id:
                    continue
                conn.rooms[room_id] = msgspec.structs.replace(access, who=message.who)
                await self.index.rejoin_presence(conn, room_id, access.who, message.who)
