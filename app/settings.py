"""Configuration from the environment.

Everything has a working default so that `kindred serve` runs on a fresh laptop: a SQLite file in the per-user
data folder, in-memory channels, and a secret generated once and kept beside the database.
"""

from __future__ import annotations

import os
import secrets
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import msgspec
import platformdirs

from realtime.cluster import ClusterUrl, is_cluster_url


class ConfigError(Exception):
    """A setting is missing or malformed; the message says which and how to fix it."""


class Limits(msgspec.Struct, frozen=True):
    # Contract: "a member may post at least 20 times in 10 seconds; 120 posts in a minute get 429".
    posts_per_minute: int = 100
    # Contract: request bodies over 256 KiB get 413.
    max_body_bytes: int = 256 * 1024
    # Contract: websocket frames over 64 KiB close 1009.
    max_frame_bytes: int = 64 * 1024
    # Contract: post bodies are at most 20,000 characters.
    max_post_chars: int = 20_000
    # Frames a client may send per second before it is treated as a flood (close 1008); bursts of twice this pass.
    frames_per_second: int = 20
    # Outbound frames a socket may have queued; past this the client is too slow and is disconnected to replay.
    send_queue_frames: int = 512
    # Characters a socket may have queued (live frames and replies alike); past this it is closed 1013.
    send_queue_bytes: int = 4 * 1024 * 1024
    # Open sockets per account; a bound on what one account can make one instance hold.
    sockets_per_account: int = 32
    # Contract: more than 1,000 missed events answer `resync` instead of a replay.
    replay_cap: int = 1000
    # Likes, pins, shares and tags per account per minute: generous for a person, a wall for a script.
    gestures_per_minute: int = 120
    # Invite links a coach makes per hour, and circles an account joins per hour.
    invites_per_hour: int = 30
    joins_per_hour: int = 20
    # Failed sign-ins per target email from one address per 5 minutes (successes are not counted, so an attacker's
    # guesses never lock the owner out of their own address); wrong current passwords count the same, per account.
    logins_per_account: int = 10
    # Failed sign-ins per target email per hour from all addresses except those that signed in to it recently.
    login_failures_per_email: int = 100
    # Post edits per account per minute (each rewrites the room log).
    edits_per_minute: int = 30
    # Alias changes per account per hour (each rewrites the member's trail in the circle).
    alias_changes_per_hour: int = 10
    # New circles, and new rooms or drop-ins, per account per hour.
    circles_per_hour: int = 10
    rooms_per_hour: int = 30
    # Contract: a per-address limit allows at least 200 sign-ins a minute from one address (offices share one).
    logins_per_address: int = 300
    # New accounts per address per hour.
    signups_per_address: int = 100
    # Reports a member files per hour.
    reports_per_hour: int = 30
    # Password reset requests per address per hour (429 past it), and reset mails per email per hour (past it the
    # answer is the same 202, but no further mail goes out: nobody can flood someone's inbox through Kindred).
    resets_per_address: int = 30
    resets_per_email: int = 3
    # Email address changes an account asks for per hour (429 past it); change mails one new address receives per
    # hour (past it the answer is the same 202 and no mail goes there).
    email_changes_per_hour: int = 5
    email_changes_per_address: int = 3


class SmtpConfig(msgspec.Struct, frozen=True, kw_only=True):
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    # Implicit TLS (smtps://), or STARTTLS after connecting (?starttls=true); neither: plain SMTP.
    use_tls: bool = False
    start_tls: bool = False


def parse_smtp_url(url: str) -> SmtpConfig:
    """`smtp://[user:password@]host:port[?starttls=true]` or `smtps://...`, as the contract writes it."""
    parts = urlsplit(url)
    if parts.scheme not in {"smtp", "smtps"}:
        raise ConfigError(f"KINDRED_SMTP_URL {url!r} must start with smtp:// or smtps://")
    if not parts.hostname:
        raise ConfigError("KINDRED_SMTP_URL names no host: write smtp://host:port")
    query = parse_qs(parts.query)
    start_tls = query.get("starttls", ["false"])[0].lower() in {"1", "true", "yes"}
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"KINDRED_SMTP_URL {url!r} has a malformed port") from None
    default_port = 465 if parts.scheme == "smtps" else (587 if start_tls else 25)
    return SmtpConfig(
        host=parts.hostname,
        port=port or default_port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        use_tls=parts.scheme == "smtps",
        start_tls=start_tls and parts.scheme == "smtp",
    )


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str
    redis_url: str | None
    secret: str
    # Shown as a bearer token, it lets an operator read /healthz's socket counts and delivery counters.
    ops_token: str | None = None
    data_dir: Path
    # Seconds of random delay, drawn per room and per change, before a room's presence frame goes out
    # (KINDRED_PRESENCE_JITTER): one socket's joins and leaves in two circles then never show in the same tick.
    presence_jitter: float = 2.0
    # Seconds between each instance's looks for experiments that have come due (KINDRED_EXPERIMENT_DUE_INTERVAL; the
    # contract asks for the reminder within a minute of due_at).
    experiment_due_interval: float = 30.0
    # Origins (scheme://host[:port]) allowed besides the request's own; same-origin is always allowed.
    allowed_origins: tuple[str, ...] = ()
    # Host names the app answers to; guards against Host-header poisoning of generated links.
    allowed_hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "[::1]")
    # Base URL used in invite links when the request's own base cannot be trusted (behind a proxy).
    public_url: str | None = None
    # Addresses of reverse proxies whose X-Forwarded-For is believed (KINDRED_TRUST_PROXY); None: believe nobody.
    trust_proxy: str | None = None
    # Mark cookies Secure; on by default when public_url is https.
    secure_cookies: bool = False
    # Remember sign-ins and room access in-process, dropped through the bus by every change (KINDRED_AUTH_CACHE=0
    # turns it off: every request and post then asks the database; docs/security.md).
    auth_cache: bool = True
    # Prefix for every Redis key and channel, so several deployments (or test runs) can share one Redis.
    redis_prefix: str = "kindred"
    limits: Limits = Limits()
    # Push services a browser subscription may point at (a subscription is otherwise a request-forgery lever).
    push_allowed_origins: tuple[str, ...] = ()
    # Who push services can contact about this server's pushes (VAPID `sub` claim).
    push_contact: str = "mailto:admin@localhost"
    # Mail (docs/email.md): KINDRED_SMTP_URL parsed, or None to write mail to the log and keep it; the From address;
    # seconds between each instance's looks at the mail queue; the first retry's delay (doubled per attempt); the
    # port `kindred serve` listens on, for links when no public URL is set.
    smtp: SmtpConfig | None = None
    mail_from: str = "Kindred <kindred@localhost>"
    mail_interval: float = 5.0
    # Seconds between each instance's looks for digests due (docs/email.md); 0 turns the job off.
    digest_interval: float = 300.0
    mail_retry_seconds: float = 30.0
    serve_port: int | None = None
    debug: bool = False

    @property
    def link_base(self) -> str:
        """Where links in mail point: the public URL, else the first allowed host, never a request's Host header."""
        if self.public_url:
            return self.public_url
        port = f":{self.serve_port}" if self.serve_port and self.serve_port != 80 else ""
        return f"http://{self.allowed_hosts[0]}{port}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path:
        return Path(sqlite_path(self.database_url))


def sqlite_path(url: str) -> str:
    """The file of a `sqlite:///path` URL, SQLAlchemy style: `sqlite:///rel.db` is relative, `sqlite:////abs.db` absolute."""
    rest = url.split("://", 1)[1]
    if not rest.startswith("/") or len(rest) < 2:
        raise ConfigError(f"DATABASE_URL {url!r}: write sqlite:///path/to/file.sqlite3")
    return rest[1:]


def default_data_dir() -> Path:
    return Path(os.environ.get("KINDRED_DATA_DIR") or platformdirs.user_data_dir("kindred", appauthor=False))


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def _int_env(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {value}")
    return value


def _digest_interval(env: dict[str, str]) -> float:
    """KINDRED_DIGEST_INTERVAL: 0 (off) to 3600 seconds; a digest's hour is 60 minutes wide, so more would miss it."""
    raw = env.get("KINDRED_DIGEST_INTERVAL") or "300"
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"KINDRED_DIGEST_INTERVAL={raw!r} is not a number of seconds") from None
    if not 0 <= value <= 3600:
        raise ConfigError(f"KINDRED_DIGEST_INTERVAL must be between 0 (off) and 3600 seconds, got {value}")
    return value


def _seconds_env(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds") from None
    if not 0 <= value <= 60:
        raise ConfigError(f"{name} must be between 0 and 60 seconds, got {value}")
    return value


def _secret_beside(folder: Path) -> str:
    """Read the instance secret kept beside the SQLite file, creating it (mode 600) on first run."""
    path = folder / "secret.key"
    if path.exists():
        return path.read_text().strip()
    folder.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def load_settings(environ: dict[str, str] | None = None, *, need_secret: bool = True) -> Settings:
    """Settings from the environment. `need_secret=False` is for commands that sign nothing (`kindred migrate`)."""
    env = dict(os.environ if environ is None else environ)
    data_dir = Path(env["KINDRED_DATA_DIR"]) if env.get("KINDRED_DATA_DIR") else default_data_dir()

    database_url = env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'kindred.sqlite3'}"
    scheme = urlsplit(database_url).scheme
    if scheme not in {"sqlite", "postgres", "postgresql"}:
        raise ConfigError(
            f"DATABASE_URL scheme {scheme!r} is not supported: use sqlite:///path or postgresql://user@host/db"
        )
    if scheme == "sqlite":
        sqlite_path(database_url)

    redis_url = env.get("REDIS_URL") or None
    if redis_url and urlsplit(redis_url).scheme not in {"redis", "rediss", "unix", "redis+cluster", "rediss+cluster"}:
        raise ConfigError(
            f"REDIS_URL {redis_url!r} must start with redis://, rediss://, unix:// or, for a Redis Cluster, "
            "redis+cluster:// or rediss+cluster://"
        )
    if redis_url and is_cluster_url(redis_url):
        try:
            ClusterUrl(redis_url)
        except ValueError as exc:
            raise ConfigError(f"REDIS_URL: {exc}") from None

    secret = env.get("KINDRED_SECRET") or ""
    if not secret and need_secret:
        if scheme != "sqlite":
            # Several instances must agree on the secret; generating one per machine would split them.
            raise ConfigError("KINDRED_SECRET must be set when DATABASE_URL points at a shared database")
        secret = _secret_beside(Path(sqlite_path(database_url)).parent)
    if secret and len(secret) < 32:
        raise ConfigError(
            "KINDRED_SECRET must be at least 32 characters (try: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )

    public_url = env.get("KINDRED_PUBLIC_URL") or None
    allowed_hosts = _split(env.get("KINDRED_ALLOWED_HOSTS")) or ("localhost", "127.0.0.1", "[::1]")
    if public_url:
        host = urlsplit(public_url).hostname
        if host and host not in allowed_hosts:
            allowed_hosts = (*allowed_hosts, host)
    secure_default = bool(public_url and public_url.startswith("https://"))
    secure_raw = env.get("KINDRED_SECURE_COOKIES")
    secure = secure_default if secure_raw is None else secure_raw.lower() in {"1", "true", "yes"}

    defaults = Limits()
    limits = Limits(
        posts_per_minute=_int_env(env, "KINDRED_POSTS_PER_MINUTE", defaults.posts_per_minute),
        frames_per_second=_int_env(env, "KINDRED_WS_FRAMES_PER_SECOND", defaults.frames_per_second),
        send_queue_frames=_int_env(env, "KINDRED_WS_SEND_QUEUE", defaults.send_queue_frames),
        send_queue_bytes=_int_env(env, "KINDRED_WS_SEND_QUEUE_BYTES", defaults.send_queue_bytes),
        sockets_per_account=_int_env(env, "KINDRED_SOCKETS_PER_ACCOUNT", defaults.sockets_per_account),
        replay_cap=_int_env(env, "KINDRED_REPLAY_CAP", defaults.replay_cap),
        gestures_per_minute=_int_env(env, "KINDRED_GESTURES_PER_MINUTE", defaults.gestures_per_minute),
        invites_per_hour=_int_env(env, "KINDRED_INVITES_PER_HOUR", defaults.invites_per_hour),
        joins_per_hour=_int_env(env, "KINDRED_JOINS_PER_HOUR", defaults.joins_per_hour),
        logins_per_account=_int_env(env, "KINDRED_LOGINS_PER_ACCOUNT", defaults.logins_per_account),
        login_failures_per_email=_int_env(env, "KINDRED_LOGIN_FAILURES_PER_EMAIL", defaults.login_failures_per_email),
        edits_per_minute=_int_env(env, "KINDRED_EDITS_PER_MINUTE", defaults.edits_per_minute),
        alias_changes_per_hour=_int_env(env, "KINDRED_ALIAS_CHANGES_PER_HOUR", defaults.alias_changes_per_hour),
        circles_per_hour=_int_env(env, "KINDRED_CIRCLES_PER_HOUR", defaults.circles_per_hour),
        rooms_per_hour=_int_env(env, "KINDRED_ROOMS_PER_HOUR", defaults.rooms_per_hour),
        logins_per_address=_int_env(env, "KINDRED_LOGINS_PER_ADDRESS", defaults.logins_per_address),
        signups_per_address=_int_env(env, "KINDRED_SIGNUPS_PER_ADDRESS", defaults.signups_per_address),
        reports_per_hour=_int_env(env, "KINDRED_REPORTS_PER_HOUR", defaults.reports_per_hour),
        resets_per_address=_int_env(env, "KINDRED_RESETS_PER_ADDRESS", defaults.resets_per_address),
        resets_per_email=_int_env(env, "KINDRED_RESETS_PER_EMAIL", defaults.resets_per_email),
        email_changes_per_hour=_int_env(env, "KINDRED_EMAIL_CHANGES_PER_HOUR", defaults.email_changes_per_hour),
        email_changes_per_address=_int_env(
            env, "KINDRED_EMAIL_CHANGES_PER_ADDRESS", defaults.email_changes_per_address
        ),
    )
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        secret=secret,
        data_dir=data_dir,
        allowed_origins=tuple(o.rstrip("/") for o in _split(env.get("KINDRED_ALLOWED_ORIGINS"))),
        allowed_hosts=allowed_hosts,
        public_url=public_url.rstrip("/") if public_url else None,
        secure_cookies=secure,
        redis_prefix=env.get("KINDRED_REDIS_PREFIX") or "kindred",
        limits=limits,
        push_allowed_origins=_split(env.get("KINDRED_PUSH_ALLOWED_ORIGINS")),
        push_contact=env.get("KINDRED_PUSH_CONTACT") or "mailto:admin@localhost",
        trust_proxy=env.get("KINDRED_TRUST_PROXY") or None,
        ops_token=env.get("KINDRED_OPS_TOKEN") or None,
        presence_jitter=_seconds_env(env, "KINDRED_PRESENCE_JITTER", 2.0),
        experiment_due_interval=_seconds_env(env, "KINDRED_EXPERIMENT_DUE_INTERVAL", 30.0) or 30.0,
        smtp=parse_smtp_url(env["KINDRED_SMTP_URL"]) if env.get("KINDRED_SMTP_URL") else None,
        mail_from=_mail_from(env.get("KINDRED_MAIL_FROM")),
        mail_interval=_seconds_env(env, "KINDRED_MAIL_INTERVAL", 5.0) or 5.0,
        digest_interval=_digest_interval(env),
        mail_retry_seconds=_seconds_env(env, "KINDRED_MAIL_RETRY_SECONDS", 30.0) or 30.0,
        serve_port=_int_env(env, "KINDRED_PORT", 0) or None,
        debug=env.get("KINDRED_DEBUG", "").lower() in {"1", "true", "yes"},
        auth_cache=env.get("KINDRED_AUTH_CACHE", "1").strip().lower() not in {"0", "false", "no", "off"},
    )


def _mail_from(value: str | None) -> str:
    if not value:
        return "Kindred <kindred@localhost>"
    _name, address = parseaddr(value)
    if "@" not in address:
        raise ConfigError(f"KINDRED_MAIL_FROM {value!r} is not an address: write Kindred <kindred@example.org>")
    return value
