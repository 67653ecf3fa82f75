"""The fleet-wide rate budget (docs/design.md, guarantee 5) against the suite's real Redis."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from worker.intercom.errors import RateLimited
from worker.store.budget import RateBudget

TOKEN = "tok123"


def response(status: int = 200, *, limit: int | None = None, remaining: int | None = None, reset: float | None = None) -> httpx.Response:
    headers = {}
    if limit is not None:
        headers["X-RateLimit-Limit"] = str(limit)
    if remaining is not None:
        headers["X-RateLimit-Remaining"] = str(remaining)
    if reset is not None:
        headers["X-RateLimit-Reset"] = str(int(reset))
    return httpx.Response(status, headers=headers)


def tat(redis, budget) -> float:
    """The budget's next free slot, in Unix seconds (0 when none was reserved)."""
    return float(redis.hget(budget.key, "tat") or 0) / 1000


def gaps(slots: list[float]) -> list[float]:
    ordered = sorted(slots)
    return [b - a for a, b in zip(ordered, ordered[1:])]


# The schedule is checked through the slots it hands out (by Redis's clock),
# not through how long the test took: a busy machine delays threads, but it
# cannot make the budget hand out two slots closer than its interval.
# 1 ms of slack covers slots rounded to whole milliseconds.


def test_reservations_are_spread_evenly_over_the_window(redis):
    # 21 per 1-s window at share 1.0: 20 slots a window (99% headroom), 50 ms apart.
    budget = RateBudget(redis, TOKEN, default_limit=21, window_seconds=1.0)
    slots = [budget.acquire() for _ in range(20)]
    assert min(gaps(slots)) >= 0.050 - 0.001  # never a burst
    assert slots[-1] - slots[0] >= 19 * 0.050 - 0.001
    assert tat(redis, budget) == pytest.approx(slots[-1] + 0.050, abs=0.002)


def test_threads_of_a_fleet_share_one_schedule(redis):
    # Two budgets on one token stand for two worker processes; 41 a window
    # gives 40 slots a second, 25 ms apart, whoever takes them.
    a = RateBudget(redis, TOKEN, default_limit=41, window_seconds=1.0)
    b = RateBudget(redis, TOKEN, default_limit=41, window_seconds=1.0)
    slots: list[float] = []
    lock = threading.Lock()

    def run(budget):
        for _ in range(10):
            slot = budget.acquire()
            with lock:
                slots.append(slot)

    threads = [threading.Thread(target=run, args=(x,)) for x in (a, b, a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(slots) == 40
    assert min(gaps(slots)) >= 0.025 - 0.001
    assert max(slots) - min(slots) >= 39 * 0.025 - 0.001


def test_share_leaves_room_for_other_apps(redis):
    # 41 a window: 40 slots a second at share 1.0 (25 ms apart), 20 at 0.5 (50 ms apart).
    whole = RateBudget(redis, "whole", default_limit=41, window_seconds=1.0)
    half = RateBudget(redis, TOKEN, share=0.5, default_limit=41, window_seconds=1.0)
    assert min(gaps([whole.acquire() for _ in range(5)])) >= 0.025 - 0.001
    half_slots = [half.acquire() for _ in range(10)]
    assert min(gaps(half_slots)) >= 0.050 - 0.001
    assert tat(redis, half) == pytest.approx(half_slots[-1] + 0.050, abs=0.002)


def test_the_limit_is_learnt_from_the_response_headers(redis):
    budget = RateBudget(redis, TOKEN, default_limit=1666, window_seconds=1.0)
    budget.acquire()
    assert redis.hget(budget.key, "limit") is None
    budget.observe(response(limit=11))
    assert redis.hget(budget.key, "limit") == "11"
    # Now 10 slots a second, 100 ms apart, instead of 1,665.
    before = tat(redis, budget)
    budget.acquire()
    budget.acquire()
    assert tat(redis, budget) - max(before, time.time() - 0.1) == pytest.approx(0.2, abs=0.06)
    assert redis.hget("relay:counters", "api_calls") == "3"  # every reserved slot is a call made


def test_an_answer_that_only_confirms_the_schedule_costs_no_round_trip(redis, monkeypatch):
    budget = RateBudget(redis, TOKEN, default_limit=101, window_seconds=10.0)
    trips = []
    script = budget._observe

    def counting(**kw: Any) -> Any:
        trips.append(kw["args"])
        return script(**kw)

    monkeypatch.setattr(budget, "_observe", counting)
    slot = budget.acquire()
    reset = int(time.time()) + 5
    budget.observe(response(limit=101, remaining=100, reset=reset), slot)  # our own pace: nothing new
    budget.observe(response(401), slot)  # no rate headers
    assert trips == []
    budget.observe(response(limit=51, remaining=50, reset=reset), slot)  # a new limit
    budget.observe(response(limit=101, remaining=3, reset=reset), slot)  # others spend the allowance
    budget.observe(response(429, limit=101, remaining=0, reset=reset), slot)
    budget.observe(response(limit=101, remaining=100, reset=reset))  # no slot given: always told
    assert [args["status"] for args in trips] == ["200", "200", "429", "200"]


def test_a_429_pushes_every_slot_past_the_reset(redis):
    budget = RateBudget(redis, TOKEN, default_limit=1666, max_inline_wait=2.0)
    reset = int(time.time()) + 6
    budget.observe(response(429, limit=1666, remaining=0, reset=reset))
    assert tat(redis, budget) >= reset
    with pytest.raises(RateLimited) as caught:
        budget.acquire()
    assert caught.value.reset_at >= reset
    assert redis.hget("relay:counters", "rate_limited") == "1"
    # A refused reservation reserves nothing: the schedule is unchanged.
    assert tat(redis, budget) == pytest.approx(reset, abs=0.001)


def test_acquire_waits_inline_for_a_near_slot_and_refuses_a_far_one(redis, monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr("worker.store.budget.time.sleep", slept.append)
    budget = RateBudget(redis, TOKEN, default_limit=1666, max_inline_wait=0.5)
    soon = time.time() + 0.3
    redis.hset(budget.key, "tat", int(soon * 1000))
    assert budget.acquire() == pytest.approx(soon, abs=0.002)  # 0.3 s away: waited for in the thread
    assert len(slept) == 1 and 0 < slept[0] <= 0.3
    far = time.time() + 3
    redis.hset(budget.key, "tat", int(far * 1000))
    with pytest.raises(RateLimited) as caught:
        budget.acquire()
    assert len(slept) == 1  # not slept
    assert caught.value.reset_at == pytest.approx(far, abs=0.01)
    assert tat(redis, budget) == pytest.approx(far, abs=0.002)  # nothing reserved


def test_remaining_lower_than_expected_pushes_the_slots_back(redis):
    # Another app of the workspace spends the same allowance: Intercom says only
    # 10 of 101 calls are left with 10 s to go.  Our next calls must fit into
    # the end of the window, not go at our own pace.
    budget = RateBudget(redis, TOKEN, default_limit=101, window_seconds=10.0, max_inline_wait=2.0)
    budget.acquire()
    reset = int(time.time()) + 10
    budget.observe(response(limit=101, remaining=10, reset=reset))
    interval = 10.0 / 99  # 99% of the limit of 101 is scheduled (the headroom)
    assert tat(redis, budget) == pytest.approx(reset - 10 * interval, abs=0.01)
    with pytest.raises(RateLimited):
        budget.acquire()


def test_remaining_as_expected_does_not_slow_us_down(redis):
    budget = RateBudget(redis, TOKEN, default_limit=101, window_seconds=10.0)
    budget.acquire()
    before = tat(redis, budget)
    reset = int(time.time()) + 5
    budget.observe(response(limit=101, remaining=100, reset=reset))
    assert tat(redis, budget) == before


def test_remaining_zero_waits_for_the_reset(redis):
    budget = RateBudget(redis, TOKEN, default_limit=101, window_seconds=10.0)
    reset = int(time.time()) + 4
    budget.observe(response(limit=101, remaining=0, reset=reset))
    assert tat(redis, budget) == pytest.approx(reset, abs=0.001)


def test_budgets_of_different_tokens_are_independent(redis):
    a = RateBudget(redis, "aaa", default_limit=1666)
    b = RateBudget(redis, "bbb", default_limit=1666)
    a.observe(response(429, limit=1666, remaining=0, reset=time.time() + 8))
    with pytest.raises(RateLimited):
        a.acquire()
    b.acquire()  # does not raise


def test_a_prepaid_slot_is_the_next_calls_without_a_round_trip(redis):
    budget = RateBudget(redis, TOKEN, default_limit=21, window_seconds=1.0)
    reply = budget._reserve(keys={"budget": budget.key, "counters": "relay:counters"}, args=budget.reservation()[1])
    prepaid = budget.slot_of(reply)
    before = tat(redis, budget)
    assert budget.acquire(prepaid) == reply[1] / 1000  # the prepaid slot
    assert tat(redis, budget) == before  # nothing more was reserved
    assert budget.acquire() >= before  # the next call reserves a slot of its own
    assert tat(redis, budget) > before


def test_an_unused_prepaid_slot_is_not_counted_as_a_call(redis):
    budget = RateBudget(redis, TOKEN, default_limit=21, window_seconds=1.0)
    budget.slot_of(budget._reserve(keys={"budget": budget.key, "counters": "relay:counters"}, args=budget.reservation()[1]))
    assert redis.hget("relay:counters", "api_calls") == "1"
    budget.uncount()  # its call was never made
    assert redis.hget("relay:counters", "api_calls") == "0"


def test_a_slot_too_far_away_is_not_prepaid(redis):
    budget = RateBudget(redis, TOKEN, default_limit=2, window_seconds=10.0, max_inline_wait=0.0)
    budget.acquire()  # one call per 10 s: the next slot is 10 s away
    prepaid = budget.slot_of(budget._reserve(keys={"budget": budget.key, "counters": "relay:counters"}, args=budget.reservation()[1]))
    assert prepaid is None
    with pytest.raises(RateLimited):  # the next call asks again, and must wait
        budget.acquire(prepaid)
