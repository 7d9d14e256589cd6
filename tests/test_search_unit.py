"""The search query language, without a database: parsing, compiling for each backend, and the snippet sanitizer.
The property test throws arbitrary text (quotes, operators, FTS5 and tsquery syntax, NUL bytes) at the parser and
checks that only lexemes ever reach the compiled queries."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.services.search_query import (
    MARK_CLOSE,
    MARK_OPEN,
    Query,
    QueryError,
    Term,
    parse,
    significant_words,
    snippet_html,
    to_fts5,
    to_tsquery,
)


def test_words_phrases_exclusions_and_the_prefix() -> None:
    q = parse('Saying "no to my mother" -guilt -"bad daughter" trust')
    assert q.terms == (
        Term(("saying",)),
        Term(("no", "to", "my", "mother")),
        Term(("guilt",), negated=True),
        Term(("bad", "daughter"), negated=True),
        Term(("trust",), prefix=True),
    )
    assert to_tsquery(q) == (
        "'saying' & ('no' <-> 'to' <-> 'my' <-> 'mother') & 'trust':* & !'guilt' & !('bad' <-> 'daughter')"
    )
    assert to_fts5(q) == (
        '((("saying" AND ("no" + "to" + "my" + "mother") AND "trust" *) NOT "guilt") NOT ("bad" + "daughter"))'
    )


def test_a_trailing_space_ends_the_prefix_and_short_or_excluded_words_are_whole() -> None:
    assert parse("rejection ").terms == (Term(("rejection",)),)
    assert parse("no a").terms == (Term(("no",)), Term(("a",)))
    assert parse("trust -rej").terms == (Term(("trust",)), Term(("rej",), negated=True))
    assert parse('say "no').terms == (Term(("say",)), Term(("no",))), "an unbalanced quote runs to the end"


def test_words_of_several_lexemes_are_phrases() -> None:
    assert parse("don't self-care").terms == (Term(("don", "t")), Term(("self", "care"), prefix=True))


def test_hostile_text_is_words_only() -> None:
    q = parse("x'); DROP TABLE post; -- NEAR(a b) body:* ^c \x00 a|b & !c <-> OR")
    for compiled in (to_tsquery(q), to_fts5(q)):
        assert "DROP" not in compiled and ";" not in compiled and "\x00" not in compiled
    assert [t.lexemes for t in q.terms][:4] == [("x",), ("drop",), ("table",), ("post",)]


def test_length_is_checked_and_exclusions_alone_find_nothing() -> None:
    for bad in ("", " a ", "x" * 201, "\x00\x00\x00"):
        with pytest.raises(QueryError, match="q must be 2 to 200"):
            parse(bad)
    assert not parse("-guilt").searchable and not parse("!!").searchable
    with pytest.raises(QueryError):
        to_fts5(parse("-guilt"))


def test_significant_words_of_an_assumption() -> None:
    assert significant_words("If I say no, she will stop trusting me") == ("say", "stop", "trusting")


def test_snippets_keep_only_balanced_marks() -> None:
    raw = f'<b onclick="x">I said {MARK_OPEN}no{MARK_CLOSE} &amp; {MARK_CLOSE}it{MARK_OPEN} held'
    assert snippet_html(raw) == ("&lt;b onclick=&quot;x&quot;&gt;I said <mark>no</mark> &amp;amp; it<mark> held</mark>")


_HOSTILE = st.text(
    alphabet=st.sampled_from(list("ab yzé1\"'-*^:()&|!<>;{}+\x00\t\\NEAROT")) | st.characters(), max_size=220
)


@settings(max_examples=400, deadline=None)
@given(_HOSTILE)
def test_any_text_parses_or_is_refused_for_its_length(q: str) -> None:
    try:
        query = parse(q)
    except QueryError as exc:
        assert "q must be" in str(exc)
        return
    assert isinstance(query, Query)
    for term in query.terms:
        assert term.lexemes and all(re.fullmatch(r"[^\W_]+", lx) for lx in term.lexemes)
    if not query.searchable:
        return
    pg, fts = to_tsquery(query), to_fts5(query)
    # Between the quotes only lexemes; outside them only the operators the compilers write.
    assert re.fullmatch(r"(\s|[()&!]|<->|'[^\W_]+'(:\*)?)+", pg), pg
    assert re.fullmatch(r'(\s|[()+*]|AND|NOT|"[^\W_]+")+', fts), fts
    assert fts.count("(") == fts.count(")") and pg.count("(") == pg.count(")")


@given(st.text(max_size=300))
def test_snippet_html_has_no_tag_but_mark(raw: str) -> None:
    html = snippet_html(raw.replace("[", MARK_OPEN).replace("]", MARK_CLOSE))
    assert re.sub(r"</?mark>", "", html).count("<") == 0
    assert html.count("<mark>") == html.count("</mark>")
