"""Raw steps for the coach's pulse, third pass: the open questions and the coach's likes look up the author of a live
post by its id, once a question or like (6,600 and 1,800 probes at 200,000 posts); a partial index of live posts'
(id, author) answers that from the index alone (an index-only scan) instead of the post's heap row. Backwards drops
it."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-07T12:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "pulse: live posts' authors"

INDEXES = (("post_live_author", "INDEX post_live_author ON post (id, author) WHERE deleted_at IS NULL"),)


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
