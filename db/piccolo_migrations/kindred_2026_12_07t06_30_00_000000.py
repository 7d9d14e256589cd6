"""Search, faster (issue 18's performance targets; docs/search.md, "The index"; docs/performance.md, "Search").

Postgres: `post_search` now carries, beside the tsvector, everything search filters and ranks by (the circle, the
room, the journal's member, author, kind, pinned, experiment stage, hidden / deleted, created_at), so a search never
joins `post` for every match, and a btree on (circle, created_at DESC) lets a broad query walk the newest posts and
stop after the newest N matches instead of ranking every match (app/services/search.py). Cheaper writes: no foreign
key to `post` (its check was one more query per insert; a statement-level AFTER DELETE trigger takes the rows of
deleted posts instead), the room read in the statement that writes the row, separate insert and update functions,
and the update trigger fires only when a column it copies changes.

SQLite: the FTS5 table loses its 3-character prefix index (it served only prefixes of exactly 3 letters; longer ones
were already a scan of the term range, and 3 letters now are too) and merges less eagerly (automerge 8 instead of
4): less work on each write. The view and the triggers are unchanged. What each of these buys was not measured
one by one (docs/performance.md).

Backwards restores exactly what kindred_2026_12_07t03_40_00_000000 made.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.postgres import PostgresEngine

from db.piccolo_migrations import kindred_2026_12_07t03_40_00_000000 as first

ID = "2026-12-07T06:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "search: the walls' columns in post_search, newest-first walk, cheaper writes"

# As in the first search migration: the objects differ per backend, tests/test_search.py checks them.
INDEXES: tuple[tuple[str, str], ...] = ()

PG_DOCUMENT = first.PG_DOCUMENT
_NEW_DOCUMENT = PG_DOCUMENT.replace("(body", "(NEW.body").replace("(experiment::", "(NEW.experiment::")
# The columns copied from `post` (and from its room), in one place for the trigger functions and the fill.
PG_COLUMNS = (
    "post, circle, room, journal_of, author, kind, pinned, experiment_state, hidden, hidden_with_origin, deleted, "
    "created_at, document"
)

PG_FORWARDS = (
    "DROP TRIGGER IF EXISTS post_search_update ON post",
    "DROP TRIGGER IF EXISTS post_search_insert ON post",
    "DROP FUNCTION IF EXISTS post_search_write()",
    "DROP TABLE IF EXISTS post_search",
    "CREATE TABLE post_search (post uuid PRIMARY KEY, circle uuid NOT NULL, room uuid NOT NULL, journal_of uuid, "
    "author uuid NOT NULL, kind varchar(16) NOT NULL, pinned boolean NOT NULL, experiment_state varchar(16), "
    "hidden boolean NOT NULL, hidden_with_origin boolean NOT NULL, deleted boolean NOT NULL, "
    "created_at timestamptz NOT NULL, document tsvector NOT NULL)",
    f"""CREATE FUNCTION post_search_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO post_search ({PG_COLUMNS})
    SELECT NEW.id, r.circle, NEW.room, CASE WHEN r.kind = 'journal' THEN r.membership END, NEW.author, NEW.kind,
           NEW.pinned, NEW.experiment_state, NEW.hidden_at IS NOT NULL, NEW.hidden_with_origin,
           NEW.deleted_at IS NOT NULL, NEW.created_at, {_NEW_DOCUMENT}
    FROM room r WHERE r.id = NEW.room;
    RETURN NULL;
END $$""",
    f"""CREATE FUNCTION post_search_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE post_search SET circle = r.circle, room = NEW.room,
        journal_of = CASE WHEN r.kind = 'journal' THEN r.membership END, author = NEW.author,
        kind = NEW.kind, pinned = NEW.pinned, experiment_state = NEW.experiment_state,
        hidden = NEW.hidden_at IS NOT NULL, hidden_with_origin = NEW.hidden_with_origin,
        deleted = NEW.deleted_at IS NOT NULL, created_at = NEW.created_at,
        document = CASE WHEN OLD.body IS DISTINCT FROM NEW.body OR OLD.experiment IS DISTINCT FROM NEW.experiment
                        THEN {_NEW_DOCUMENT} ELSE document END
    FROM room r WHERE r.id = NEW.room AND post_search.post = NEW.id;
    RETURN NULL;
END $$""",
    """CREATE FUNCTION post_search_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM post_search WHERE post IN (SELECT id FROM gone);
    RETURN NULL;
END $$""",
    "CREATE TRIGGER post_search_insert AFTER INSERT ON post FOR EACH ROW EXECUTE FUNCTION post_search_insert()",
    "CREATE TRIGGER post_search_update AFTER UPDATE OF body, experiment, room, author, kind, pinned, "
    "experiment_state, hidden_at, hidden_with_origin, deleted_at, created_at ON post FOR EACH ROW "
    "WHEN (OLD.body IS DISTINCT FROM NEW.body OR OLD.experiment IS DISTINCT FROM NEW.experiment "
    "OR OLD.room IS DISTINCT FROM NEW.room OR OLD.author IS DISTINCT FROM NEW.author "
    "OR OLD.kind IS DISTINCT FROM NEW.kind OR OLD.pinned IS DISTINCT FROM NEW.pinned "
    "OR OLD.experiment_state IS DISTINCT FROM NEW.experiment_state "
    "OR (OLD.hidden_at IS NULL) <> (NEW.hidden_at IS NULL) OR OLD.hidden_with_origin <> NEW.hidden_with_origin "
    "OR (OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL) OR OLD.created_at <> NEW.created_at) "
    "EXECUTE FUNCTION post_search_update()",
    "CREATE TRIGGER post_search_delete AFTER DELETE ON post REFERENCING OLD TABLE AS gone "
    "FOR EACH STATEMENT EXECUTE FUNCTION post_search_delete()",
    f"INSERT INTO post_search ({PG_COLUMNS}) "
    "SELECT p.id, r.circle, p.room, CASE WHEN r.kind = 'journal' THEN r.membership END, p.author, p.kind, p.pinned, "
    "p.experiment_state, p.hidden_at IS NOT NULL, p.hidden_with_origin, p.deleted_at IS NOT NULL, p.created_at, "
    f"{PG_DOCUMENT.replace('(body', '(p.body').replace('(experiment::', '(p.experiment::')} "
    "FROM post p JOIN room r ON r.id = p.room",
    "CREATE INDEX post_search_document ON post_search USING GIN (document)",
    "CREATE INDEX post_search_newest ON post_search (circle, created_at DESC)",
)
PG_BACKWARDS = (
    "DROP TRIGGER IF EXISTS post_search_delete ON post",
    "DROP TRIGGER IF EXISTS post_search_update ON post",
    "DROP TRIGGER IF EXISTS post_search_insert ON post",
    "DROP FUNCTION IF EXISTS post_search_delete()",
    "DROP FUNCTION IF EXISTS post_search_update()",
    "DROP FUNCTION IF EXISTS post_search_insert()",
    "DROP TABLE IF EXISTS post_search",
    # The first migration's table, function, triggers and fill (its assumption index was never dropped).
    *(s for s in first.PG_FORWARDS if "post_search_assumption" not in s),
)

SQLITE_FTS = (
    "CREATE VIRTUAL TABLE post_fts USING fts5(body, assumption, content='post_search_source', content_rowid='rid', "
    "tokenize='unicode61 remove_diacritics 0', prefix='{prefix}')"
)
SQLITE_TRIGGERS = tuple(s for s in first.SQLITE_FORWARDS if s.startswith("CREATE TRIGGER"))
SQLITE_DROP = (*first.SQLITE_BACKWARDS[:4],)  # the triggers and the FTS table; the view stays


def _sqlite_index(prefix: str, automerge: int | None) -> tuple[str, ...]:
    settings = (
        () if automerge is None else (f"INSERT INTO post_fts (post_fts, rank) VALUES ('automerge', {automerge})",)
    )
    return (
        *SQLITE_DROP,
        SQLITE_FTS.format(prefix=prefix),
        *settings,
        *SQLITE_TRIGGERS,
        "INSERT INTO post_fts (post_fts) VALUES ('rebuild')",
    )


SQLITE_FORWARDS = _sqlite_index("2", 8)
SQLITE_BACKWARDS = _sqlite_index("2 3", None)


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
