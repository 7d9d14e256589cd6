"""Rate limits: a sliding log per key, in memory or in Redis.

Why not Litestar's RateLimitMiddleware: it counts in a fixed window that starts at a client's first request, so a
client can send the whole allowance at the end of one window and again at the start of the next (twice the limit
within a few seconds), which breaks the contract's "120 posts in a minute get 429"; and with a Redis store it reads
and writes the count in two round trips, so instances racing on one key can both let a request through. A sliding
log answers exactly "how many in the last N seconds", and the Redis variant is one atomic script.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
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
    async def hit(self, key: str, rule: Rule, member: str | None = None) -> float:
        """Record one event for `key`; 0 when allowed, else the seconds until one more would be. `member` names the
        event so that `release` can take it back."""
        ...

    async def release(self, key: str, rule: Rule, member: str) -> None:
        """Take back an event recorded with `member` (an attempt that turned out to be a success)."""
        ...

    async def remember(self, key: str, seconds: float) -> None:
        """Keep a marker for `seconds` (an address that signed in to an account)."""
        ...

    async def remembers(self, key: str) -> bool: ...


class MemoryLimiter:
    """One process's view; right for the embedded default, where there is only one process."""

    # Every this many hits, logs that have been idle for a whole window are dropped, so the map does not grow with
    # every caller ever seen.
    _SWEEP_EVERY = 4096

    def __init__(self) -> None:
        self._logs: dict[tuple[str, str], tuple[float, deque[tuple[float, str | None]]]] = {}
        self._marks: dict[str, float] = {}
        self._hits = 0

    async def hit(self, key: str, rule: Rule, member: str | None = None) -> float:
        now = time.monotonic()
        self._hits += 1
        if self._hits % self._SWEEP_EVERY == 0:
            self._sweep(now)
        slot = self._logs.get((rule.name, key))
        if slot is None:
            slot = self._logs[(rule.name, key)] = (rule.window, deque())
        log = slot[1]
        while log and log[0][0] <= now - rule.window:
            log.popleft()
        if len(log) >= rule.limit:
            return log[0][0] + rule.window - now
        log.append((now, member))
        return 0.0

    async def release(self, key: str, rule: Rule, member: str) -> None:
        slot = self._logs.get((rule.name, key))
        if slot is not None:
            for entry in slot[1]:
                if entry[1] == member:
                    slot[1].remove(entry)
                    return

    async def remember(self, key: str, seconds: float) -> None:
        self._marks[key] = time.monotonic() + seconds

    async def remembers(self, key: str) -> bool:
        until = self._marks.get(key)
        return until is not None and until > time.monotonic()

    def _sweep(self, now: float) -> None:
        for key in [k for k, (window, log) in self._logs.items() if not log or log[-1][0] <= now - window]:
            del self._logs[key]
        for mark in [k for k, until in self._marks.items() if until <= now]:
            del self._marks[mark]


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

    def _key(self, key: str, rule: Rule) -> str:
        return f"{self._prefix}:rl:{rule.name}:{key}"

    def _local(self) -> bool:
        return time.monotonic() < self._local_until

    def _failed(self, exc: BaseException) -> None:
        log.warning("rate limits counted locally while Redis is unreachable: %s", exc)
        self._local_until = time.monotonic() + self.RETRY_AFTER_FAILURE

    async def hit(self, key: str, rule: Rule, member: str | None = None) -> float:
        if self._local():
            return await self._fallback.hit(key, rule, member)
        self._seq += 1
        now_ms = int(time.time() * 1000)
        member = member or f"{now_ms}-{id(self)}-{self._seq}"
        try:
            wait_ms = await self._script(
                keys=[self._key(key, rule)], args=[now_ms, int(rule.window * 1000), rule.limit, member]
            )
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return await self._fallback.hit(key, rule, member)
        return float(wait_ms) / 1000.0

    async def release(self, key: str, rule: Rule, member: str) -> None:
        if not self._local():
            try:
                await self._redis.zrem(self._key(key, rule), member)
                return
            except (RedisError, OSError) as exc:
                self._failed(exc)
        await self._fallback.release(key, rule, member)

    async def remember(self, key: str, seconds: float) -> None:
        if not self._local():
            try:
                await self._redis.set(f"{self._prefix}:known:{key}", b"1", px=int(seconds * 1000))
                return
            except (RedisError, OSError) as exc:
                self._failed(exc)
        await self._fallback.remember(key, seconds)

    async def remembers(self, key: str) -> bool:
        if not self._local():
            try:
                return bool(await self._redis.exists(f"{self._prefix}:known:{key}"))
            except (RedisError, OSError) as exc:
                self._failed(exc)
        return await self._fallback.remembers(key)


async def enforce(limiter: Limiter, rule: Rule, key: str) -> None:
    wait = await limiter.hit(key, rule)
    if wait > 0:
        raise RateLimited(rule.message, retry_after=int(wait) + 1)


# How long an address that signed in to an account counts as that account's usual address.
KNOWN_ADDRESS_SECONDS = 30 * 24 * 3600.0
_RESERVED = "kindred.reserved"
_SIGN_IN = "kindred.sign_in"


def _digest(*parts: str) -> str:
    """Keys that pair an email with an address are stored hashed: Redis need not hold who signs in from where."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


class RateLimits:
    """The limits Kindred enforces, by what they protect. Each call records one attempt or raises 429."""

    def __init__(self, limiter: Limiter, limits: Any) -> None:
        self._limiter = limiter
        # Set once X-Forwarded-For from an untrusted peer has been logged: once per process is enough.
        self.warned_untrusted_proxy = False
        minute, hour = 60.0, 3600.0
        self.rules = {
            "post": Rule("post", limits.posts_per_minute, minute, "you are posting very fast; wait a moment"),
            "edit": Rule("edit", limits.edits_per_minute, minute, "you are editing very fast; wait a moment"),
            "gesture": Rule("gesture", limits.gestures_per_minute, minute, "slow down a little; try again soon"),
            "invite": Rule("invite", limits.invites_per_hour, hour, "too many invite links this hour"),
            "join": Rule("join", limits.joins_per_hour, hour, "too many joins this hour; try again later"),
            "alias": Rule("alias", limits.alias_changes_per_hour, hour, "too many alias changes this hour"),
            "circle": Rule("circle", limits.circles_per_hour, hour, "too many new circles this hour"),
            "room": Rule("room", limits.rooms_per_hour, hour, "too many new rooms and drop-ins this hour"),
            # Failed sign-ins for one email from one address: slows guessing to a crawl without locking the owner out
            # from their own address. Successful sign-ins are not counted.
            "login_account": Rule(
                "login_account",
                limits.logins_per_account,
                300.0,
                "too many wrong passwords for this account; try again in a few minutes",
            ),
            # Failed sign-ins for one email from everywhere, except addresses that signed in to it recently: a bound
            # on guessing from many addresses, which its owner, at their usual address, never meets.
            "login_email": Rule(
                "login_email",
                limits.login_failures_per_email,
                hour,
                "too many wrong passwords for this account from many places; try again later",
            ),
            "login_address": Rule(
                "login_address", limits.logins_per_address, minute, "too many sign-ins from your network; wait a minute"
            ),
            # Wrong current passwords (password change, account deletion) count like failed sign-ins.
            "reauth": Rule(
                "reauth",
                limits.logins_per_account,
                300.0,
                "too many wrong passwords; try again in a few minutes",
            ),
            "signup": Rule("signup", limits.signups_per_address, hour, "too many new accounts from your network"),
            "report": Rule("report", limits.reports_per_hour, hour, "too many reports this hour"),
            "reset_address": Rule(
                "reset_address", limits.resets_per_address, hour, "too many password resets from your network"
            ),
            "reset_email": Rule("reset_email", limits.resets_per_email, hour, "reset mail for this address is paused"),
            "email_change": Rule(
                "email_change",
                limits.email_changes_per_hour,
                hour,
                "you asked for many address changes this hour; try again later",
            ),
            "email_change_to": Rule(
                "email_change_to", limits.email_changes_per_address, hour, "change mail for this address is paused"
            ),
        }

    async def check(self, rule: str, key: object) -> None:
        await enforce(self._limiter, self.rules[rule], str(key))

    async def allows(self, rule: str, key: str) -> bool:
        """Count one attempt; False past the limit (for limits that answer the same either way)."""
        return await self._limiter.hit(_digest(key), self.rules[rule]) <= 0

    async def reserve(self, request: Any, rule: str, key: str) -> None:
        """Count this attempt as a failure until it proves otherwise (`succeeded`). Reserving before checking the
        password means concurrent guesses cannot all slip in before the first failure is counted."""
        member = uuid.uuid4().hex
        wait = await self._limiter.hit(key, self.rules[rule], member)
        if wait > 0:
            raise RateLimited(self.rules[rule].message, retry_after=int(wait) + 1)
        request.scope.setdefault(_RESERVED, []).append((rule, key, member))

    async def succeeded(self, request: Any) -> None:
        """The credentials were right: give back the slots this attempt reserved, and remember the address."""
        for rule, key, member in request.scope.pop(_RESERVED, []):
            await self._limiter.release(key, self.rules[rule], member)
        signed_in = request.scope.pop(_SIGN_IN, None)
        if signed_in is not None:
            await self._limiter.remember(_digest(*signed_in), KNOWN_ADDRESS_SECONDS)

    async def sign_in_attempt(self, request: Any, email: str, address: str) -> None:
        await self.reserve(request, "login_account", _digest(email, address))
        if not await self._limiter.remembers(_digest(email, address)):
            await self.reserve(request, "login_email", _digest(email))
        request.scope[_SIGN_IN] = (email, address)


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


def _note_untrusted_proxy(request: Any, rates: RateLimits) -> None:
    """Behind a proxy that Kindred was not told to trust, every request seems to come from the proxy, so every
    per-address limit is one bucket shared by everyone. Say so once per process, in the log, where an operator looks."""
    if rates.warned_untrusted_proxy or request.app.state["settings"].trust_proxy:
        return
    if "x-forwarded-for" in request.headers or "forwarded" in request.headers:
        rates.warned_untrusted_proxy = True
        peer = request.client.host if request.client else "unknown"
        log.warning(
            "requests arrive with X-Forwarded-For from %s, which is not trusted: per-address limits see one address "
            "for everyone behind it. Set KINDRED_TRUST_PROXY to the proxy's address (see docs/security.md).",
            peer,
        )


async def rate_limit_hook(request: Any) -> None:
    """Litestar `before_request` hook: handlers say what they spend with `opt={"rate": ...}`."""
    rule = request.route_handler.opt.get("rate")
    if rule is None:
        return
    rates: RateLimits = request.app.state["rates"]
    _note_untrusted_proxy(request, rates)
    address = request.client.host if request.client else "unknown"
    if rule == "login":
        await rates.check("login_address", address)
        email = (await _field(request, "email")).strip().lower()
        if email:
            await rates.sign_in_attempt(request, email, address)
    elif rule == "signup":
        await rates.check("signup", address)
    elif rule == "reset":
        await rates.check("reset_address", address)
    else:
        user = request.scope.get("user")
        account = getattr(user, "account_id", None)
        if account is None:
            return
        if rule == "reauth":
            await rates.reserve(request, "reauth", str(account))
        else:
            await rates.check(rule, account)


@contextlib.asynccontextmanager
async def failures_only(request: Any, wrong: int) -> AsyncIterator[None]:
    """Around the password check of a handler whose rule counts failures only: the slot reserved for this attempt
    stays counted only when the answer is `wrong` (the status of a wrong password); otherwise it is given back."""
    rates: RateLimits = request.app.state["rates"]
    try:
        yield
    except HTTPException as exc:
        if exc.status_code != wrong:
            await rates.succeeded(request)
        raise
    await rates.succeeded(request)
