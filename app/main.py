"""The composition root: settings in, a Litestar application out."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from litestar import Litestar, Response, Router
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import ResponseHeader, State
from litestar.middleware import DefineMiddleware
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from app.auth.cache import AuthCaches
from app.auth.middleware import AuthMiddleware
from app.deps import DEPENDENCIES
from app.errors import db_error_handler
from app.hubstore import DatabaseHubStore
from app.limits import Limiter, MemoryLimiter, RateLimits, RedisLimiter, rate_limit_hook
from app.live import Live
from app.mail import Mailer
from app.notifier import Notifier
from app.push import DEFAULT_PUSH_ORIGINS, PushSender, VapidKey
from app.requests import KindredRequest
from app.routes import (
    api_accounts,
    api_care,
    api_circles,
    api_dropins,
    api_email_change,
    api_gestures,
    api_lab,
    api_moderation,
    api_notifications,
    api_posts,
    api_pulse,
    api_recovery,
    api_search,
    api_ws,
    health,
    openapi,
    pages,
)
from app.services import circles, digests, dropins, lab
from app.settings import Settings, load_settings
from app.socket_posts import SocketPoster
from db import engine as db_engine
from db.migrate import pending
from realtime.bus import PUBLISH_TIMEOUT, Bus, memory_backend, redis_backend_factory
from realtime.cluster import close_cluster, cluster_backend_factory, cluster_client, is_cluster_url
from realtime.hub import Hub
from realtime.presence import MemoryPresence, PresenceStore, RedisPresence
from realtime.render import HtmlRenderer
from realtime.topics import Topics
from realtime.types import SocketLimits
from web.templating import STATIC, environment

log = logging.getLogger("kindred")

# No inline script or style anywhere: everything the pages run is a file under /static.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    ResponseHeader(name="Content-Security-Policy", value=CONTENT_SECURITY_POLICY),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="same-origin"),
    ResponseHeader(name="X-Frame-Options", value="DENY"),
    ResponseHeader(name="Permissions-Policy", value="camera=(), microphone=(), geolocation=()"),
]


# Seconds a Redis command made on a request's behalf (rate limits, presence) may take.
REDIS_TIMEOUT = 0.5
# Seconds between sweeps for closed circles whose grace period has passed.
PURGE_INTERVAL = 3600.0
# Seconds between looks for drop-ins about to start (their reminders go out ten minutes before).
REMINDER_INTERVAL = 60.0
# How long shutdown waits for a periodic job's current run before cancelling it.
JOB_GRACE = 10.0


class MigrationsPending(RuntimeError):
    pass


async def _every(seconds: float, job: Callable[[], Awaitable[object]], stop: asyncio.Event) -> None:
    """Run `job` now and then every `seconds` until `stop` is set; a failing run is logged and the next one still
    happens. Shutdown waits for a run in progress instead of cancelling it: a query cancelled while aiosqlite opens
    its connection leaks that connection's thread, and the process then never exits (`kindred demo` hung so)."""
    while not stop.is_set():
        try:
            await job()
        except Exception:
            log.exception("periodic job %s failed", getattr(job, "__name__", job))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


async def _stop_jobs(jobs: list[asyncio.Task[None]], stop: asyncio.Event) -> None:
    """Let each periodic job finish the run it is in (bounded by JOB_GRACE), then cancel what is still running."""
    stop.set()
    _done, stuck = await asyncio.wait(jobs, timeout=JOB_GRACE)
    for job in stuck:
        log.warning("periodic job %s still running after %.0f s; cancelled", job.get_name(), JOB_GRACE)
        job.cancel()
    for job in stuck:
        with contextlib.suppress(asyncio.CancelledError):
            await job


async def _due_check(hub: Hub, live: Live) -> None:
    """One look for experiments that have come due; counted (`due_checks`, `due_sent` on /healthz for an operator) so
    that an operator, and the two-instance test, can tell that an instance has looked."""
    sent = await lab.send_due(live)
    hub.stats["due_checks"] += 1
    hub.stats["due_sent"] += sent


async def private_responses(response: Response[Any]) -> Response[Any]:
    """Nothing but the static files may be kept by a browser or a proxy cache: pages and API answers carry a
    person's circles, aliases, notifications or export, and a shared computer's back button must not show them."""
    if "cache-control" not in {k.lower() for k in response.headers}:
        response.headers["Cache-Control"] = "no-store"
    return response


def _bus_name(redis_url: str | None) -> str:
    if not redis_url:
        return "memory"
    return "redis-cluster" if is_cluster_url(redis_url) else "redis"


def create_app(settings: Settings | None = None, *, freeze_heap: bool = False) -> Litestar:
    """The application. `freeze_heap` (for `kindred serve`) moves everything alive once started (about 130,000
    objects: modules, templates, tables) into the collector's permanent generation, so full collections walk only
    what the sockets and requests made (bench S2, as a what-if before it shipped: p99 210 ms -> 129 ms)."""
    settings = settings or load_settings()
    engine = db_engine.make_engine(settings.database_url)
    db_engine.bind(engine)
    topics = Topics(settings.redis_prefix)
    limits = settings.limits

    redis_client: Any = None
    presence: PresenceStore
    if settings.redis_url:
        from redis.asyncio import Redis

        # Rate limits and presence ask Redis inside requests: a Redis that hangs must cost a request a moment, not
        # seconds (the limiter then counts locally for a while, see app/limits.py).
        if is_cluster_url(settings.redis_url):
            # Redis Cluster: sharded pub/sub for the bus, slot-routed commands for limits and presence.
            redis_client = cluster_client(settings.redis_url, socket_connect_timeout=1, socket_timeout=REDIS_TIMEOUT)
            make_backend = cluster_backend_factory(settings.redis_url, PUBLISH_TIMEOUT)
        else:
            redis_client = Redis.from_url(settings.redis_url, socket_connect_timeout=1, socket_timeout=REDIS_TIMEOUT)
            make_backend = redis_backend_factory(settings.redis_url)
        presence = RedisPresence(redis_client, topics)
    else:
        presence = MemoryPresence()
        shared = memory_backend()

        def make_backend(publisher: bool = False) -> Any:
            return shared

    hub = Hub(
        store=DatabaseHubStore(),
        presence=presence,
        topics=topics,
        limits=SocketLimits(
            frames_per_second=limits.frames_per_second,
            send_queue_frames=limits.send_queue_frames,
            send_queue_bytes=limits.send_queue_bytes,
            max_frame_bytes=limits.max_frame_bytes,
            replay_cap=limits.replay_cap,
            sockets_per_account=limits.sockets_per_account,
        ),
        renderer=HtmlRenderer(),
        presence_jitter=settings.presence_jitter,
    )
    caches = AuthCaches(enabled=settings.auth_cache)
    live = Live(hub, topics, caches)
    vapid = VapidKey(settings.secret)
    notifier = Notifier(
        live, PushSender(vapid, settings.push_allowed_origins or DEFAULT_PUSH_ORIGINS, settings.push_contact)
    )
    live.deliver_later = notifier.submit
    mailer = Mailer(settings)
    live.mail_written = mailer.wake
    limiter: Limiter = (
        RedisLimiter(redis_client, settings.redis_prefix) if redis_client is not None else MemoryLimiter()
    )
    rates = RateLimits(limiter, limits)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        db_engine.bind(engine)
        await db_engine.start(engine)
        todo = await pending(engine)
        if todo:
            await db_engine.stop(engine)
            raise MigrationsPending(f"{len(todo)} database migration(s) pending: run `kindred migrate` first")
        bus = Bus(make_backend, hub.on_message, hub.after_reconnect, name=_bus_name(settings.redis_url))
        await bus.start()
        caches.bus = bus
        await hub.start(bus)
        await notifier.start()
        if freeze_heap:
            gc.collect()
            gc.freeze()
        stop_jobs = asyncio.Event()
        jobs = [
            asyncio.create_task(_every(PURGE_INTERVAL, circles.purge_closed_circles, stop_jobs), name="kindred-purge"),
            asyncio.create_task(
                _every(REMINDER_INTERVAL, lambda: dropins.send_reminders(live, settings), stop_jobs),
                name="kindred-remind",
            ),
            asyncio.create_task(
                _every(settings.experiment_due_interval, lambda: _due_check(hub, live), stop_jobs),
                name="kindred-lab-due",
            ),
            asyncio.create_task(mailer.run(stop_jobs), name="kindred-mail"),
        ]
        if settings.digest_interval > 0:
            jobs.append(
                asyncio.create_task(
                    _every(settings.digest_interval, lambda: digests.send_all(live, settings), stop_jobs),
                    name="kindred-digests",
                )
            )
        try:
            yield
        finally:
            await _stop_jobs(jobs, stop_jobs)
            await notifier.stop()
            await hub.stop()
            await bus.stop()
            if redis_client is not None:
                if is_cluster_url(settings.redis_url or ""):
                    await close_cluster(redis_client)
                else:
                    await redis_client.aclose()
            await db_engine.stop(engine)

    csrf = CSRFConfig(
        secret=settings.secret,
        cookie_name="kindred_csrf",
        cookie_secure=settings.secure_cookies,
        cookie_httponly=True,
        cookie_samesite="lax",
    )
    api_routes = [
        *api_accounts.ROUTES,
        *api_recovery.ROUTES,
        *api_email_change.ROUTES,
        *api_circles.ROUTES,
        *api_posts.ROUTES,
        *api_lab.ROUTES,
        *api_search.ROUTES,
        *api_care.ROUTES,
        *api_gestures.ROUTES,
        *api_moderation.ROUTES,
        *api_notifications.ROUTES,
        *api_dropins.ROUTES,
        *api_pulse.ROUTES,
    ]
    openapi.document_errors(api_routes)
    api = Router(path="/api/v1", route_handlers=[*api_routes, api_ws.ws], tags=["api"])
    # Every exception that is not an HTTPException ends here: a database that cannot be reached is a 503 with a
    # clear message; anything else is logged and answered 500.
    db_handlers: dict[Any, Any] = {500: db_error_handler}

    return Litestar(
        route_handlers=[
            # Everything but the static files is private: no-store (static files are cached as usual).
            Router(
                path="/",
                route_handlers=[api, pages.router, health.healthz],
                after_request=private_responses,
            ),
            create_static_files_router(path="/static", directories=[STATIC], name="static", include_in_schema=False),
        ],
        lifespan=[lifespan],
        on_startup=[openapi.document_websocket("/api/v1/ws")],
        state=State(
            {
                "settings": settings,
                "hub": hub,
                "live": live,
                "topics": topics,
                "rates": rates,
                # Posting over the socket (app/socket_posts.py): the HTTP create's checks and service, per instance.
                "poster": SocketPoster(rates, live),
                "vapid": vapid,
                "mailer": mailer,
                "notifier": notifier,
            }
        ),
        before_request=rate_limit_hook,
        dependencies=DEPENDENCIES,
        middleware=[DefineMiddleware(AuthMiddleware, settings=settings, csrf=csrf, caches=caches)],
        exception_handlers=db_handlers,
        request_class=KindredRequest,
        request_max_body_size=limits.max_body_bytes,
        response_headers=SECURITY_HEADERS,
        template_config=TemplateConfig(engine=JinjaTemplateEngine.from_environment(environment)),
        openapi_config=OpenAPIConfig(
            title="Kindred",
            version="1.0",
            description="Private, pseudonymous coaching circles. Contract: shared/contract.md.",
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
        ),
        debug=settings.debug,
    )


def app_factory() -> Litestar:
    """Entry point for `uvicorn --factory app.main:app_factory` (and `kindred serve`)."""
    return create_app(freeze_heap=True)


def granian_factory() -> Any:
    """Entry point for `kindred serve --server granian`: the same application, behind `trusted_proxy_headers`."""
    app = app_factory()
    return trusted_proxy_headers(app, app.state["settings"].trust_proxy)


def trusted_proxy_headers(app: Litestar, trusted: str | None) -> Any:
    """`app`, and when a proxy is trusted, uvicorn's ProxyHeadersMiddleware around it: Granian itself reads no
    X-Forwarded-* headers, and this is the code uvicorn runs for `proxy_headers`, so both servers believe the same."""
    if trusted is None:
        return app
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    asgi_app: Any = app  # Litestar's ASGI types and uvicorn's are the same protocol, spelt differently
    return ProxyHeadersMiddleware(asgi_app, trusted_hosts=trusted)
