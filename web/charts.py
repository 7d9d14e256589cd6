"""Charts drawn on the server as SVG: no script, the same picture for every reader, and a text alternative beside it."""

from __future__ import annotations

from html import escape

from markupsafe import Markup

WIDTH, HEIGHT, PAD = 640, 180, 28


def activity_chart(days: list[str], posts: list[int], active: list[int], label: str) -> Markup:
    """Posts per day as bars and active members per day as a line, over the same days (oldest first)."""
    n = max(len(days), 1)
    top = max([*posts, *active, 1])
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    step = inner_w / n

    def y(value: int) -> float:
        return PAD + inner_h - inner_h * value / top

    bars = "".join(
        f'<rect class="bar" x="{PAD + i * step + step * 0.1:.1f}" y="{y(v):.1f}" width="{step * 0.8:.1f}" '
        f'height="{PAD + inner_h - y(v):.1f}"><title>{escape(d)}: {v} posts</title></rect>'
        for i, (d, v) in enumerate(zip(days, posts, strict=True))
    )
    points = " ".join(f"{PAD + (i + 0.5) * step:.1f},{y(v):.1f}" for i, v in enumerate(active))
    axis = (
        f'<line class="axis" x1="{PAD}" y1="{PAD + inner_h}" x2="{WIDTH - PAD}" y2="{PAD + inner_h}"/>'
        f'<text class="tick" x="{PAD - 4}" y="{PAD + 4}" text-anchor="end">{top}</text>'
        f'<text class="tick" x="{PAD - 4}" y="{PAD + inner_h}" text-anchor="end">0</text>'
    )
    if days:
        axis += (
            f'<text class="tick" x="{PAD}" y="{HEIGHT - 6}">{escape(days[0])}</text>'
            f'<text class="tick" x="{WIDTH - PAD}" y="{HEIGHT - 6}" text-anchor="end">{escape(days[-1])}</text>'
        )
    line = f'<polyline class="line" points="{points}"/>' if len(active) > 1 else ""
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}">'
        f"{axis}{bars}{line}</svg>"
    )
