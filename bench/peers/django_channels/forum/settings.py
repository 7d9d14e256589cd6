"""A minimal Django project: one app, Postgres through the ORM, channels_redis for fan-out."""

import os
from urllib.parse import urlsplit

_db = urlsplit(os.environ["DJANGO_DATABASE_URL"])

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["django.contrib.contenttypes", "channels", "forum"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "forum.urls"
ASGI_APPLICATION = "forum.asgi.application"
USE_TZ = True
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _db.path.lstrip("/"),
        "USER": _db.username or "postgres",
        "PASSWORD": _db.password or "",
        "HOST": _db.hostname or "127.0.0.1",
        "PORT": _db.port or 5432,
        # Under ASGI, Django's own docs say to turn persistent connections off and pool instead: each request
        # runs its queries on a thread of its own, and CONN_MAX_AGE would keep one connection per thread open.
        "CONN_MAX_AGE": 0,
        # psycopg's pool, per process: sized like Kindred's (10 per instance).
        "OPTIONS": {"pool": {"min_size": 2, "max_size": 10, "timeout": 30}},
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py's pool stops at 100 connections by default and then raises; a connect storm of hundreds of
            # sockets does one group_add each at once, so a production forum sizes the pool for it.
            "hosts": [{"address": os.environ["DJANGO_REDIS_URL"], "max_connections": 2000}],
            # Messages queued per consumer channel before channels_redis drops new ones (default 100): sized like
            # Kindred's per-socket send queue in the benchmark, so neither drops for want of a buffer.
            "capacity": 4096,
            "expiry": 60,
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Server errors to the console (the harness keeps it as the peer's log); Django sends them nowhere when DEBUG is off.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["console"], "level": "ERROR"}},
}
