"""Errors a client can cause, as 4xx responses with a message that says what to fix; and the 503 for a database
that cannot be reached. Never a 500 for anything a client can send."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import Any

import asyncpg
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException
from litestar.status_codes import (
    HTTP_409_CONFLICT,
    HTTP_410_GONE,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from db.engine import expire_pool

log = logging.getLogger("kindred.errors")


class Conflict(HTTPException):
    status_code = HTTP_409_CONFLICT


class Gone(HTTPException):
    status_code = HTTP_410_GONE


class RateLimited(HTTPException):
    status_code = HTTP_429_TOO_MANY_REQUESTS

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail=detail, headers={"Retry-After": str(max(1, retry_after))})


class Unavailable(HTTPException):
    status_code = HTTP_503_SERVICE_UNAVAILABLE


def not_found(what: str) -> NotFoundException:
    # Same answer whether the thing does not exist or the caller may not know of it.
    return NotFoundException(detail=f"{what} not found")


# Exceptions that mean "the database is unreachable or overloaded", not "the request was wrong".
DB_DOWN: tuple[type[BaseException], ...] = (
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    # What asyncpg raises when a pooled connection was terminated by the server while idle.
    asyncpg.InternalClientError,
)


# SQLSTATE classes that mean "cannot reach or use the server right now": connection exception, insufficient
# resources, operator intervention (shutdown, terminated backend), system error; 55000 covers a database that is
# not accepting connections.
_PG_DOWN_CLASSES = ("08", "53", "57", "58")


def is_db_down(exc: BaseException) -> bool:
    if isinstance(exc, DB_DOWN):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", "") or ""
        return state[:2] in _PG_DOWN_CLASSES or state == "55000"
    if isinstance(exc, sqlite3.OperationalError):
        message = str(exc)
        return "locked" in message or "unable to open" in message or "disk I/O" in message
    return False


def db_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if is_db_down(exc):
        log.warning("database unavailable for %s %s: %s", request.method, request.url.path, exc)
        expire_pool()
        return Response(
            {
                "status_code": 503,
                "detail": "the database is unreachable right now; nothing was saved, try again shortly",
            },
            status_code=HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )
    log.exception("unhandled error for %s %s", request.method, request.url.path, exc_info=exc)
    return Response(
        {"status_code": 500, "detail": "something went wrong on our side; it has been logged"},
        status_code=500,
    )
