"""The session binding of CSRF tokens (app/auth/csrf.py), as pure functions."""

from __future__ import annotations

from app.auth.csrf import issue, session_binding, verify

SECRET = "s" * 32


def test_a_token_verifies_for_the_session_it_was_issued_to_and_no_other() -> None:
    mine, theirs = session_binding("session-a"), session_binding("session-b")
    token = issue(SECRET, mine)
    assert verify(SECRET, token, mine) == token[:64]
    assert verify(SECRET, token, theirs) is None
    assert verify(SECRET, token, session_binding(None)) is None
    assert verify("another secret" * 3, token, mine) is None


def test_a_token_from_before_sign_in_is_bound_to_no_session() -> None:
    anonymous = session_binding(None)
    assert anonymous == session_binding("") == ""
    token = issue(SECRET, anonymous)
    assert verify(SECRET, token, anonymous) is not None
    assert verify(SECRET, token, session_binding("now signed in")) is None


def test_malformed_tokens_do_not_verify() -> None:
    binding = session_binding("session-a")
    good = issue(SECRET, binding)
    for bad in (None, "", good[:64], good[:-1], good[:-1] + ("0" if good[-1] != "0" else "1"), "z" * 128):
        assert verify(SECRET, bad, binding) is None, bad


def test_the_binding_never_carries_the_session_cookie_itself() -> None:
    assert "session-a" not in session_binding("session-a")
    assert len(session_binding("session-a")) == 64
