"""Raw steps after kindred_2026_12_06t15_08_47_280707 (room.kind, room.membership):

- drop-in rooms made before the column existed are marked `dropin` (the contract's `RoomOut.kind`);
- one journal per membership: a unique partial index on room.membership (only journals have one).

Backwards drops the index and marks every room `room` again (the columns go with the previous migration).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-06T15:09:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "drop-in rooms marked as such; one journal per membership"

INDEXES = (("room_journal", "UNIQUE INDEX room_journal ON room (membership) WHERE membership IS NOT NULL"),)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="kindred", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        await engine.run_ddl("UPDATE room SET kind = 'dropin' WHERE id IN (SELECT room FROM dropin)")
        for _, definition in INDEXES:
            await engine.run_ddl(f"CREATE {definition}")

    async def run_backwards():
        engine = engine_finder()
        for name, _ in reversed(INDEXES):
            await engine.run_ddl(f"DROP INDEX IF EXISTS {name}")
        await engine.run_ddl("UPDATE room SET kind = 'room' WHERE kind = 'dropin'")

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
