"""The only place channel names are made. Every name carries the deployment prefix, so deployments (and test runs)
can share one Redis without hearing each other."""

from __future__ import annotations


class Topics:
    __slots__ = ("_prefix",)

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix

    def room(self, room_id: str) -> str:
        return f"{self._prefix}:room:{room_id}"

    def account(self, account_id: str) -> str:
        return f"{self._prefix}:account:{account_id}"

    def caches(self) -> str:
        """Cache invalidations (sign-ins, room access): every instance subscribes to it for as long as it runs."""
        return f"{self._prefix}:caches"

    def presence_key(self, room_id: str) -> str:
        """Redis sorted set of who is in a room (member -> expiry), shared by all instances."""
        return f"{self._prefix}:presence:{room_id}"

    def parse(self, channel: str) -> tuple[str, str] | None:
        """`(kind, id)` for one of our channel names, kind being 'room' or 'account'; None for anything else."""
        head, sep, rest = channel.partition(":")
        if not sep or head != self._prefix:
            return None
        kind, sep, ident = rest.partition(":")
        if not sep or kind not in ("room", "account"):
            return None
        return kind, ident
