"""Rate limits: a sliding log per key, in memory or in Redis.

Why not Litestar's RateLimitMiddleware: it counts in a fixed window that starts at a client's first request, so a
client can send the whole allowance at the end of one window and again at the start of the next (twice the limit
within a few seconds), which breaks the contract's "120 posts in a minute get 429"; and with a Redis store it reads
and writes the count in two round trips, so instances racing on one key can both let a request through. A sliding
log answers exactly "how many in the last N seconds", and the Redis variant is one atomic script.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any, Protocol

import msgspec
from litestar.exceptions import HTTPException
from redis.exceptions import RedisError

from app.errors import RateLimited

log = logging.getLogger("kindred.limits")


class Rule(msgspec.Struct, frozen=True):
    name: str
    limit: int
    window: float  # seconds
    message: str


class Limiter(Protocol):
    async def hit(self, key: str, rule: Rule) -> float:
        """Record one event for `key`; 0 when allowed, else the seconds until one more would be."""
        ...


class MemoryLimiter:
    """One process's view; right for the embedded default, where there is only one process."""

    # Every this many hits, logs that have been idle for a whole window are dropped, so the map does not grow with
    # every caller ever seen.
    _SWEEP_EVERY = 4096

    def __init__(self) -> None:
        self._logs: dict[tuple[str, str], tuple[float, deque[float]]] = {}
        self._hits = 0

    async def hit(self, key: str, rule: Rule) -> float:
        now = time.monotonic()
        self._hits += 1
        if self._hits % self._SWEEP_EVERY == 0:
            self._sweep(now)
        slot = self._logs.get((rule.name, key))
        if slot is None:
            slot = self._logs[(rule.name, key)] = (rule.window, deque())
        log = slot[1]
        while log and log[0] <= now - rule.window:
            log.popleft()
        if len(log) >= rule.limit:
            return log[0] + rule.window - now
        log.append(now)
        return 0.0

    def _sweep(self, now: float) -> None:
        for key in [k for k, (window, log) in self._logs.items() if not log or log[-1] <= now - window]:
            del self._logs[key]


# KEYS[1]: the log. ARGV: now (ms), window (ms), limit, a unique member. Returns 0 when allowed, else ms to wait.
_SLIDING_LOG = """
local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', key, now, ARGV[4])
redis.call('PEXPIRE', key, window)
return 0
"""


class RedisLimiter:
    """Shared by every instance: one atomic script per hit.

    When Redis cannot be reached the limits are counted in this process instead: writes must keep working without
    Redis (the database is the record), and a per-instance limit is still a limit.
    """

    # Seconds to count locally after Redis failed, before asking it again: while Redis hangs, every request would
    # otherwise wait for its timeout.
    RETRY_AFTER_FAILURE = 5.0

    def __init__(self, redis: Any, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_SLIDING_LOG)
        self._fallback = MemoryLimiter()
        self._seq = 0
        self._local_until = 0.0

    async def hit(self, key: str, rule: Rule) -> float:
        if time.monotonic() < self._local_until:
            return await self._fallback.hit(key, rule)
        self._seq += 1
        now_ms = int(time.time() * 1000)
        member = f"{now_ms}-{id(self)}-{self._seq}"
        try:
            wait_ms = await self._script(
                keys=[f"{self._prefix}:rl:{rule.name}:{key}"],
                args=[now_ms, int(rule.window * 1000), rule.limit, member],
            )
        except (RedisError, OSError) as exc:
            log.warning("rate limits counted locally while Redis is unreachable: %s", exc)
            self._local_until = time.monotonic() + self.RETRY_AFTER_FAILURE
            return await self._fallback.hit(key, rule)
        return float(wait_ms) / 1000.0


async def enforce(limiter: Limiter, rule: Rule, key: str) -> None:
    wait = await limiter.hit(key, rule)
    if wait > 0:
        raise RateLimited(rule.message, retry_after=int(wait) + 1)


class RateLimits:
    """The limits Kindred enforces, by what they protect. Each call records one attempt or raises 429."""

    def __init__(self, limiter: Limiter, limits: Any) -> None:
        self._limiter = limiter
        minute, hour = 60.0, 3600.0
        self.rules = {
            "post": Rule("post", limits.posts_per_minute, minute, "you are posting very fast; wait a moment"),
            "gesture": Rule("gesture", limits.gestures_per_minute, minute, "slow down a little; try again soon"),
            "invite": Rule("invite", limits.invites_per_hour, hour, "too many invite links this hour"),
            "join": Rule("join", limits.joins_per_hour, hour, "too many joins this hour; try again later"),
            "login_account": Rule(
                "login_account",
                limits.logins_per_account,
                300.0,
                "too many sign-in attempts; try again in a few minutes",
            ),
            "login_address": Rule(
                "login_address", limits.logins_per_address, minute, "too many sign-ins from your network; wait a minute"
            ),
            "signup": Rule("signup", limits.signups_per_address, hour, "too many new accounts from your network"),
            "report": Rule("report", limits.reports_per_hour, hour, "too many reports this hour"),
        }

    async def check(self, rule: str, key: object) -> None:
        await enforce(self._limiter, self.rules[rule], str(key))


async def _field(request: Any, name: str) -> str:
    """A field of the request body, JSON or form, without disturbing the handler (Litestar caches the body)."""
    try:
        if request.content_type[0] == "application/json":
            body = await request.json()
        else:
            body = await request.form()
        value = body.get(name) if hasattr(body, "get") else None
    except HTTPException:
        raise  # the request itself is refused (a NUL byte, a body too large): say so, do not guess
    except Exception:
        return ""  # an unreadable body is the handler's to report
    return value if isinstance(value, str) else ""


async def rate_limit_hook(request: Any) -> None:
    """Litestar `before_request` hook: handlers say what they spend with `opt={"rate": ...}`."""
    rule = request.route_handler.opt.get("rate")
    if rule is None:
        return
    rates: RateLimits = request.app.state["rates"]
    address = request.client.host if request.client else "unknown"
    if rule == "login":
        await rates.check("login_address", address)
        email = (await _field(request, "email")).strip().lower()
        if email:
            await rates.check("login_account", email)
    elif rule == "signup":
        await rates.check("signup", address)
    else:
        user = request.scope.get("user")
        account = getattr(user, "account_id", None)
        if account is not None:
            await rates.check(rule, account)
