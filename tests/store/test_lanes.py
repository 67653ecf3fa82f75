"""The lane protocol against a real Redis: order, identify first, parking, leases."""

from __future__ import annotations

import time

import pytest

from worker.runtime import build_lanes
from worker.settings import Settings
from worker.store import keys
from worker.store.budget import RateBudget
from worker.store.counters import Counters


@pytest.fixture
def lanes(redis):
    return build_lanes(redis, Settings(lease_seconds=1, dispatch_seconds=1, park_hold=1))


def accept(redis, person, n=1):
    """What the door does: count the person's events in flight."""
    redis.hincrby(keys.INFLIGHT, person, n)
    redis.hincrby(keys.COUNTERS, "accepted", n)


def ingest(lanes, seq, person, action="track_event", message_id=None):
    did = lanes.delivery_id(seq, 0, action)
    record = {"person": person, "seq": seq, "action": action, "mapping": action, "event": {"seq": seq}}
    return did, lanes.ingest(seq, person, message_id or f"m{seq}", [(did, record)])


def test_an_idle_lane_is_woken_by_the_ingest_that_completes_its_arrivals(redis, lanes):
    accept(redis, "ann", 2)
    first, woke = ingest(lanes, 1, "ann")
    assert woke is None  # the second event is still on its way from the door
    _, woke = ingest(lanes, 2, "ann")
    assert woke == first


def test_events_ingested_out_of_order_run_in_acceptance_order(redis, lanes):
    accept(redis, "ann", 2)
    later, _ = ingest(lanes, 7, "ann")
    earlier, woke = ingest(lanes, 3, "ann")
    assert woke == earlier
    assert lanes.claim("ann", earlier, "t1").status == "ok"
    assert lanes.finish("ann", earlier, "delivered") == later


def test_only_one_task_claims_a_head(redis, lanes):
    accept(redis, "ann")
    head, _ = ingest(lanes, 1, "ann")
    assert lanes.claim("ann", head, "t1").status == "ok"
    assert lanes.claim("ann", head, "t2").status == "busy"


def test_a_finished_delivery_is_stale_for_a_redelivered_task(redis, lanes):
    accept(redis, "ann")
    head, _ = ingest(lanes, 1, "ann")
    lanes.claim("ann", head, "t1")
    assert lanes.finish("ann", head, "delivered") is None
    assert lanes.claim("ann", head, "t2").status == "stale"
    assert Counters(redis).snapshot()["backlog"] == 0


def test_a_repeated_message_id_is_counted_once_as_duplicate(redis, lanes):
    accept(redis, "ann", 2)
    ingest(lanes, 1, "ann", message_id="same")
    ingest(lanes, 2, "ann", message_id="same")
    counts = Counters(redis).snapshot()
    assert (counts["duplicate"], counts["deliveries"], counts["backlog"]) == (1, 1, 1)


def test_a_redelivered_ingest_changes_nothing(redis, lanes):
    accept(redis, "ann")
    ingest(lanes, 1, "ann")
    ingest(lanes, 1, "ann")
    counts = Counters(redis).snapshot()
    assert (counts["duplicate"], counts["deliveries"]) == (0, 1)
    assert redis.hget(keys.INFLIGHT, "ann") is None


def test_identify_is_promoted_in_front_of_a_track(redis, lanes):
    accept(redis, "ann", 2)
    track, _ = ingest(lanes, 1, "ann")
    identify, _ = ingest(lanes, 2, "ann", action="identify_contact")
    assert lanes.pending_identifies("ann") == 1
    assert lanes.claim("ann", track, "t1").pending_identifies == 1  # the claim tells, no extra round trip
    assert lanes.promote_identify("ann") == identify
    assert lanes.claim("ann", track, "t2").status == "stale"
    assert lanes.claim("ann", identify, "t2").status == "ok"
    assert lanes.finish("ann", identify, "delivered") == track
    assert lanes.pending_identifies("ann") == 0
    assert lanes.claim("ann", track, "t3").pending_identifies == 0


def test_parked_track_comes_back_after_the_next_identify(redis, lanes):
    accept(redis, "ann", 2)
    track, _ = ingest(lanes, 1, "ann")
    second, _ = ingest(lanes, 2, "ann")
    lanes.claim("ann", track, "t1")
    assert lanes.park("ann", track) == second
    assert Counters(redis).snapshot()["parked"] == 1
    lanes.claim("ann", second, "t1")
    lanes.finish("ann", second, "delivered")
    accept(redis, "ann")
    identify, woke = ingest(lanes, 3, "ann", action="identify_contact")
    assert woke == identify
    lanes.claim("ann", identify, "t1")
    assert lanes.finish("ann", identify, "delivered") == track
    assert Counters(redis).snapshot()["parked"] == 0


def test_parked_deliveries_past_the_hold_are_dead_lettered(redis, lanes):
    accept(redis, "ann")
    track, _ = ingest(lanes, 1, "ann")
    lanes.claim("ann", track, "t1")
    lanes.park("ann", track)
    time.sleep(1.1)
    assert lanes.expire_parked() == 1
    counts = Counters(redis).snapshot()
    assert (counts["parked"], counts["dead_lettered"], counts["backlog"]) == (0, 1, 0)
    assert "contact never identified" in redis.hget(keys.DEAD, track)


def test_a_sleeping_lane_refuses_early_claims_and_the_sweep_wakes_it(redis, lanes):
    accept(redis, "ann")
    head, _ = ingest(lanes, 1, "ann")
    lanes.claim("ann", head, "t1")
    lanes.sleep("ann", head, int(time.time() * 1000) + 600, attempt=(1, 1))
    assert lanes.claim("ann", head, "t2").status == "early"
    assert Counters(redis).snapshot()["retrying"] == 1
    assert lanes.sweep() == []
    time.sleep(0.7)
    assert lanes.sweep() == [("ann", head)]
    assert lanes.claim("ann", head, "t2").status == "ok"
    lanes.finish("ann", head, "delivered")
    assert Counters(redis).snapshot()["retrying"] == 0


def test_the_sweep_resends_a_lane_whose_worker_died(redis, lanes):
    accept(redis, "ann")
    head, _ = ingest(lanes, 1, "ann")
    lanes.claim("ann", head, "dead-worker")
    assert lanes.sweep() == []
    time.sleep(1.1)  # the lease (1 s here) runs out without renewal
    assert lanes.sweep() == [("ann", head)]
    assert lanes.claim("ann", head, "t2").status == "ok"


def test_a_lane_with_events_in_flight_at_the_door_is_gated(redis, lanes):
    accept(redis, "ann")
    head, _ = ingest(lanes, 1, "ann")
    accept(redis, "ann")  # another event of ann's accepted, not yet ingested
    assert lanes.claim("ann", head, "t1").status == "gated"
    _, woke = ingest(lanes, 2, "ann")
    assert woke == head


def test_a_dead_letter_replays_at_the_end_of_its_lane(redis, lanes):
    accept(redis, "ann")
    head, _ = ingest(lanes, 1, "ann")
    lanes.claim("ann", head, "t1")
    record = {"person": "ann", "action": "track_event", "event": {}}
    lanes.finish("ann", head, "dead_lettered", {"id": head, "reason": "400"})
    ok, woke = lanes.replay(head, "ann", record, "track_event")
    assert ok and woke and woke.endswith("T")
    counts = Counters(redis).snapshot()
    assert (counts["deliveries"], counts["dead_lettered"], counts["backlog"]) == (2, 1, 1)


def test_unpark_releases_another_lanes_parked_deliveries_and_wakes_it(redis, lanes):
    accept(redis, "anon-1")
    track, _ = ingest(lanes, 1, "anon-1")
    lanes.claim("anon-1", track, "t1")
    assert lanes.park("anon-1", track) is None
    assert lanes.unpark("anon-1") == track
    assert Counters(redis).snapshot()["parked"] == 0
    assert lanes.claim("anon-1", track, "t2").status == "ok"
    assert lanes.unpark("anon-1") is None  # nothing parked: nothing to wake


def test_a_claimed_lease_is_renewed_while_the_lane_is_the_tasks(redis, lanes):
    from worker.store.lease import Lease, Leases

    accept(redis, "ann")
    head, _ = ingest(lanes, 1, "ann")
    lanes.claim("ann", head, "t1")
    before = redis.zscore(keys.LEASES, "ann")
    time.sleep(0.05)
    pipe = redis.pipeline(transaction=False)
    Leases(redis, 1).renew([Lease("ann", "t1"), Lease("ann", "t0")], pipe)  # t0: a task the lane is not with
    assert pipe.execute() == [1, 0]
    assert redis.zscore(keys.LEASES, "ann") > before


def test_finish_and_claim_hands_the_next_head_to_the_same_task(redis, lanes):
    accept(redis, "ann", 3)
    first, _ = ingest(lanes, 1, "ann")
    second, _ = ingest(lanes, 2, "ann", action="identify_contact")
    ingest(lanes, 3, "ann")
    assert lanes.claim("ann", first, "t1").status == "ok"
    head, claim = lanes.finish_and_claim("ann", first, "delivered", "t2")
    assert head == second
    assert (claim.status, claim.record["seq"], claim.attempts, claim.pending_identifies) == ("ok", 2, 0, 1)
    assert lanes.claim("ann", second, "t3").status == "busy"  # leased to t2: no other task runs it
    assert redis.hget(keys.LANE_STATE, "ann") == "t2"  # leased to t2


def test_finish_and_claim_of_the_last_head_lets_the_lane_go_idle(redis, lanes):
    accept(redis, "ann")
    head, _ = ingest(lanes, 1, "ann")
    lanes.claim("ann", head, "t1")
    assert lanes.finish_and_claim("ann", head, "delivered", "t2") == (None, None)
    assert redis.hget(keys.LANE_STATE, "ann") is None


def test_finish_and_claim_reserves_the_claimed_heads_first_call_in_the_same_round_trip(redis, lanes):
    budget = RateBudget(redis, "tok", default_limit=21, window_seconds=1.0)
    accept(redis, "ann", 2)
    first, _ = ingest(lanes, 1, "ann")
    second, _ = ingest(lanes, 2, "ann")
    lanes.claim("ann", first, "t1")
    head, claim = lanes.finish_and_claim("ann", first, "delivered", "t2", reserve=budget.reservation())
    assert head == second
    wait_ms, slot_ms, limit = claim.first_slot
    assert wait_ms == 0 and limit == 21
    assert float(redis.hget(budget.key, "tat")) == pytest.approx(slot_ms + 50)  # the schedule moved one slot
    assert redis.hget(keys.COUNTERS, "api_calls") == "1"
    # The last head claims nothing, and so reserves nothing.
    assert lanes.finish_and_claim("ann", second, "delivered", "t3", reserve=budget.reservation()) == (None, None)
    assert redis.hget(keys.COUNTERS, "api_calls") == "1"
