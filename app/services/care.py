"""The care check: does a text suggest that its writer may be at risk of harming themselves?

A small, pure, phrase-based detector. The phrases live in `app/data/care_phrases.txt` (its header gives the
grammar; `docs/care.md` explains it to coaches). The text is normalised (case, apostrophes, contractions, a few
common misspellings, repeated letters, punctuation), everyday figures of speech are taken out, and then the risk
phrases are looked for. Nothing here stores, logs or sends the text: the function answers true or false.

It is deliberately simple and it will miss things (see docs/care.md, "What the check cannot do"): its job is to
offer help at the moment someone is about to post, never to judge or to report anyone.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path

from litestar.exceptions import ClientException

from realtime.events import ReplyWish

_DATA = Path(__file__).resolve().parent.parent / "data" / "care_phrases.txt"

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'", "\u2032": "'"})
_CONTRACTIONS = (
    (re.compile(r"\bcan'?t\b"), "can not"),
    (re.compile(r"\bcannot\b"), "can not"),
    (re.compile(r"\bwon'?t\b"), "will not"),
    (re.compile(r"\bain'?t\b"), "am not"),
    (re.compile(r"n't\b"), " not"),
    (re.compile(r"\bi'm\b"), "i am"),
    (re.compile(r"'re\b"), " are"),
    (re.compile(r"'ve\b"), " have"),
    (re.compile(r"'ll\b"), " will"),
    (re.compile(r"\bi'd\b"), "i would"),
    (re.compile(r"\bwhat's\b"), "what is"),
    (re.compile(r"\b(it|there|that|life|he|she)'s\b"), r"\1 is"),
)
# Words as people type them without apostrophes, shorthand, and misspellings of the words the phrases rely on.
_WORDS = {
    "im": "i am",
    "ive": "i have",
    "dont": "do not",
    "didnt": "did not",
    "doesnt": "does not",
    "isnt": "is not",
    "wasnt": "was not",
    "wouldnt": "would not",
    "couldnt": "could not",
    "shouldnt": "should not",
    "wont": "will not",
    "cant": "can not",
    "whats": "what is",
    "theres": "there is",
    "thats": "that is",
    "its": "it is",
    "wanna": "want to",
    "gonna": "going to",
    "gotta": "got to",
    "kinda": "kind of",
    "u": "you",
    "ur": "your",
    "kms": "kill myself",
    "myslef": "myself",
    "mysef": "myself",
    "myelf": "myself",
    "msyelf": "myself",
    "mysefl": "myself",
    "myseld": "myself",
    "meself": "myself",
    "suicde": "suicide",
    "sucide": "suicide",
    "suiside": "suicide",
    "suicid": "suicide",
    "suacide": "suicide",
    "sucidal": "suicidal",
    "suicdal": "suicidal",
    "suisidal": "suicidal",
    "suicidial": "suicidal",
    "sucicidal": "suicidal",
    "anymore": "anymore",
    "livng": "living",
    "lfe": "life",
    "wnat": "want",
    "wnt": "want",
    "diee": "die",
    "selfharm": "self harm",
    "selfharming": "self harming",
}
_SENTENCE_END = re.compile(r"[.!?;\n\r]+")
_NOT_WORD = re.compile(r"[^a-z0-9.]+")
_REPEATS = re.compile(r"([a-z])\1{2,}")


def normalise(text: str) -> str:
    """The text as the phrases see it: ` . word word . word . ` (sentence ends are the word `.`)."""
    text = unicodedata.normalize("NFKC", text).casefold().translate(_APOSTROPHES)
    text = _REPEATS.sub(r"\1\1", text)
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    text = text.replace("'", "")
    text = _SENTENCE_END.sub(" . ", text)
    # A full stop inside a word ("e.g.") is not a sentence end once the sentence ends are marked.
    words = [w for w in _NOT_WORD.sub(" ", text).split(" ") if w]
    out: list[str] = ["."]
    for word in words:
        if word != "." and "." in word:
            word = word.replace(".", "")
            if not word:
                continue
        out.extend(_WORDS.get(word, word).split(" "))
    out.append(".")
    # Several sentence ends in a row are one.
    squeezed = [w for i, w in enumerate(out) if not (w == "." and i > 0 and out[i - 1] == ".")]
    return " " + " ".join(squeezed) + " "


_GROUP = re.compile(r"^@(\w+)\s*=\s*(\S+)$")


class PhraseError(ValueError):
    """A line of the phrase file that the grammar does not allow (raised when the file is loaded)."""


def _piece(token: str, groups: dict[str, list[str]], line: str) -> str:
    optional = token.endswith("?") and len(token) > 1
    if optional:
        token = token[:-1]
    if token == "~":
        return r"(?:[^ .]+ ){0,3}"
    if token == ".":
        body = r"\."
    else:
        choices: list[str] = []
        for choice in token.split("|"):
            if choice.startswith("@"):
                if choice[1:] not in groups:
                    raise PhraseError(f"unknown group {choice} in: {line}")
                choices.extend(groups[choice[1:]])
            elif choice:
                choices.append(choice)
        if not choices:
            raise PhraseError(f"empty choice in: {line}")
        alts = []
        for choice in choices:
            words = choice.split("_")
            parts = [re.escape(w[:-1]) + r"[^ .]*" if w.endswith("*") else re.escape(w) for w in words]
            alts.append(" ".join(parts))
        body = "(?:" + "|".join(alts) + ")"
    return f"(?:{body} )" + ("?" if optional else "")


def _compile(line: str, groups: dict[str, list[str]]) -> re.Pattern[str]:
    pieces = [_piece(token, groups, line) for token in line.split()]
    return re.compile(r"(?<= )" + "".join(pieces))


@functools.cache
def phrases(source: str | None = None) -> tuple[tuple[re.Pattern[str], ...], tuple[re.Pattern[str], ...]]:
    """(figures of speech, risk phrases), compiled from the phrase file (or from `source`, for tests)."""
    text = _DATA.read_text(encoding="utf-8") if source is None else source
    groups: dict[str, list[str]] = {}
    figures: list[re.Pattern[str]] = []
    risks: list[re.Pattern[str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        group = _GROUP.match(line)
        if group:
            groups[group[1]] = [c for c in group[2].split("|") if c]
        elif line.startswith("!"):
            figures.append(_compile(line[1:].strip(), groups))
        else:
            risks.append(_compile(line, groups))
    return tuple(figures), tuple(risks)


def concern(text: str, source: str | None = None) -> bool:
    """True when the text suggests its writer may be at risk of harming themselves."""
    figures, risks = phrases(source)
    normal = normalise(text)
    for figure in figures:
        normal = figure.sub(". ", normal)
    return any(risk.search(normal) for risk in risks)


# Post fields (docs/care.md): the content note and the reply wish, as they are stored and sent.
NOTE_MAX = 80


def check_note(note: str | None) -> None:
    """The pages build posts without msgspec's checks: the content note's limit, said the same way."""
    if note is not None and len(clean_note(note) or "") > NOTE_MAX:
        raise ClientException(f"content_note is at most {NOTE_MAX} characters; this one has {len(note)}")


def clean_note(note: str | None) -> str | None:
    """A content note as stored: inner whitespace folded; empty is none."""
    if note is None:
        return None
    folded = " ".join(note.split())
    return folded or None


_WISHES: dict[str | None, ReplyWish] = {"listen": "listen", "questions": "questions", "ideas": "ideas"}


def reply_wish(value: str | None) -> ReplyWish | None:
    return _WISHES.get(value)


# Care resources (docs/care.md): Kindred's default until the coach writes the circle's own. It names no phone
# number: numbers differ by country and change; the directories keep them current.
DEFAULT_RESOURCES = """**Kindred is not a crisis service.** Your coach and your peers may not see what you write for hours.

If you are in danger now, or thinking about ending your life, please reach out right away:

- **Call your local emergency number** (for example 112 in the EU, 911 in the US and Canada, 999 in the UK), or go \
to the nearest emergency department.
- **Find a helpline in your country**, free and confidential, many open day and night: \
[findahelpline.com](https://findahelpline.com) lists services by country and topic, and the International \
Association for Suicide Prevention keeps a [directory of crisis centres](https://www.iasp.info/crisis-centres-helplines/).
- **Tell someone you trust** nearby: a friend, a family member, a doctor.

You matter, and you do not have to carry this alone."""


def resources(stored: str | None) -> str:
    return stored or DEFAULT_RESOURCES


def resources_html(stored: str | None) -> str:
    from web.markdown import render  # the one Markdown renderer (sanitised, links made safe)

    return render(resources(stored))[0]
