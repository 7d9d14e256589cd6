"""Search within a circle: the parsed query (`search_query`) run on Postgres full-text search or SQLite FTS5, behind
the same walls as every listing of the circle (`lab.circle_posts`).

Two queries per page on both backends: the ranked ids of one page (walls and filters in SQL, so paging counts only
what the caller may read), then the excerpts of those posts alone (`ts_headline` and `snippet()` cost per row).
The index is written by triggers in the transaction that writes the post (the migration), so a post is found as soon
as the request that wrote it has answered, and an edit, a delete (the body is emptied) or an erasure is at once.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar.exceptions import ClientException
from piccolo.engine.postgres import PostgresEngine

from app.errors import not_found
from app.schemas.search import SearchHit, SearchPage, SimilarExperiments
from app.services import experiments, search_query
from app.services.common import can_read, parse_id, require_member
from app.services.posts import authors_of, post_and_access, post_struct
from db import queries
from db.engine import current_engine
from db.piccolo_migrations import kindred_2026_12_07t03_40_00_000000 as search_index
from db.rows import Member, PostRecord
from db.tables import Membership, Room
from db.tables import Post as PostRow
from realtime.events import ExperimentStateName, PostKind

DEFAULT_LIMIT, MAX_LIMIT = 20, 50
# Deeper than this nobody reads; refining the query is the way on.
MAX_OFFSET = 1000
SIMILAR_LIMIT = 5
# A search ranks the newest NEWEST matches the caller may read, not every match (docs/search.md, "Ranking"): the best
# match among the last few months of a busy circle, found in tens of milliseconds instead of a second.
NEWEST = 2000
KINDS: tuple[PostKind, ...] = ("reflection", "experiment", "win", "question")
STATES: tuple[ExperimentStateName, ...] = ("planned", "tried", "debriefed", "abandoned")
# ts_headline's options, matching FTS5's snippet(): about 24 words around the matches.
PG_HEADLINE = (
    f'StartSel="{search_query.MARK_OPEN}", StopSel="{search_query.MARK_CLOSE}", MaxWords=24, MinWords=12, '
    'ShortWord=2, MaxFragments=2, FragmentDelimiter=" … "'
)
FTS_SNIPPET_TOKENS = 24


class Filters:
    """The filters of a search, checked: each refusal names its parameter."""

    def __init__(
        self,
        *,
        kind: str | None = None,
        room_id: str | None = None,
        membership_id: str | None = None,
        pinned: bool | None = None,
        state: str | None = None,
    ) -> None:
        if kind is not None and kind not in KINDS:
            raise ClientException(f"kind must be one of {', '.join(KINDS)}")
        if state is not None and state not in STATES:
            raise ClientException(f"state must be one of {', '.join(STATES)}")
        self.kind = kind
        self.state = state
        self.pinned = pinned
        self.room_raw = room_id
        self.member_raw = membership_id
        self.room: uuid.UUID | None = None
        self.member: uuid.UUID | None = None

    async def resolve(self, me: Member) -> None:
        if self.room_raw:
            rid = queries.as_uuid(self.room_raw)
            room = (
                await Room.select(Room.kind, Room.membership)
                .where((Room.id == (rid or uuid.UUID(int=0))) & (Room.circle == me.circle))
                .first()
            )
            readable = room is not None and (
                room["kind"] != "journal" or me.role == "coach" or room["membership"] == me.id
            )
            if not readable:
                raise ClientException("room_id is not a room of this circle that you can read")
            self.room = rid
        if self.member_raw:
            mid = queries.as_uuid(self.member_raw)
            if mid is None or not await Membership.exists().where(
                (Membership.id == mid) & (Membership.circle == me.circle)
            ):
                raise ClientException("membership_id is not a member of this circle")
            self.member = mid


def _is_pg() -> bool:
    return isinstance(current_engine(), PostgresEngine)


def _walls(me: Member, args: list[Any]) -> str:
    """The caller's circle, never a deleted post, journals only their own (the coach: all), hidden posts only their
    own (the coach: all). As SQL over `p` (post) and `r` (room); `args` gets the bound values, in order."""
    args.append(me.circle)
    sql = "r.circle = {} AND p.deleted_at IS NULL"
    if me.role != "coach":
        args.extend([me.id, me.id, False])
        sql += (
            " AND (r.kind <> 'journal' OR r.membership = {})"
            " AND (p.hidden_at IS NULL OR (p.author = {} AND p.hidden_with_origin = {}))"
        )
    return sql


def _pg_walls(me: Member, args: list[Any]) -> str:
    """The same walls over `s` (Postgres' post_search row, which carries the post's and its room's columns)."""
    args.append(me.circle)
    sql = "s.circle = {} AND NOT s.deleted"
    if me.role != "coach":
        args.extend([me.id, me.id])
        sql += (
            " AND (s.journal_of IS NULL OR s.journal_of = {})"
            " AND (NOT s.hidden OR (s.author = {} AND NOT s.hidden_with_origin))"
        )
    return sql


def _filters(f: Filters, args: list[Any], table: str = "p") -> str:
    sql = ""
    for column, value in (
        ("kind", f.kind),
        ("room", f.room),
        ("author", f.member),
        ("experiment_state", f.state),
    ):
        if value is not None:
            args.append(value)
            sql += f" AND {table}.{column} = {{}}"
    if f.pinned is not None:
        args.append(f.pinned)
        sql += f" AND {table}.pinned = {{}}"
    return sql


async def _snippets(match: str, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The raw excerpt of each post, matches between the private-use markers."""
    if not ids:
        return {}
    lt, gt = search_query.STAND_IN_LT, search_query.STAND_IN_GT
    marks = "<>" + search_query.MARK_OPEN + search_query.MARK_CLOSE + lt + gt
    placeholders = ", ".join("{}" for _ in ids)
    if _is_pg():
        # The markers are taken out of the text, and tag brackets stand in as private-use characters, which the
        # parser reads as punctuation (as the index does) rather than as a tag to skip; snippet_html puts them back.
        text = "coalesce(body, '') || ' ' || coalesce((experiment::jsonb) ->> 'assumption', '')"
        rows = await PostRow.raw(
            f"SELECT id, ts_headline('simple', translate({text}, {{}}, {{}}), to_tsquery('simple', {{}}), {{}}) AS s "
            f"FROM post WHERE id IN ({placeholders})",
            marks,
            lt + gt,
            match,
            PG_HEADLINE,
            *ids,
        )
    else:
        rows = await PostRow.raw(
            "SELECT p.id AS id, snippet(post_fts, -1, {}, {}, '…', {}) AS s FROM post_fts "
            f"JOIN post p ON p.rowid = post_fts.rowid WHERE post_fts MATCH {{}} AND p.id IN ({placeholders})",
            search_query.MARK_OPEN,
            search_query.MARK_CLOSE,
            FTS_SNIPPET_TOKENS,
            match,
            *ids,
        )
    found: dict[uuid.UUID, str] = {}
    for r in rows:
        pid = queries.as_uuid(r["id"])
        if pid is not None:
            found[pid] = r["s"] or ""
    return found


async def _hits(me: Member, ids: list[uuid.UUID], match: str) -> list[SearchHit]:
    rows = {r.id: r for r in await queries.posts_where(PostRow.id.is_in(ids))} if ids else {}
    ordered: list[PostRecord] = [rows[i] for i in ids if i in rows and can_read(rows[i], me)]
    authors = await authors_of(ordered)
    snippets = await _snippets(match, [r.id for r in ordered])
    return [
        SearchHit(
            post=post_struct(r, authors[r.author], me),
            snippet_html=search_query.snippet_html(snippets.get(r.id, "")),
            thread_id=str(r.thread_root or r.id),
        )
        for r in ordered
    ]


def _compile(query: search_query.Query) -> str:
    return search_query.to_tsquery(query) if _is_pg() else search_query.to_fts5(query)


def parse_q(q: str) -> search_query.Query:
    try:
        return search_query.parse(q)
    except search_query.QueryError as exc:
        raise ClientException(str(exc)) from exc


async def search(
    account_id: uuid.UUID,
    circle_id: str,
    q: str,
    filters: Filters,
    *,
    limit: int | None = None,
    offset: int | None = None,
) -> SearchPage:
    me = await require_member(account_id, parse_id(circle_id, "circle"))
    query = parse_q(q)
    size = min(max(limit or DEFAULT_LIMIT, 1), MAX_LIMIT)
    start = offset or 0
    if start < 0 or start > MAX_OFFSET:
        raise ClientException(f"offset must be 0 to {MAX_OFFSET}")
    await filters.resolve(me)
    if not query.searchable:
        return SearchPage(items=[], next_offset=None)
    match = _compile(query)
    ids = await (_pg_ranked if _is_pg() else _fts_ranked)(match, me, filters, size + 1, start)
    more = len(ids) > size
    items = await _hits(me, ids[:size], match)
    return SearchPage(items=items, next_offset=start + size if more else None)


def _ids(rows: list[dict[str, Any]]) -> list[uuid.UUID]:
    return [u for u in (queries.as_uuid(r["id"]) for r in rows) if u is not None]


async def _pg_ranked(match: str, me: Member, filters: Filters, limit: int, offset: int) -> list[uuid.UUID]:
    """One page of the best matches among the newest NEWEST the caller may read, best first (ties: newest first).

    Two plans, one answer. First the GIN index, stopping after NEWEST + 1 matches: when there are no more than
    NEWEST, those are all of them (ranked right away). Otherwise the query is broad, and the newest posts of the
    circle are walked by (circle, created_at DESC), each tested against the query, until NEWEST match: few rows for
    a broad query, where ranking every match (hundreds of thousands) was what cost a second. The OFFSET 0 fences
    keep each plan what it is whatever the planner estimates (its guess for phrases is far too high)."""
    args: list[Any] = []
    where = _pg_walls(me, args) + _filters(filters, args, "s")
    probe = (
        "WITH m AS MATERIALIZED (SELECT s.post, s.created_at, ts_rank(s.document, query) AS rank "
        f"FROM post_search s, to_tsquery('simple', {{}}) query WHERE s.document @@ query AND {where} "
        "LIMIT {}) "
        "SELECT post AS id, (SELECT count(*) FROM m) AS found FROM m "
        "ORDER BY rank DESC, created_at DESC, post DESC LIMIT {} OFFSET {}"
    )
    rows = await PostRow.raw(probe, match, *args, NEWEST + 1, limit, offset)
    if not rows or rows[0]["found"] <= NEWEST:
        return _ids(rows)
    walk = (
        "SELECT post AS id FROM (SELECT w.post, w.created_at, ts_rank(w.document, query) AS rank FROM "
        f"(SELECT s.post, s.created_at, s.document FROM post_search s WHERE {where} "
        "ORDER BY s.created_at DESC OFFSET 0) w, to_tsquery('simple', {}) query "
        "WHERE w.document @@ query ORDER BY w.created_at DESC LIMIT {}) m "
        "ORDER BY rank DESC, created_at DESC, post DESC LIMIT {} OFFSET {}"
    )
    return _ids(await PostRow.raw(walk, *args, match, NEWEST, limit, offset))


async def _fts_ranked(match: str, me: Member, filters: Filters, limit: int, offset: int) -> list[uuid.UUID]:
    """SQLite: the same answer as `_pg_ranked`. FTS5 hands its matches over newest (highest rowid: the post's
    rowid, in order of writing) first, so the walls are applied as they come and it stops after NEWEST."""
    args: list[Any] = []
    where = _walls(me, args) + _filters(filters, args)
    sql = (
        "SELECT id FROM (SELECT p.id AS id, p.created_at AS created_at, bm25(post_fts) AS rank FROM post_fts "
        "JOIN post p ON p.rowid = post_fts.rowid JOIN room r ON r.id = p.room "
        f"WHERE post_fts MATCH {{}} AND {where} ORDER BY post_fts.rowid DESC LIMIT {{}}) "
        "ORDER BY rank ASC, created_at DESC, id DESC LIMIT {} OFFSET {}"
    )
    return _ids(await PostRow.raw(sql, match, *args, NEWEST, limit, offset))


async def _ranked_similar(match: str, me: Member, where: str, where_args: list[Any], limit: int) -> list[uuid.UUID]:
    """Ids of the experiments whose assumptions match best (ties: newest first). `where` narrows further."""
    walls_args: list[Any] = []
    walls = _walls(me, walls_args)
    args = [*walls_args, *where_args]
    if _is_pg():
        # The very expression of the partial GIN index, so the planner uses it.
        document = search_index.PG_ASSUMPTION
        sql = (
            "SELECT p.id AS id FROM post p JOIN room r ON r.id = p.room, to_tsquery('simple', {}) query "
            f"WHERE {document} @@ query AND p.experiment IS NOT NULL AND {walls}{where} "
            f"ORDER BY ts_rank({document}, query) DESC, p.created_at DESC, p.id DESC LIMIT {{}}"
        )
    else:
        sql = (
            "SELECT p.id AS id FROM post_fts JOIN post p ON p.rowid = post_fts.rowid JOIN room r ON r.id = p.room "
            f"WHERE post_fts MATCH {{}} AND {walls}{where} "
            "ORDER BY bm25(post_fts) ASC, p.created_at DESC, p.id DESC LIMIT {}"
        )
    return _ids(await PostRow.raw(sql, match, *args, limit))


async def similar_experiments(account_id: uuid.UUID, post_id: str, limit: int = SIMILAR_LIMIT) -> SimilarExperiments:
    """Other members' experiments whose assumptions share the most words with this one's (any of the words; ranked),
    behind the same walls as search. Nothing for a post without an experiment record."""
    row, _room, me = await post_and_access(account_id, post_id)
    if not can_read(row, me):
        raise not_found("post")
    if not row.experiment:
        return SimilarExperiments(items=[])
    words = search_query.significant_words(experiments.decode(row.experiment).assumption)
    if not words:
        return SimilarExperiments(items=[])
    pg = _is_pg()
    match = search_query.similar_tsquery(words) if pg else search_query.similar_fts5(words)
    where_args: list[Any] = [row.id, row.author]
    where = " AND p.id <> {} AND p.author <> {}"
    ids = await _ranked_similar(match, me, where, where_args, limit)
    return SimilarExperiments(items=await _hits(me, ids, match))
