"""Safe aliases: warn (never block) when an alias looks like it could identify its owner.

An alias is what keeps a member's circle from knowing who they are. These checks are pure and cheap; each warning
says what it noticed and why that matters. They are a nudge: the member may keep the alias.
"""

from __future__ import annotations

import re

WHY = "Your alias is the only thing peers see of you; one that points to your real identity undoes that protection."

_EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[a-z]{2,}", re.IGNORECASE)
_HANDLE_AT = re.compile(r"@")
_PHONE = re.compile(r"\+?\d[\d\s().-]{6,}\d")
_LONG_DIGITS = re.compile(r"\d{5,}")
# Two or three capitalised words, letters only ("Maria Lopez", "Jean-Luc Picard", "Anna de Vries"): the shape of a
# first and last name. Nature words are common alias choices and are let through.
_NAME = re.compile(
    r"^\p{Lu}\p{Ll}+(?:[-'\u2019]\p{Lu}?\p{Ll}+)?(?: (?:(?:van|von|de|der|da|di|del|le|la|du|bin|al)(?: |$))?"
    r"\p{Lu}\p{Ll}+(?:[-'\u2019]\p{Lu}?\p{Ll}+)?){1,2}$".replace(r"\p{Lu}", "[A-ZÀ-ÖØ-Þ]").replace(
        r"\p{Ll}", "[a-zß-öø-ÿ]"
    )
)
_ALIAS_WORDS = frozenset(
    [
        "quiet",
        "calm",
        "blue",
        "green",
        "red",
        "gold",
        "golden",
        "silver",
        "morning",
        "evening",
        "night",
        "little",
        "brave",
        "gentle",
        "kind",
        "steady",
        "slow",
        "river",
        "lake",
        "sea",
        "ocean",
        "stone",
        "rock",
        "tree",
        "oak",
        "pine",
        "willow",
        "birch",
        "fern",
        "moss",
        "leaf",
        "wind",
        "rain",
        "storm",
        "cloud",
        "sky",
        "star",
        "moon",
        "sun",
        "light",
        "lantern",
        "fox",
        "bear",
        "wolf",
        "owl",
        "hawk",
        "robin",
        "wren",
        "sparrow",
        "heron",
        "swan",
        "otter",
        "deer",
        "hare",
        "rabbit",
        "cat",
        "dog",
        "bird",
        "fish",
        "mountain",
        "hill",
        "valley",
        "field",
        "meadow",
        "garden",
        "forest",
        "wood",
        "path",
        "road",
        "way",
        "walker",
        "traveller",
        "wanderer",
        "dreamer",
        "seeker",
        "hope",
        "new",
        "north",
        "south",
        "east",
        "west",
        "winter",
        "spring",
        "summer",
        "autumn",
        "snow",
        "ember",
        "flame",
        "fire",
        "spark",
    ]
)


def warnings(alias: str) -> list[str]:
    """Plain-language warnings for an alias that may identify its owner; empty when it looks safe."""
    text = alias.strip()
    found: list[str] = []
    if _EMAIL.search(text) or (_HANDLE_AT.search(text) and "." in text):
        found.append("This alias looks like an email address, which tells peers exactly who you are.")
    digits = re.sub(r"\D", "", text)
    phone = _PHONE.search(text)
    if phone and len(digits) >= 7 and (re.search(r"[\s().+-]", phone[0]) or len(digits) >= 10):
        found.append("This alias looks like a phone number, which anyone could use to find or call you.")
    elif _LONG_DIGITS.search(text):
        found.append(
            "This alias has a long run of digits (a birth date, an ID or a phone number?) that could identify you."
        )
    if _NAME.match(text) and not any(word.lower() in _ALIAS_WORDS for word in text.split()):
        found.append("This alias looks like a first and last name; if it is yours, peers could recognise you.")
    if found:
        found.append(WHY)
    return found
