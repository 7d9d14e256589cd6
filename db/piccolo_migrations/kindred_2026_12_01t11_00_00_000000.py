"""How a membership ended, whether its account may come back, and whether its member let the coach see who they
are. Raw SQL (ALTER TABLE ... ADD COLUMN, then a backfill) runs the same on SQLite and Postgres; Piccolo runs raw
steps before its own column steps, so the backfill could not follow an `add_column` in one migration."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "membership ending, rejoin block and identity consent"

STATEMENTS = (
    "ALTER TABLE membership ADD COLUMN ended_by VARCHAR(16) DEFAULT NULL",
    "ALTER TABLE membership ADD COLUMN rejoin_blocked BOOLEAN NOT NULL DEFAULT false",
    "ALTER TABLE membership ADD COLUMN coach_sees_identity BOOLEAN NOT NULL DEFAULT false",
    # Past endings: a removal is in the audit log; an erased account's memberships ended with it; the rest left.
    "UPDATE membership SET ended_by = CASE "
    "WHEN EXISTS (SELECT 1 FROM account a WHERE a.id = membership.account AND a.deleted_at IS NOT NULL) THEN 'deleted' "
    "WHEN EXISTS (SELECT 1 FROM moderation_log l WHERE l.member = membership.id AND l.action = 'remove_member') "
    "THEN 'removed' ELSE 'left' END WHERE removed_at IS NOT NULL",
    "UPDATE membership SET rejoin_blocked = true WHERE ended_by = 'removed'",
    # Consent was never recorded before: existing memberships keep what they show today (the circle's setting), so
    # this migration exposes no one who is hidden now. From here on, consent is taken at join time.
    "UPDATE membership SET coach_sees_identity = "
    "(SELECT c.coach_sees_identity FROM circle c WHERE c.id = membership.circle)",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="kindred", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
