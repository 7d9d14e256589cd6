"""The pulse's pure parts: the window's first moment, the median, and the server-drawn chart."""

from __future__ import annotations

from datetime import UTC, datetime

from app.services.pulse import median, window_start
from web.charts import activity_chart


def test_the_window_is_whole_utc_days_today_included() -> None:
    at = datetime(2026, 12, 7, 0, 5, tzinfo=UTC)
    assert window_start(1, at) == datetime(2026, 12, 7, tzinfo=UTC)
    assert window_start(30, at) == datetime(2026, 11, 8, tzinfo=UTC)


def test_median() -> None:
    assert median([]) is None
    assert median([10, 20]) == 15
    assert median([3, 1, 2]) == 2


def test_the_chart_is_an_image_with_its_label_and_one_bar_a_day() -> None:
    svg = activity_chart(["2026-12-06", "2026-12-07"], [3, 0], [2, 1], 'Posts <per> "day"')
    assert 'role="img"' in svg and 'aria-label="Posts &lt;per&gt; &quot;day&quot;"' in svg
    assert svg.count('<rect class="bar"') == 2 and "<polyline" in svg
    assert "2026-12-06: 3 posts" in svg
