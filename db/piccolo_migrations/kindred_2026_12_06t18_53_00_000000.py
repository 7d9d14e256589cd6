"""Raw steps after kindred_2026_12_06t18_52_50_389130 (room_read): one row per member and room, and the lookup of a
room's readers. Backwards drops the index (the table goes with the previous migration)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-06T18:53:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "room_read: one row per member and room"

INDEXES = (("room_read_member_room", "UNIQUE INDEX room_read_member_room ON room_read (membership, room)"),)


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
