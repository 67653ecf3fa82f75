"""The failure policy (docs/design.md, guarantee 6): its table, full-jitter backoff, its cap, the retry window, rate-limit waits."""

from __future__ import annotations

import random

import pytest

from worker.intercom.errors import (
    AwaitingSearch,
    Conflict,
    ContactNotFound,
    InvalidPayload,
    NotFound,
    PermanentError,
    RateLimited,
    RetryableError,
    SearchLagConflict,
    Unauthorized,
    error_class,
)
from worker.mappings import MappingError
from worker.policy import (
    BASE_SECONDS,
    CAP_SECONDS,
    RATE_LIMIT_JITTER_SECONDS,
    RetryPolicy,
    Step,
    backoff,
    decide,
    out_of_window,
    rate_limit_wait,
)
from worker.settings import Settings


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


# -- the decisions (worker/policy.py's table) -------------------------------------

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("error", "parks_on_404", "step"),
    [
        (RateLimited("429", 429, reset_at=NOW + 3), True, Step.WAIT),
        (AwaitingSearch("lag", retry_at=NOW + 15), False, Step.WAIT),
        (Unauthorized("401", 401), True, Step.PAUSE),
        (ContactNotFound("404", 404), True, Step.PARK),
        (ContactNotFound("404", 404), False, Step.RETRY),  # an identify: "no such contact" is not parked
        (RetryableError("503", 503), True, Step.RETRY),
        (SearchLagConflict("409", 409), False, Step.RETRY),
        (KeyError("a bug"), True, Step.RETRY),  # a bug must not lose the event
        (PermanentError("400", 400), True, Step.DEAD_LETTER),
        (NotFound("404", 404), True, Step.DEAD_LETTER),
        (InvalidPayload("email", "not a string"), False, Step.DEAD_LETTER),
        (MappingError("no longer configured", mapping="m"), True, Step.DEAD_LETTER),
    ],
)
def test_each_failure_leads_where_the_table_says(error, parks_on_404, step):
    assert decide(error, parks_on_404=parks_on_404, now=NOW).step is step


def test_a_wait_lasts_until_the_reset_or_the_next_look():
    assert 3.0 <= decide(RateLimited("429", reset_at=NOW + 3), parks_on_404=False, now=NOW).delay <= 4.0
    assert decide(AwaitingSearch("lag", retry_at=NOW + 15), parks_on_404=False, now=NOW).delay == 15.0
    assert decide(AwaitingSearch("lag", retry_at=NOW - 5), parks_on_404=False, now=NOW).delay == 1.0


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, PermanentError), (401, Unauthorized), (403, PermanentError), (404, NotFound), (408, RetryableError),
     (409, Conflict), (410, NotFound), (422, PermanentError), (423, RetryableError), (429, RateLimited),
     (500, RetryableError), (501, PermanentError), (502, RetryableError), (503, RetryableError), (599, RetryableError)],
)  # fmt: skip
def test_the_status_table(status, error):
    assert error_class(status) is error


def test_the_retry_policy_takes_its_window_and_probe_interval_from_settings():
    policy = RetryPolicy.from_settings(Settings(retry_window=60, pause_probe_seconds=5))
    assert (policy.window, policy.probe_interval) == (60, 5)
    assert not policy.gives_up(NOW, NOW + 59) and policy.gives_up(NOW, NOW + 60)
    assert 0 <= policy.backoff(3) <= 8
