"""`kindred`: serve, migrate, demo."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from app.settings import ConfigError, Settings, load_settings
from db.migrate import UnknownHistory

SERVERS = ("uvicorn", "granian")


def _with_engine(database_url: str, job: Callable[[Any], Awaitable[list[str]]]) -> list[str]:
    from db.engine import bind, make_engine, start, stop

    async def run() -> list[str]:
        engine = make_engine(database_url)
        bind(engine)
        await start(engine, pool_size=2)
        try:
            return await job(engine)
        finally:
            await stop(engine)

    return asyncio.run(run())


def _migrate(quiet: bool = False) -> list[str]:
    from db.migrate import migrate

    settings = load_settings(need_secret=False)
    return _with_engine(settings.database_url, lambda engine: migrate(engine, quiet=quiet))


def _pending(database_url: str) -> list[str]:
    from db.migrate import pending

    return _with_engine(database_url, pending)


def cmd_migrate(args: argparse.Namespace) -> int:
    applied = _migrate(quiet=True)
    print(f"applied {len(applied)} migration(s)" if applied else "database is up to date")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    if args.server not in SERVERS:  # argparse checks --server, not a default taken from KINDRED_SERVER
        raise ConfigError(f"KINDRED_SERVER must be one of {', '.join(SERVERS)}, not {args.server!r}")
    # Links in mail name this port when no KINDRED_PUBLIC_URL is set (the app reads it in each worker).
    os.environ["KINDRED_PORT"] = str(args.port)

    settings = load_settings()
    if settings.is_sqlite:
        applied = _migrate(quiet=True)
        if applied:
            print(f"kindred: applied {len(applied)} migration(s) to {settings.sqlite_path}")
        if args.workers > 1:
            print(
                "kindred: several workers need shared services: set DATABASE_URL (Postgres) and REDIS_URL",
                file=sys.stderr,
            )
            return 2
    else:
        if args.workers > 1 and not settings.redis_url:
            print("kindred: several workers need REDIS_URL so they hear each other's events", file=sys.stderr)
            return 2
        try:
            todo = _pending(settings.database_url)
        except UnknownHistory:
            raise
        except Exception as exc:
            print(f"kindred: cannot reach the database ({exc})", file=sys.stderr)
            return 2
        if todo:
            print(f"kindred: {len(todo)} database migration(s) pending: run `kindred migrate` first", file=sys.stderr)
            return 2
    print(
        f"kindred: serving on http://{args.host}:{args.port} under {args.server}  "
        f"(database: {'SQLite' if settings.is_sqlite else 'Postgres'}, "
        f"channels: {'Redis' if settings.redis_url else 'in-memory'})",
        flush=True,
    )
    if args.server == "granian":
        _serve_granian(args, settings)
    else:
        _serve_uvicorn(args, settings)
    return 0


# Seconds open requests and sockets get to finish when the server is told to stop.
GRACEFUL_SHUTDOWN = 5


def _serve_uvicorn(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    uvicorn.run(
        "app.main:app_factory",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        ws="websockets-sansio",
        # Contract: frames over 64 KiB close 1009 (uvicorn's default would accept 16 MiB).
        ws_max_size=settings.limits.max_frame_bytes,
        # Per-message compression costs CPU per socket per frame: the opposite of encode-once fan-out.
        ws_per_message_deflate=False,
        # Only a proxy named here may say who the client is; per-address limits key on what it says.
        proxy_headers=settings.trust_proxy is not None,
        forwarded_allow_ips=settings.trust_proxy,
        log_level="warning" if not settings.debug else "info",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
    )


def _serve_granian(args: argparse.Namespace, settings: Settings) -> None:
    """Granian's ASGI interface (Litestar speaks no RSGI), one process per worker under Granian's supervisor.

    What uvicorn is told above holds here by other means (docs/performance.md, "The ASGI server"): Granian has no
    websocket size option (its tungstenite accepts 16 MiB frames), so the 64 KiB limit and its 1009 are the
    application's own check (realtime.connection); it negotiates no per-message deflate at all; and it reads no
    forwarded headers, so `app.main:granian_factory` wraps the app in uvicorn's ProxyHeadersMiddleware when a proxy
    is trusted. Websockets need HTTP/1.1, so HTTP/2 stays off."""
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.log import LogLevels
    from granian.server import Server

    Server(
        "app.main:granian_factory",
        factory=True,
        address=args.host,
        port=args.port,
        interface=Interfaces.ASGI,
        workers=args.workers,
        loop=Loops.uvloop if sys.platform != "win32" else Loops.asyncio,
        http=HTTPModes.http1,
        websockets=True,
        log_level=LogLevels.info if settings.debug else LogLevels.warning,
        # A worker that has not finished its lifespan shutdown by then is killed.
        workers_kill_timeout=GRACEFUL_SHUTDOWN + 10,
    ).serve()


def cmd_mail(args: argparse.Namespace) -> int:
    """The newest mail in the queue, sent or not: without SMTP configured this is where a reset link is found."""
    from app.mail import recent

    settings = load_settings(need_secret=False)

    async def job(engine: Any) -> list[str]:
        lines = []
        for row in reversed(await recent(args.limit)):
            lines.append(
                f"--- {row['created_at']:%Y-%m-%d %H:%M:%S} UTC  {row['state']}  {row['kind']}  to {row['to_addr']}\n"
                f"Subject: {row['subject']}"
            )
            if args.bodies and row["body_text"]:
                lines.append(row["body_text"].rstrip())
        return lines

    lines = _with_engine(settings.database_url, job)
    print("\n".join(lines) if lines else "no mail yet")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from app.demo import seed

    _migrate(quiet=True)
    asyncio.run(seed(print))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kindred", description="Private circles for a coach's clients.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the web app (applies migrations first on SQLite)")
    serve.add_argument("--host", default=os.environ.get("KINDRED_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("KINDRED_PORT", "8000")))
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--server",
        choices=SERVERS,
        default=os.environ.get("KINDRED_SERVER", "uvicorn"),
        help="the ASGI server (default uvicorn, or $KINDRED_SERVER)",
    )
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("migrate", help="apply pending database migrations").set_defaults(func=cmd_migrate)
    sub.add_parser("demo", help="seed a demo circle and print sign-in details").set_defaults(func=cmd_demo)
    mail = sub.add_parser("mail", help="show recent mail (sent, or kept when no SMTP server is configured)")
    mail.add_argument("--limit", type=int, default=10)
    mail.add_argument("--no-bodies", dest="bodies", action="store_false", help="headers only")
    mail.set_defaults(func=cmd_mail)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"kindred: configuration problem: {exc}", file=sys.stderr)
        return 2
    except UnknownHistory as exc:
        print(f"kindred: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
