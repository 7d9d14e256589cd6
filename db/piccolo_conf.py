"""Piccolo's own configuration, for its CLI (`PICCOLO_CONF=db.piccolo_conf piccolo migrations new kindred --auto`).

`kindred migrate` does not rely on this file's engine: it builds one from the settings and installs it here
before running the migrations, so both paths migrate the same database.
"""

from __future__ import annotations

import os

from piccolo.conf.apps import AppRegistry

from db.engine import make_engine

DB = make_engine(os.environ.get("DATABASE_URL") or "sqlite:///kindred-dev.sqlite3")

APP_REGISTRY = AppRegistry(apps=["db.piccolo_app"])
