"""argon2id password hashes, computed off the event loop, with constant-time behaviour for unknown accounts."""

from __future__ import annotations

import functools

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2-cffi's defaults are RFC 9106's second recommended profile: argon2id, t=3, m=64 MiB, p=4.
_hasher = PasswordHasher()

MIN_LENGTH = 10
# Long enough for any passphrase, short enough that hashing it is not a denial-of-service lever.
MAX_LENGTH = 256

# The most common shapes from breach corpora; a full breach list would be a data file we keep current.
_COMMON = {
    "password",
    "passw0rd",
    "password1",
    "password123",
    "123456789",
    "1234567890",
    "12345678910",
    "qwertyuiop",
    "qwerty123",
    "iloveyou",
    "letmein123",
    "welcome123",
    "admin12345",
    "abc123456",
    "football1",
    "baseball1",
    "sunshine1",
    "princess1",
    "trustno1",
    "1q2w3e4r5t",
    "qazwsxedc",
    "changeme",
    "kindred123",
    "0987654321",
    "aaaaaaaaaa",
    "asdfghjkl",
    "zxcvbnm123",
}


def password_problem(password: str, *, email: str = "", name: str = "") -> str | None:
    """Why a password is not acceptable, or None."""
    if len(password) < MIN_LENGTH:
        return f"use at least {MIN_LENGTH} characters for your password"
    if len(password) > MAX_LENGTH:
        return f"use at most {MAX_LENGTH} characters for your password"
    lowered = password.lower()
    if lowered in _COMMON or lowered.rstrip("!1") in _COMMON:
        return "that password appears in breach lists; choose another"
    if len(set(password)) < 4:
        return "use a password with more variety (at least 4 different characters)"
    local = email.split("@", 1)[0].lower()
    if len(local) >= 4 and local in lowered:
        return "your password must not contain your email address"
    if len(name) >= 4 and name.lower() in lowered:
        return "your password must not contain your name"
    return None


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_hasher.hash, password)


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("kindred-dummy-password-for-timing")


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """True when `password` matches `stored`; with no stored hash it still spends the same time, then says no."""
    return await anyio.to_thread.run_sync(_verify, stored, password)
