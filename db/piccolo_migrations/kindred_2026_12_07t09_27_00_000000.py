"""Raw steps for mail (app/mail.py) and email address changes (app/services/email_change.py).

The sender's claim reads `WHERE state = 'queued' AND send_after <= now ... ORDER BY send_after LIMIT n`: a partial
index on send_after over queued mail only answers it in order, and stays as small as the queue however much sent mail
is kept. A change of address is looked up (and cascaded) by its account. Backwards drops them."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-07T09:27:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "mail queue claim index, email changes by account"

INDEXES = (
    ("mail_message_queued_send_after", "INDEX mail_message_queued_send_after ON mail_message (send_after) "
     "WHERE state = 'queued'"),
    ("email_change_account", "INDEX email_change_account ON email_change (account)"),
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
