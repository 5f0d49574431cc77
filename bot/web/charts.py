"""The weekly trend as inline SVG, written by hand: no browser script, no CDN, no third-party
file, and it scales from a phone to a projector through its viewBox."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from bot.web.stats import Week

WIDTH, HEIGHT = 960, 340
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 56, 44
SERIES = (("new", "新增", "#d9480f"), ("resolved", "办结", "#2b8a3e"))


def axis_step(value: int) -> int:
    """A round whole tick step such that four steps reach `value`, leaving little empty space."""
    need = max(math.ceil(value / 4), 1)
    power = 10 ** math.floor(math.log10(need))
    steps = (m * power for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10))
    return int(next(st for st in steps if st >= need and st == int(st)))


def trend_svg(weeks: Sequence[Week]) -> str:
    step_y = axis_step(max([w.new for w in weeks] + [w.resolved for w in weeks] + [0]))
    top = 4 * step_y
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(weeks) - 1, 1)

    def x(i: int) -> float:
        return round(LEFT + i * step, 1)

    def y(v: int) -> float:
        return round(TOP + plot_h * (1 - v / top), 1)

    parts = [
        f'<svg class="trend" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="近{len(weeks)}周新增与办结趋势" xmlns="http://www.w3.org/2000/svg">'
    ]
    for k in range(5):  # horizontal grid and the y labels
        value = step_y * k
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value)}" y2="{y(value)}"/>')
        parts.append(f'<text class="ylabel" x="{LEFT - 8}" y="{y(value) + 4}" text-anchor="end">{value}</text>')
    last = len(weeks) - 1
    for i, w in enumerate(weeks):  # a date under every fourth week, counted back from the current one
        if (last - i) % 4 == 0:
            label = f"{w.start.month}/{w.start.day}"
            anchor = "end" if i == last else "middle"  # the last one ends at the edge, never past it
            parts.append(f'<text class="xlabel" x="{x(i)}" y="{HEIGHT - 12}" text-anchor="{anchor}">{label}</text>')
    for key, name, color in SERIES:
        values = [getattr(w, key) for w in weeks]
        points = " ".join(f"{x(i)},{y(v)}" for i, v in enumerate(values))
        parts.append(f'<polyline class="line {key}" fill="none" stroke="{color}" stroke-width="3" points="{points}"/>')
        for i, (w, v) in enumerate(zip(weeks, values, strict=True)):
            tip = escape(f"{w.start.month}月{w.start.day}日当周 {name} {v} 件")
            parts.append(
                f'<circle class="point {key}" data-week="{w.start.isoformat()}" data-value="{v}" '
                f'cx="{x(i)}" cy="{y(v)}" r="4.5" fill="{color}"><title>{tip}</title></circle>'
            )
    for n, (key, name, color) in enumerate(SERIES):  # the legend, top left
        lx = LEFT + n * 110
        # Baseline at 38: a CJK font's ascent at the phone's 32 px legend (WenQuanYi's is about
        # 1.0 em) would otherwise reach above the top of the chart.
        parts.append(f'<rect x="{lx}" y="18" width="20" height="20" rx="3" fill="{color}"/>')
        parts.append(f'<text class="legend {key}" x="{lx + 28}" y="38">{name}</text>')
    parts.append("</svg>")
    return "".join(parts)
