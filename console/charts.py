"""The overview's charts: series from the counter history (worker/store/history.py), drawn as SVG here.

No chart library and no script: the server draws each chart as an inline
SVG, so the page works under a strict Content-Security-Policy and costs no
build step.  Every text in a chart is escaped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

from markupsafe import Markup, escape

from worker.store.budget import WINDOW_SECONDS

#: The charts show at most the last hour, and at least two minutes (a fresh deployment's
#: few snapshots are not stretched across the width).
SPAN_SECONDS = 3600
MIN_SPAN_SECONDS = 120

#: Totals charted as events per minute, and gauges charted as they stood.
PER_MINUTE = ("accepted", "delivered", "unchanged", "dead_lettered")
LEVELS = ("backlog", "parked", "retrying")

COLOURS = {
    "accepted": "#2563eb",
    "delivered": "#16a34a",
    "unchanged": "#9333ea",
    "dead_lettered": "#dc2626",
    "backlog": "#0f766e",
    "parked": "#d97706",
    "retrying": "#db2777",
    "api_calls": "#2563eb",
    "limit": "#6b7280",
}


@dataclass(frozen=True)
class Series:
    name: str
    points: list[tuple[float, float | None]]  # (unix seconds, value); None breaks the line
    dashed: bool = False


def per_minute(entries: list[dict[str, Any]], names: Sequence[str] = PER_MINUTE) -> list[Series]:
    """Each total as a rate per minute, at every snapshot, over the minute before it.

    Where less than a minute of history precedes a snapshot, the rate is taken
    over what there is; a counter that went down (Redis emptied) gives no point.
    """
    series = []
    for name in names:
        points: list[tuple[float, float | None]] = []
        for i, entry in enumerate(entries):
            base = _minute_before(entries, i)
            points.append((entry["at"], _rate(base, entry, name) if base is not None else None))
        series.append(Series(name, points))
    return series


def levels(entries: list[dict[str, Any]], names: Sequence[str] = LEVELS) -> list[Series]:
    """Each gauge as it stood at every snapshot."""
    return [Series(name, [(e["at"], float(e["counts"].get(name, 0))) for e in entries]) for name in names]


def calls_per_window(entries: list[dict[str, Any]]) -> list[Series]:
    """Calls to Intercom in each 10-s window (consecutive snapshots), and the limit Intercom reported."""
    calls: list[tuple[float, float | None]] = []
    limit: list[tuple[float, float | None]] = []
    for before, after in zip(entries, entries[1:]):
        made = after["counts"]["api_calls"] - before["counts"]["api_calls"]
        whole = after["at"] - before["at"] == WINDOW_SECONDS
        calls.append((before["at"], float(made) if whole and made >= 0 else None))
        limit.append((before["at"], float(before["limit"]) if before.get("limit") else None))
    return [Series("api_calls", calls), Series("limit", limit, dashed=True)]


def _minute_before(entries: list[dict[str, Any]], i: int) -> dict[str, Any] | None:
    """The earliest snapshot within the minute before entry i (not entry i itself)."""
    at = entries[i]["at"]
    for entry in entries[:i]:
        if entry["at"] >= at - 60:
            return entry
    return None


def _rate(before: dict[str, Any], after: dict[str, Any], name: str) -> float | None:
    grown = after["counts"].get(name, 0) - before["counts"].get(name, 0)
    seconds = after["at"] - before["at"]
    return grown * 60 / seconds if grown >= 0 and seconds > 0 else None


# -- drawing --------------------------------------------------------------------------------

#: Drawn about the size it is shown at in a 1,180-px page, so that its text keeps its size.
WIDTH, HEIGHT = 1100, 210
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 26

#: Time-axis steps to choose from (seconds): the first that makes at most eight ticks.
TICK_STEPS = (60, 120, 300, 600, 900, 1200)


def svg(series: list[Series], *, title: str, since: float | None = None, now: float | None = None) -> Markup:
    """A line chart of ``series`` from ``since`` (default: its first point) or the last hour, whichever is later."""
    now = time.time() if now is None else now
    if since is None:
        since = min((t for s in series for t, v in s.points if v is not None), default=now)
    start = max(now - SPAN_SECONDS, since)
    start = min(start, now - MIN_SPAN_SECONDS)
    top = _nice_ceiling(max((v for s in series for t, v in s.points if v is not None and t >= start), default=0.0))

    def x(t: float) -> float:
        return LEFT + (t - start) / (now - start) * (WIDTH - LEFT - RIGHT)

    def y(v: float) -> float:
        return HEIGHT - BOTTOM - v / top * (HEIGHT - TOP - BOTTOM)

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    parts += _grid(top, y) + _time_axis(start, now, x)
    for s in series:
        parts += _lines(s, start, x, y)
    parts.append("</svg>")
    return Markup("".join(parts))


def legend(series: list[Series]) -> list[tuple[str, str, bool]]:
    """(name, colour, dashed) for the template's legend."""
    return [(s.name, COLOURS.get(s.name, "#111827"), s.dashed) for s in series]


def _grid(top: float, y: Any) -> list[str]:
    parts = []
    for n in range(5):
        value = top * n / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#e5e7eb" />')
        parts.append(f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="11" fill="#6b7280">{_short(value)}</text>')
    return parts


def _time_axis(start: float, now: float, x: Any) -> list[str]:
    step = next((s for s in TICK_STEPS if (now - start) / s <= 8), TICK_STEPS[-1])
    parts = []
    tick = (int(start) // step + 1) * step
    while tick <= now:
        label = time.strftime("%H:%M", time.gmtime(tick))
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" stroke="#f3f4f6" />')
        parts.append(f'<text x="{x(tick):.1f}" y="{HEIGHT - 8}" text-anchor="middle" font-size="11" fill="#6b7280">{label}</text>')
        tick += step
    return parts


def _lines(series: Series, start: float, x: Any, y: Any) -> list[str]:
    """One polyline per unbroken run of points (a dot for a lone point)."""
    colour = COLOURS.get(series.name, "#111827")
    dash = ' stroke-dasharray="6 4"' if series.dashed else ""
    runs: list[list[tuple[float, float]]] = [[]]
    for t, v in series.points:
        if v is None or t < start:
            runs.append([])
        else:
            runs[-1].append((t, v))
    parts = []
    for run in (r for r in runs if r):
        if len(run) == 1:
            t, v = run[0]
            parts.append(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}" />')
            continue
        coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in run)
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"{dash} />')
    return parts


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^n at or above ``value`` (and above 0)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1) if value >= 1 else 1
    for factor in (1, 2, 2.5, 5, 10):
        if value <= factor * magnitude:
            return float(factor * magnitude)
    return float(10 * magnitude)


def _short(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"
