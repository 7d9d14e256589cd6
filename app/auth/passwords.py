"""argon2id password hashes, computed off the event loop, with constant-time behaviour for unknown accounts."""

from __future__ import annotations

import functools
import gzip
import re
from pathlib import Path

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2-cffi's defaults are RFC 9106's second recommended profile: argon2id, t=3, m=64 MiB, p=4.
_hasher = PasswordHasher()

MIN_LENGTH = 10
# Long enough for any passphrase, short enough that hashing it is not a denial-of-service lever.
MAX_LENGTH = 256

# The 10,000 most common passwords of breach corpora (zxcvbn's list, MIT; see common_passwords.NOTICE).
_COMMON_FILE = Path(__file__).with_name("common_passwords.txt.gz")
# Look-alike characters people swap in ("p@ssw0rd"); "1" and "|" stand for "i" or "l", so both are tried.
_LEET = {
    "@": "a",
    "4": "a",
    "8": "b",
    "(": "c",
    "3": "e",
    "6": "g",
    "9": "g",
    "!": "i",
    "0": "o",
    "$": "s",
    "5": "s",
    "7": "t",
    "+": "t",
    "2": "z",
}
_LEET_I = str.maketrans({**_LEET, "1": "i", "|": "i"})
_LEET_L = str.maketrans({**_LEET, "1": "l", "|": "l"})
# What people add around a word to satisfy rules: digits (years), symbols, spaces; stripped before the word is looked up.
_AROUND = re.compile(r"^[\W\d_]+|[\W\d_]+$")
# Keyboard rows and columns, the alphabet and the digits: any run of 4 or more along one, either way, is a sequence.
_SEQUENCES = (
    "abcdefghijklmnopqrstuvwxyz",
    "01234567890",
    "`1234567890-=",
    "qwertyuiop[]\\",
    "asdfghjkl;'",
    "zxcvbnm,./",
    "qazwsxedcrfvtgbyhnujmikolp",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
    "!@#$%^&*()_+",
    "azertyuiop",
    "qwertzuiop",
)
_MIN_SEQUENCE = 4
_ADVICE = "use three or four unrelated words instead, like “lantern copper autumn river”"
COMMON = (
    "that password appears in breach lists (or is one of them with look-alike characters swapped in, or with digits, "
    "a year or symbols added), so it is among the first an attacker tries; " + _ADVICE
)
SEQUENCE = "that password is a keyboard or alphabet sequence (like “qwerty” or “abcdef”); " + _ADVICE
REPEATED = "that password repeats a short pattern; " + _ADVICE


@functools.cache
def common_passwords() -> frozenset[str]:
    with gzip.open(_COMMON_FILE, "rt", encoding="utf-8") as handle:
        return frozenset(line.strip() for line in handle if line.strip())


def _is_sequence(text: str) -> bool:
    if len(text) < _MIN_SEQUENCE:
        return False
    return any(text in run or text in run[::-1] for run in _SEQUENCES)


def breach_pattern(password: str) -> str | None:
    """Why the password is a shape attackers try first (a common password however dressed up, a sequence, a
    repeat), or None."""
    lowered = password.lower()
    common = common_passwords()
    core = _AROUND.sub("", lowered)
    candidates = {lowered, lowered.replace(" ", ""), core, core.translate(_LEET_I), core.translate(_LEET_L)}
    candidates |= {_AROUND.sub("", c) for c in list(candidates)}
    if any(c in common for c in candidates if c):
        return COMMON
    if any(_is_sequence(c.replace(" ", "")) for c in (lowered, core)):
        return SEQUENCE
    # A short unit repeated ("abcabcabc"), or a common one doubled ("passwordpassword").
    repeated = re.fullmatch(r"(.+?)\1+", core.replace(" ", ""))
    if repeated:
        unit = repeated.group(1)
        if unit in common or unit.translate(_LEET_I) in common or unit.translate(_LEET_L) in common:
            return COMMON
        if len(unit) <= 5:
            return REPEATED
    return None


def password_problem(password: str, *, email: str = "", name: str = "") -> str | None:
    """Why a password is not acceptable, or None."""
    if len(password) < MIN_LENGTH:
        return f"use at least {MIN_LENGTH} characters for your password"
    if len(password) > MAX_LENGTH:
        return f"use at most {MAX_LENGTH} characters for your password"
    if len(set(password)) < 4:
        return "use a password with more variety (at least 4 different characters)"
    pattern = breach_pattern(password)
    if pattern:
        return pattern
    lowered = password.lower()
    local = email.split("@", 1)[0].lower()
    if len(local) >= 4 and local in lowered:
        return "your password must not contain your email address"
    if len(name) >= 4 and name.lower() in lowered:
        return "your password must not contain your name"
    return None


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_hasher.hash, password)


DUMMY_PASSWORD = "kindred-dummy-password-for-timing"


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash(DUMMY_PASSWORD)


def _verify(stored: str | None, password: str) -> bool:
    # No hash (unknown email) or an empty one (an erased account) spends the same time on the dummy, then says no
    # whatever the password: the dummy's password is in this file, so it must never be the reason for a yes.
    usable = bool(stored)
    try:
        return _hasher.verify(stored if usable else _dummy_hash(), password) and usable  # type: ignore[arg-type]
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """True when `password` matches `stored`; with no stored hash it still spends the same time, then says no."""
    return await anyio.to_thread.run_sync(_verify, stored, password)
