"""Full-text search over posts (docs/search.md), as raw SQL: Piccolo has no words for either backend's machinery, and
none of it is in its table registry, so its auto-migration never sees it.

Postgres: `post_search` holds each post's tsvector (the `simple` configuration over the body, then the experiment's
assumption), written by a trigger on `post` in the same statement as the post, with a GIN index; a second GIN index
over the assumption alone serves "others who tested a similar assumption". Rows go with their post (ON DELETE
CASCADE).

SQLite: `post_fts`, an FTS5 table with external content (the view `post_search_source` over `post`, so the text is
stored once), kept in step by triggers on `post` inside the writing transaction; `unicode61` without diacritic
folding, as Postgres' `simple` does not fold them either; prefix indexes for 2 and 3 characters (as-you-type).

Both build the index for the posts that exist when the migration runs. Backwards drops exactly what forwards made.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.postgres import PostgresEngine

ID = "2026-12-07T03:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "full-text search over posts"

# The walk in tests/test_migrations.py reads INDEXES of the last raw migration; search's objects differ per backend
# (below), so none of them is listed here, and tests/test_search.py checks them instead.
INDEXES: tuple[tuple[str, str], ...] = ()

# Postgres' parser reads tags, e-mail addresses, URLs and version numbers as tokens of their own, where FTS5 and the
# query parser see words; every run of anything but letters and digits becomes a space first, so all three agree.
PG_WORDS = "regexp_replace(coalesce({}, ''), '[^[:alnum:]]+', ' ', 'g')"
PG_ASSUMPTION = "to_tsvector('simple'::regconfig, " + PG_WORDS.format("(experiment::jsonb) ->> 'assumption'") + ")"
PG_DOCUMENT = "to_tsvector('simple'::regconfig, " + PG_WORDS.format("body") + ") || " + PG_ASSUMPTION

PG_FORWARDS = (
    "CREATE TABLE post_search (post uuid PRIMARY KEY REFERENCES post (id) ON DELETE CASCADE, "
    "document tsvector NOT NULL)",
    f"""CREATE FUNCTION post_search_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO post_search (post, document)
    VALUES (NEW.id, {PG_DOCUMENT.replace("(body", "(NEW.body").replace("(experiment::", "(NEW.experiment::")})
    ON CONFLICT (post) DO UPDATE SET document = EXCLUDED.document;
    RETURN NULL;
END $$""",
    "CREATE TRIGGER post_search_insert AFTER INSERT ON post FOR EACH ROW EXECUTE FUNCTION post_search_write()",
    "CREATE TRIGGER post_search_update AFTER UPDATE OF body, experiment ON post FOR EACH ROW "
    "WHEN (OLD.body IS DISTINCT FROM NEW.body OR OLD.experiment IS DISTINCT FROM NEW.experiment) "
    "EXECUTE FUNCTION post_search_write()",
    f"INSERT INTO post_search (post, document) SELECT id, {PG_DOCUMENT} FROM post",
    "CREATE INDEX post_search_document ON post_search USING GIN (document)",
    f"CREATE INDEX post_search_assumption ON post USING GIN (({PG_ASSUMPTION})) WHERE experiment IS NOT NULL",
)
PG_BACKWARDS = (
    "DROP INDEX IF EXISTS post_search_assumption",
    "DROP TRIGGER IF EXISTS post_search_update ON post",
    "DROP TRIGGER IF EXISTS post_search_insert ON post",
    "DROP FUNCTION IF EXISTS post_search_write()",
    "DROP TABLE IF EXISTS post_search",
)

# The private-use characters search puts around matches in excerpts are spaces in the indexed text (FTS5 would read
# them as letters), so a post cannot carry its own; the view gives the same text back for snippet().
SQLITE_BODY = "replace(replace({row}body, char(57344), ' '), char(57345), ' ')"
SQLITE_ASSUMPTION = (
    "replace(replace(json_extract({row}experiment, '$.assumption'), char(57344), ' '), char(57345), ' ')"
)
SQLITE_FORWARDS = (
    "CREATE VIEW post_search_source AS "
    f"SELECT rowid AS rid, {SQLITE_BODY.format(row='')} AS body, {SQLITE_ASSUMPTION.format(row='')} AS assumption "
    "FROM post",
    "CREATE VIRTUAL TABLE post_fts USING fts5(body, assumption, content='post_search_source', content_rowid='rid', "
    "tokenize='unicode61 remove_diacritics 0', prefix='2 3')",
    "CREATE TRIGGER post_fts_insert AFTER INSERT ON post BEGIN "
    "INSERT INTO post_fts (rowid, body, assumption) "
    f"VALUES (new.rowid, {SQLITE_BODY.format(row='new.')}, {SQLITE_ASSUMPTION.format(row='new.')}); END",
    "CREATE TRIGGER post_fts_delete AFTER DELETE ON post BEGIN "
    "INSERT INTO post_fts (post_fts, rowid, body, assumption) "
    f"VALUES ('delete', old.rowid, {SQLITE_BODY.format(row='old.')}, {SQLITE_ASSUMPTION.format(row='old.')}); END",
    "CREATE TRIGGER post_fts_update AFTER UPDATE OF body, experiment ON post "
    "WHEN old.body IS NOT new.body OR old.experiment IS NOT new.experiment BEGIN "
    "INSERT INTO post_fts (post_fts, rowid, body, assumption) "
    f"VALUES ('delete', old.rowid, {SQLITE_BODY.format(row='old.')}, {SQLITE_ASSUMPTION.format(row='old.')}); "
    "INSERT INTO post_fts (rowid, body, assumption) "
    f"VALUES (new.rowid, {SQLITE_BODY.format(row='new.')}, {SQLITE_ASSUMPTION.format(row='new.')}); END",
    "INSERT INTO post_fts (post_fts) VALUES ('rebuild')",
)
SQLITE_BACKWARDS = (
    "DROP TRIGGER IF EXISTS post_fts_update",
    "DROP TRIGGER IF EXISTS post_fts_delete",
    "DROP TRIGGER IF EXISTS post_fts_insert",
    "DROP TABLE IF EXISTS post_fts",
    "DROP VIEW IF EXISTS post_search_source",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="kindred", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        for statement in PG_FORWARDS if isinstance(engine, PostgresEngine) else SQLITE_FORWARDS:
            await engine.run_ddl(statement)

    async def run_backwards():
        engine = engine_finder()
        for statement in PG_BACKWARDS if isinstance(engine, PostgresEngine) else SQLITE_BACKWARDS:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
