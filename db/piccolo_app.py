"""The Piccolo app that owns Kindred's tables and migrations."""

from __future__ import annotations

import os

from piccolo.conf.apps import AppConfig

from db.tables import TABLES

APP_CONFIG = AppConfig(
    app_name="kindred",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=list(TABLES),
    migration_dependencies=[],
    commands=[],
)
