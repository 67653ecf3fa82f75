"""The retry policy (DESIGN.md guarantee 6): full-jitter backoff, its cap, the retry window, rate-limit waits."""

from __future__ import annotations

import random

import pytest

from worker.retry import (
    BASE_SECONDS,
    CAP_SECONDS,
    RATE_LIMIT_JITTER_SECONDS,
    backoff,
    out_of_window,
    rate_limit_wait,
)


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 8, 9, 12, 40, 1000])
def test_backoff_is_full_jitter_within_the_exponential_ceiling(attempt):
    ceiling = min(CAP_SECONDS, BASE_SECONDS * 2 ** min(attempt, 32))
    delays = [backoff(attempt) for _ in range(2000)]
    assert all(0 <= d <= ceiling for d in delays)
    # Full jitter: spread over the whole range, not bunched at the ceiling.
    assert min(delays) < ceiling * 0.1
    assert max(delays) > ceiling * 0.9
    assert 0.4 * ceiling < sum(delays) / len(delays) < 0.6 * ceiling


def test_backoff_grows_then_stops_at_the_cap():
    random.seed(1)
    assert max(backoff(1, base=1, cap=300) for _ in range(500)) <= 2
    assert max(backoff(4, base=1, cap=300) for _ in range(500)) <= 16
    late = [backoff(20, base=1, cap=300) for _ in range(2000)]
    assert max(late) <= 300 and max(late) > 290
    assert max(backoff(3, base=0.5, cap=3) for _ in range(500)) <= 3


def test_backoff_of_a_huge_attempt_number_does_not_overflow():
    assert 0 <= backoff(10**9) <= CAP_SECONDS


def test_out_of_window():
    assert not out_of_window(1000.0, 1000.0, 4 * 3600)
    assert not out_of_window(1000.0, 1000.0 + 4 * 3600 - 1, 4 * 3600)
    assert out_of_window(1000.0, 1000.0 + 4 * 3600, 4 * 3600)
    assert out_of_window(1000.0, 1000.0 + 5 * 3600, 4 * 3600)
    assert out_of_window(1000.0, 1000.0, 0)  # a zero window gives up at the first failure


@pytest.mark.parametrize("ahead", [0.0, 0.3, 4.0, 9.99, 60.0])
def test_rate_limit_wait_never_calls_before_the_reset(ahead):
    now = 1_700_000_000.0
    waits = [rate_limit_wait(now + ahead, now) for _ in range(1000)]
    assert all(ahead <= w <= ahead + RATE_LIMIT_JITTER_SECONDS for w in waits)
    assert max(waits) - min(waits) > 0.5 * RATE_LIMIT_JITTER_SECONDS  # jittered, not one wave


def test_rate_limit_wait_for_a_reset_already_past_is_only_the_jitter():
    now = 1_700_000_000.0
    assert all(0 <= rate_limit_wait(now - 5, now) <= RATE_LIMIT_JITTER_SECONDS for _ in range(200))
