"""Raw steps for the coach's pulse (app/services/pulse.py): its aggregates read a circle's activity by member and
time, so each source is indexed by who did it and when. Backwards drops them."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-07T06:31:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "pulse: activity by member and time"

INDEXES = (
    # Posts and replies of the circle's members (and the coach's questions and shares) in the window.
    ("post_author_created", "INDEX post_author_created ON post (author, created_at)"),
    # Likes given by members (their activity) and by the coach (her gestures).
    ("post_like_membership_created", "INDEX post_like_membership_created ON post_like (membership, created_at)"),
    ("tag_tagged_by_created", "INDEX tag_tagged_by_created ON tag (tagged_by, created_at)"),
    # Whether the member replied after a probing question in its thread (and each thread's first replies).
    (
        "post_thread_author_created",
        "INDEX post_thread_author_created ON post (thread_root, author, created_at)",
    ),
    # A member's experiments: a small share of their posts.
    ("post_author_experiment", "INDEX post_author_experiment ON post (author) WHERE experiment_state IS NOT NULL"),
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="kindred", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        for _, definition in INDEXES:
            await engine.run_ddl(f"CREATE {definition}")

    async def run_backwards():
        engine = engine_finder()
        for name, _ in reversed(INDEXES):
            await engine.run_ddl(f"DROP INDEX IF EXISTS {name}")

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
