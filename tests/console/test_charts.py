"""The overview's series from the counter history, and the SVG they are drawn as."""

from __future__ import annotations

from console import charts


def snapshot(at: int, limit: int | None = None, **counts: int) -> dict:
    base = {"accepted": 0, "delivered": 0, "unchanged": 0, "dead_lettered": 0, "api_calls": 0, "backlog": 0, "parked": 0, "retrying": 0}
    return {"at": at, "counts": {**base, **counts}, "limit": limit}


def test_rates_per_minute_are_taken_over_the_minute_before_each_point() -> None:
    history = [snapshot(1000 + 10 * n, accepted=30 * n) for n in range(10)]  # 3 accepted a second
    (accepted,) = charts.per_minute(history, ["accepted"])
    assert accepted.points[0] == (1000, None)  # nothing before the first snapshot
    assert [v for _, v in accepted.points[1:]] == [180.0] * 9  # 180 a minute, from 10 s of history on


def test_a_counter_that_went_down_gives_no_point() -> None:
    history = [snapshot(0, delivered=50), snapshot(10, delivered=0)]  # Redis emptied between the two
    assert charts.per_minute(history, ["delivered"])[0].points[1] == (10, None)


def test_calls_are_counted_per_whole_window_with_the_limit_intercom_reported() -> None:
    history = [
        snapshot(0, api_calls=0),
        snapshot(10, 100, api_calls=90),
        snapshot(20, 100, api_calls=190),
        snapshot(40, 100, api_calls=200),
    ]
    calls, limit = charts.calls_per_window(history)
    assert calls.points == [(0, 90.0), (10, 100.0), (20, None)]  # 20 -> 40 is two windows: not one window's calls
    assert limit.points == [(0, None), (10, 100.0), (20, 100.0)] and limit.dashed


def test_the_svg_escapes_its_title_and_breaks_lines_at_gaps() -> None:
    series = charts.Series("accepted", [(100.0, 1.0), (110.0, 2.0), (120.0, None), (130.0, 4.0)])
    drawn = str(charts.svg([series], title="<b>x</b>", now=400.0))
    assert "<b>" not in drawn and "&lt;b&gt;" in drawn
    assert drawn.count("<polyline") == 1 and drawn.count("<circle") == 1  # two points joined, then a lone one
