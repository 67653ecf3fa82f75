"""Counter history: one snapshot per 10-s window fleet-wide, an hour of them, with the budget's limit when known."""

from __future__ import annotations

from worker.store import keys
from worker.store.counters import Counters
from worker.store.history import KEEP, History


def test_one_snapshot_per_window_whoever_sweeps(redis) -> None:
    Counters(redis).incr("accepted", 7)
    beats = [History(redis), History(redis)]  # two beats: harmless
    taken = [beat.snapshot_if_due(now=t) for t in (1000.2, 1003.0, 1009.9) for beat in beats]
    assert taken.count(True) == 1
    assert beats[0].snapshot_if_due(now=1010.1)  # the next window
    entries = History(redis).entries()
    assert [e["at"] for e in entries] == [1000, 1010]  # oldest first, on the window's start
    assert entries[0]["counts"]["accepted"] == 7 and entries[0]["counts"]["backlog"] == 7
    assert entries[0]["limit"] is None
    assert 0 < redis.ttl(keys.history_taken(101)) <= 20


def test_the_budgets_limit_rides_along_when_intercom_reported_one(redis) -> None:
    redis.hset(keys.budget("t1"), mapping={"tat": 0, "limit": 100})
    History(redis).snapshot_if_due(keys.budget("t1"), now=2000.0)
    assert History(redis).entries()[0]["limit"] == 100


def test_an_hour_is_kept(redis) -> None:
    history = History(redis)
    for n in range(KEEP + 5):
        assert history.snapshot_if_due(now=10.0 * n)
    entries = history.entries()
    assert len(entries) == KEEP
    assert entries[0]["at"] == 50 and entries[-1]["at"] == 10 * (KEEP + 4)
