"""What makes two aliases the same alias: so nobody in a circle can pass as another member, or as the coach.

Two keys are kept for every membership, each unique among a circle's current members (and checked against former
members whose old posts still show their alias):

- `alias_key`: the alias case-folded, as before ("lantern" for "Lantern"); @mentions are matched by it.
- `alias_skeleton`: the TR39 skeleton (Unicode Technical Standard #39, section 4) of the alias after NFKC, case-folded
  and skeletonised again, so letters that look alike in any script compare equal: "Lаntern" (Cyrillic а),
  "Ｌantern" (fullwidth) and "Lantern" share one; so do "Ian" and "lan", which most sans-serif fonts draw alike.

Pure functions over the vendored `app/data/confusables.txt.gz` (see its README); no I/O after the first call.
"""

from __future__ import annotations

import functools
import gzip
import unicodedata
from pathlib import Path

_DATA = Path(__file__).resolve().parent.parent / "data" / "confusables.txt.gz"


@functools.cache
def _prototypes() -> dict[str, str]:
    table: dict[str, str] = {}
    with gzip.open(_DATA, "rt", encoding="utf-8-sig") as lines:
        for line in lines:
            data = line.split("#", 1)[0].strip()
            if not data:
                continue
            source, target, *_ = (field.strip() for field in data.split(";"))
            table[chr(int(source, 16))] = "".join(chr(int(cp, 16)) for cp in target.split())
    return table


def _is_ignorable(ch: str) -> bool:
    # Default_Ignorable_Code_Point is not in unicodedata; format characters (Cf: zero-width joiners, bidi marks,
    # soft hyphen) and variation selectors are the ignorables an alias could carry.
    return unicodedata.category(ch) == "Cf" or "\ufe00" <= ch <= "\ufe0f" or "\U000e0100" <= ch <= "\U000e01ef"


def tr39_skeleton(text: str) -> str:
    """skeleton(X) of UTS #39: NFD, drop default ignorables, map each character to its prototype, NFD again."""
    table = _prototypes()
    decomposed = unicodedata.normalize("NFD", text)
    mapped = "".join(table.get(ch, ch) for ch in decomposed if not _is_ignorable(ch))
    return unicodedata.normalize("NFD", mapped)


def normalise(alias: str) -> str:
    """The alias as stored: NFKC (fullwidth and compatibility forms become the letters they stand for)."""
    return unicodedata.normalize("NFKC", alias)


def alias_key(alias: str) -> str:
    return alias.casefold()


def alias_skeleton(alias: str) -> str:
    """Equal for aliases a reader could take for one another, whatever their case or script."""
    return tr39_skeleton(tr39_skeleton(normalise(alias)).casefold())
