"""The search box's language, parsed once and compiled for each backend. Pure: no I/O, no database.

A query is words, "quoted phrases" and -excluded words or -"phrases". Every result must hold every word and phrase
and none of the exclusions. While the member types, the last word (when the query does not end in a space and the
word is not quoted or excluded) also matches as a prefix: `reje` finds "rejection".

Whatever is typed, the parser only ever hands lexemes to the backends: runs of letters and digits, casefolded. Quotes,
operators, FTS5 syntax (`NEAR`, `*`, `^`, `:`, column filters), tsquery syntax (`&`, `|`, `!`, `<->`) and SQL-looking
text are word separators, never syntax. A word made of several lexemes ("don't", "self-care") is a phrase of them, so
it matches the same text on both backends. Compiled queries are bound as parameters, never spliced into SQL.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MIN_LENGTH, MAX_LENGTH = 2, 200
# A prefix shorter than this matches too much to be useful; such a last word matches whole words only.
MIN_PREFIX = 2
# At most this many terms are used; the rest of a (pasted) query is ignored.
MAX_TERMS = 16

# Letters and digits (any script); underscore and everything else separates, as in both tokenizers.
_LEXEME = re.compile(r"[^\W_]+")


class QueryError(ValueError):
    """What to fix about `q`, in words for the member."""


@dataclass(frozen=True)
class Term:
    """One word or phrase: its lexemes in order. `prefix`: the last lexeme also matches as the start of a word."""

    lexemes: tuple[str, ...]
    negated: bool = False
    prefix: bool = False


@dataclass(frozen=True)
class Query:
    terms: tuple[Term, ...]

    @property
    def positive(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if not t.negated)

    @property
    def negative(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.negated)

    @property
    def searchable(self) -> bool:
        """Whether there is anything to look for (a query of exclusions only finds nothing)."""
        return bool(self.positive)

    def words(self) -> list[str]:
        """Every lexeme of the positive terms, for highlighting and for the page's hints."""
        return [lexeme for term in self.positive for lexeme in term.lexemes]


def lexemes(text: str) -> tuple[str, ...]:
    # lower(), not casefold(): Postgres' `simple` dictionary and FTS5's unicode61 lower-case, they do not fold "ß".
    return tuple(_LEXEME.findall(text.lower()))


def clean(q: str) -> str:
    """The query without NUL and other control characters (they are never part of a word)."""
    return "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Cs") else c for c in q)


def check_length(q: str) -> str:
    text = clean(q).strip()
    if len(text) < MIN_LENGTH:
        raise QueryError(f"q must be {MIN_LENGTH} to {MAX_LENGTH} characters: type a word or two to look for")
    if len(text) > MAX_LENGTH:
        raise QueryError(f"q must be {MIN_LENGTH} to {MAX_LENGTH} characters; this one has {len(text)}")
    return text


def parse(q: str) -> Query:
    """`q` as terms. Raises QueryError only for the length; any text of the right length parses."""
    text = check_length(q)
    typing = not q[-1:].isspace()
    terms: list[Term] = []
    i, n = 0, len(text)
    while i < n and len(terms) < MAX_TERMS:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        negated = c == "-" and i + 1 < n and not text[i + 1].isspace()
        if negated:
            i += 1
        if text[i] == '"':
            end = text.find('"', i + 1)
            # An unbalanced quote runs to the end of the query.
            inner = text[i + 1 :] if end == -1 else text[i + 1 : end]
            i = n if end == -1 else end + 1
            parts = lexemes(inner)
            if parts:
                terms.append(Term(parts, negated=negated))
            continue
        start = i
        while i < n and not text[i].isspace() and text[i] != '"':
            i += 1
        parts = lexemes(text[start:i])
        if parts:
            last = i >= n
            prefix = last and typing and not negated and len(parts[-1]) >= MIN_PREFIX
            terms.append(Term(parts, negated=negated, prefix=prefix))
    return Query(_dedupe(terms))


def _dedupe(terms: list[Term]) -> tuple[Term, ...]:
    seen: set[tuple[tuple[str, ...], bool]] = set()
    out: list[Term] = []
    for term in terms:
        key = (term.lexemes, term.negated)
        if key in seen and not term.prefix:
            continue
        seen.add(key)
        out.append(term)
    return tuple(out)


# --- Postgres: to_tsquery('simple', ...) ------------------------------------------------------------------------


def _pg_lexeme(lexeme: str, prefix: bool) -> str:
    quoted = "'" + lexeme.replace("'", "''").replace("\\", "\\\\") + "'"
    return quoted + ":*" if prefix else quoted


def _pg_term(term: Term) -> str:
    last = len(term.lexemes) - 1
    parts = [_pg_lexeme(lx, term.prefix and k == last) for k, lx in enumerate(term.lexemes)]
    inner = " <-> ".join(parts)
    body = f"({inner})" if len(parts) > 1 else inner
    return f"!{body}" if term.negated else body


def to_tsquery(query: Query) -> str:
    """The text for `to_tsquery('simple', $1)`: positive terms ANDed, exclusions as `!term`."""
    if not query.searchable:
        raise QueryError("q has no word to look for")
    return " & ".join(_pg_term(t) for t in (*query.positive, *query.negative))


def similar_tsquery(words: tuple[str, ...]) -> str:
    """Any of `words` (already lexemes), for "others who tested a similar assumption"."""
    return " | ".join(_pg_lexeme(w, False) for w in words)


# --- SQLite FTS5: MATCH ... ----------------------------------------------------------------------------------------


def _fts_lexeme(lexeme: str) -> str:
    return '"' + lexeme.replace('"', '""') + '"'


def _fts_term(term: Term) -> str:
    # A phrase is its lexemes joined by `+`; a prefix is `"lexeme" *` on the last one.
    parts = [_fts_lexeme(lx) for lx in term.lexemes]
    if term.prefix:
        parts[-1] += " *"
    return "(" + " + ".join(parts) + ")" if len(parts) > 1 else parts[0]


def to_fts5(query: Query) -> str:
    """An FTS5 MATCH expression: `(a AND b) NOT c NOT d`, every lexeme a quoted string (so no keyword or operator
    in the query can act as one)."""
    if not query.searchable:
        raise QueryError("q has no word to look for")
    expr = "(" + " AND ".join(_fts_term(t) for t in query.positive) + ")"
    for term in query.negative:
        expr = f"({expr} NOT {_fts_term(term)})"
    return expr


def similar_fts5(words: tuple[str, ...]) -> str:
    return "{assumption} : (" + " OR ".join(_fts_lexeme(w) for w in words) + ")"


# Words too common to say anything about an assumption; "similar" looks for the rest.
_STOP = (
    "a an and are as at be but by do does for from had has have he her him his i if in into is it its me my no not "
    "of on or our she so than that the their them then they this to too was we were what when will with would you "
    "your will can could should just very more most all any"
)
STOPWORDS = frozenset(_STOP.split())


def significant_words(text: str, limit: int = 12) -> tuple[str, ...]:
    """The words of an assumption worth matching on: not stopwords, at least 3 letters, each once."""
    out: list[str] = []
    for lexeme in lexemes(text):
        if len(lexeme) >= 3 and lexeme not in STOPWORDS and lexeme not in out:
            out.append(lexeme)
    return tuple(out[:limit])


# --- Snippets -----------------------------------------------------------------------------------------------------

# Private-use characters the backends put around a match; the sanitizer turns them into <mark> and escapes the rest.
MARK_OPEN, MARK_CLOSE = "\ue000", "\ue001"
# Stand-ins for < and > in the text Postgres highlights (its parser would skip a tag's words); back to < > here.
STAND_IN_LT, STAND_IN_GT = "\ue002", "\ue003"


def snippet_html(raw: str) -> str:
    """Escape everything; only the match markers become <mark>...</mark>, always balanced."""
    out: list[str] = []
    open_ = False
    for chunk in re.split(f"([{MARK_OPEN}{MARK_CLOSE}])", raw):
        if chunk == MARK_OPEN:
            if not open_:
                out.append("<mark>")
                open_ = True
        elif chunk == MARK_CLOSE:
            if open_:
                out.append("</mark>")
                open_ = False
        else:
            out.append(_escape(clean(chunk).replace(STAND_IN_LT, "<").replace(STAND_IN_GT, ">")))
    if open_:
        out.append("</mark>")
    return "".join(out)


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#x27;")
    )
