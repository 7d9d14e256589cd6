"""Password rules without a server: the breach list, look-alike characters, added digits and years, sequences."""

from __future__ import annotations

import pytest

from app.auth.passwords import COMMON, REPEATED, SEQUENCE, common_passwords, password_problem


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("Password2024!", COMMON),
        ("P@ssw0rd123", COMMON),
        ("qwerty12345", COMMON),
        ("Summer2025!", COMMON),
        ("monkey12345", COMMON),
        ("l3tm31n2024", COMMON),
        ("dr4g0n!!!!!", COMMON),
        ("Football#1!", COMMON),
        ("passwordpassword", COMMON),
        ("1qaz2wsx3edc", COMMON),
        ("abcdefghij", SEQUENCE),
        ("0987654321", SEQUENCE),
        ("zyxwvutsrq", SEQUENCE),
        ("lkjhgfdsa!", SEQUENCE),
        ("abcdabcdabcd", REPEATED),
    ],
)
def test_breach_patterns_are_refused_with_advice(password: str, why: str) -> None:
    assert password_problem(password) == why
    assert "three or four unrelated words" in why


@pytest.mark.parametrize(
    "password",
    [
        "a long enough passphrase 42",
        "lantern copper autumn river",
        "correct horse battery staple",
        "x7$Kq9!mZ2w",
        "Tr0ub4dor&3xyz",
    ],
)
def test_good_passwords_pass(password: str) -> None:
    assert password_problem(password) is None


def test_the_list_is_a_real_one_and_other_rules_still_hold() -> None:
    words = common_passwords()
    assert len(words) >= 5000 and {"password", "qwerty", "monkey", "summer", "dragon"} <= words
    assert "at least 10" in (password_problem("short") or "")
    assert "variety" in (password_problem("aaaaabbbbb") or "")
    assert "email" in (password_problem("my jo.smith passphrase", email="jo.smith@example.org") or "")
