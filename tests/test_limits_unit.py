"""The sliding-log limiter without a server: exact counts over a moving window, independent keys and rules."""

from __future__ import annotations

import time

import pytest

from app.limits import MemoryLimiter, Rule

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_sliding_window_counts_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(time, "monotonic", clock)
    limiter = MemoryLimiter()
    rule = Rule("post", limit=3, window=60.0, message="slow")
    assert [await limiter.hit("a", rule) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert await limiter.hit("a", rule) == pytest.approx(60.0)
    clock.now += 30
    assert await limiter.hit("a", rule) == pytest.approx(30.0), "a fixed window would have let this through"
    clock.now += 30.001
    assert await limiter.hit("a", rule) == 0.0, "the oldest hit slid out of the window"
    assert await limiter.hit("b", rule) == 0.0, "keys are independent"
    other = Rule("join", limit=1, window=60.0, message="slow")
    assert await limiter.hit("a", other) == 0.0, "rules are independent for the same key"
