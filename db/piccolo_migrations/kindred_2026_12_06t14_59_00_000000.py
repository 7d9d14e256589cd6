"""Raw step after kindred_2026_12_06t14_58_34_882989 (the experiment record on posts): a partial index for the due
check, which every instance runs every 30 seconds. Only experiments still waiting for their debrief and not yet
reminded are indexed, so the index stays as small as the set of open experiments.

Backwards drops exactly the index forwards made (the columns go with the previous migration).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-06T14:59:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "partial index on open experiments' due time"

INDEXES = (
    (
        "post_experiment_due",
        "INDEX post_experiment_due ON post (experiment_due_at) "
        "WHERE experiment_due_sent_at IS NULL AND experiment_state IN ('planned', 'tried')",
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
