"""Raw steps for the 2026-12-06 columns, which Piccolo cannot express:

- partial indexes for the lookups that make embedded copies of a post follow it: its shares (post.origin) and the
  drop-ins that spotlight it (dropin.spotlight); most posts are neither, so only rows with a value are indexed;
- membership.alias_skeleton filled in for existing rows (computed in Python: the TR39 skeleton), then made unique per
  circle among current members, like alias_key. Should two current members of a circle already hold look-alike
  aliases, the later one's skeleton gets its membership id appended so the index can be built: they keep their
  aliases, and any new look-alike is still refused.

Backwards drops exactly the indexes forwards made (the column itself goes with the previous migration).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.querystring import QueryString

ID = "2026-12-06T03:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "partial indexes on post.origin and dropin.spotlight; membership.alias_skeleton filled and unique"

INDEXES = (
    ("post_origin", "INDEX post_origin ON post (origin) WHERE origin IS NOT NULL"),
    ("dropin_spotlight", "INDEX dropin_spotlight ON dropin (spotlight) WHERE spotlight IS NOT NULL"),
    ("membership_circle_alias_skeleton", "UNIQUE INDEX membership_circle_alias_skeleton ON membership "
     "(circle, alias_skeleton) WHERE removed_at IS NULL"),
)


async def _fill_skeletons(engine) -> None:
    from app.services.aliases import alias_skeleton

    rows = await engine.run_querystring(
        QueryString("SELECT id, circle, alias, removed_at FROM membership ORDER BY joined_at, id")
    )
    seen: set[tuple[str, str]] = set()
    for row in rows or []:
        skeleton = alias_skeleton(row["alias"])
        if row["removed_at"] is None:
            key = (str(row["circle"]), skeleton)
            if key in seen:
                skeleton = f"{skeleton}#{row['id']}"
            seen.add(key)
        await engine.run_querystring(
            QueryString("UPDATE membership SET alias_skeleton = {} WHERE id = {}", skeleton, row["id"])
        )


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="kindred", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        await _fill_skeletons(engine)
        for _, definition in INDEXES:
            await engine.run_ddl(f"CREATE {definition}")

    async def run_backwards():
        engine = engine_finder()
        for name, _ in reversed(INDEXES):
            await engine.run_ddl(f"DROP INDEX IF EXISTS {name}")

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
