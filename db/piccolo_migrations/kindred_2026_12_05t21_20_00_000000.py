"""Indexes Piccolo cannot express, as raw SQL; everything else about the schema is in the initial migration, where
Piccolo's record of the schema knows it.

Piccolo's column options make single-column indexes and uniques only. Partial (WHERE) and expression (COALESCE)
indexes and composite indexes are beyond them. Composite uniqueness could be a `piccolo.constraints.Unique`, but
Piccolo 1.38 adds those with `ALTER TABLE ... ADD CONSTRAINT`, which SQLite does not have, so they are unique
indexes here too. The same SQL runs on SQLite and Postgres; backwards drops exactly what forwards made."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-05T21:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "partial, expression and composite indexes"

# (name, definition): the name is what backwards drops.
INDEXES = (
    # Aliases are unique per circle (by the alias key), among current members only.
    ("membership_circle_alias_key", "UNIQUE INDEX membership_circle_alias_key ON membership (circle, alias_key) "
     "WHERE removed_at IS NULL"),
    # One current membership per account and circle.
    ("membership_circle_account", "UNIQUE INDEX membership_circle_account ON membership (circle, account) "
     "WHERE removed_at IS NULL"),
    # client_id makes post creation idempotent per author.
    ("post_author_client_id", "UNIQUE INDEX post_author_client_id ON post (author, client_id) "
     "WHERE client_id IS NOT NULL"),
    # The room log: one row per (room, seq); replay reads it by range.
    ("room_event_room_seq", "UNIQUE INDEX room_event_room_seq ON room_event (room, seq)"),
    # One like, one tag, one report per member per post: repeating it changes nothing.
    ("post_like_post_membership", "UNIQUE INDEX post_like_post_membership ON post_like (post, membership)"),
    ("tag_post_membership", "UNIQUE INDEX tag_post_membership ON tag (post, membership)"),
    ("report_post_reporter", "UNIQUE INDEX report_post_reporter ON report (post, reporter)"),
    # A hand is raised once, and a participant counted once, per drop-in.
    ("dropin_hand_dropin_membership", "UNIQUE INDEX dropin_hand_dropin_membership ON dropin_hand (dropin, membership)"),
    ("dropin_participant_dropin_membership",
     "UNIQUE INDEX dropin_participant_dropin_membership ON dropin_participant (dropin, membership)"),
    # Room listings: top-level posts of a room, newest first.
    ("post_room_toplevel_seq", "INDEX post_room_toplevel_seq ON post (room, seq) WHERE parent IS NULL"),
    # The feed: an account's notifications, newest first, and its unread count.
    ("notification_account_created", "INDEX notification_account_created ON notification (account, created_at)"),
    ("notification_account_unread", "INDEX notification_account_unread ON notification (account) "
     "WHERE read_at IS NULL"),
    # Key insights board: a circle's pins, newest first.
    ("pin_circle_pinned_at", "INDEX pin_circle_pinned_at ON pin (circle, pinned_at)"),
    # The coach's queue: a circle's open reports, oldest first.
    ("report_circle_open", "INDEX report_circle_open ON report (circle, created_at) WHERE resolved_at IS NULL"),
    # The audit log, newest first.
    ("moderation_log_circle_created", "INDEX moderation_log_circle_created ON moderation_log (circle, created_at)"),
    # One preference per account, circle (or none) and kind. COALESCE because NULLs are distinct in unique indexes.
    ("notification_preference_key", "UNIQUE INDEX notification_preference_key ON notification_preference "
     "(account, COALESCE(circle, '00000000-0000-0000-0000-000000000000'), kind)"),
    # The circle page's upcoming drop-ins, and the reminder job's look-ahead.
    ("dropin_state_starts", "INDEX dropin_state_starts ON dropin (state, starts_at)"),
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
