"""The one place request bodies are decoded.

Litestar hands a JSON body to msgspec, which raises ``UnicodeDecodeError`` for invalid UTF-8 inside a string and
``RecursionError`` for deeply nested arrays; neither is a ``msgspec.DecodeError``, so both used to surface as 500s.
Every JSON body of every route is decoded by :meth:`KindredRequest.json`, so catching them here fixes the class.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import ClientException

# msgspec itself refuses nesting deeper than this (it raises RecursionError); no Kindred body nests past 4 levels.
MAX_JSON_DEPTH = 32


def _depth_exceeds(body: bytes, limit: int) -> bool:
    """True if brackets nest deeper than ``limit`` outside strings: a cheap scan before msgspec sees the body."""
    depth = 0
    in_string = False
    escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


class KindredRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        body = await self.body()
        opening = body.count(b"[") + body.count(b"{")
        if opening > MAX_JSON_DEPTH and _depth_exceeds(body, MAX_JSON_DEPTH):
            raise ClientException(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels; send a flat object")
        try:
            return await super().json()
        except UnicodeDecodeError:
            raise ClientException("the JSON body is not valid UTF-8; send text encoded as UTF-8") from None
        except RecursionError:  # the depth scan refuses these first; kept so no path can become a 500
            raise ClientException("the JSON body nests too deeply; send a flat object") from None
