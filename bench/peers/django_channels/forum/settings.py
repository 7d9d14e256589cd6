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
        # Persistent connections, as a production forum would configure them.
        "CONN_MAX_AGE": None,
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [os.environ["DJANGO_REDIS_URL"]], "capacity": 10000, "expiry": 60},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
