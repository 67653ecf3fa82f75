"""The in-flight guard against the suite's real Redis: never below zero, and repaired from what is on its way."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from worker.broker import INGEST_TASK, publisher_app
from worker.runtime import build_lanes
from worker.settings import Settings
from worker.store import keys
from worker.store.counters import Counters
from worker.store.inflight import BrokerKeys, InflightGuard, broker_keys

T0 = 1_700_000_000_000
LATER = T0 + 61_000  # past STALE_SECONDS


@pytest.fixture
def lanes(redis):
    return build_lanes(redis, Settings(lease_seconds=1, dispatch_seconds=1, park_hold=1))


@pytest.fixture
def guard(redis, lanes):
    return InflightGuard(redis, lanes)


@pytest.fixture
def queue(redis):
    name = f"test-inflight-{uuid.uuid4().hex}"
    yield name
    redis.delete(name)


@pytest.fixture
def broker(queue):
    return BrokerKeys(queues=(queue,), unacked="unacked")


@pytest.fixture
def woken():
    return []


def wake_into(woken: list):
    return lambda person, head: woken.append((person, head))


def envelope(seq: int, person: str) -> dict:
    return {"seq": seq, "event": {"type": "track", "event": "e", "userId": person, "messageId": f"m{seq}"}}


def publish(redis_url: str, queue: str, *envelopes: dict) -> None:
    """An ingest message as the door publishes it."""
    publisher_app(Settings(redis_url=redis_url)).send_task(INGEST_TASK, args=[list(envelopes)], queue=queue)


def put_in_lane(lanes, seq: int, person: str) -> str:
    """A delivery waiting in the person's lane (its lane held by the in-flight count)."""
    did = lanes.delivery_id(seq, 0, "track_event")
    lanes.ingest(seq, person, f"m{seq}", [(did, {"person": person, "seq": seq, "action": "track_event", "mapping": "m", "event": {}})])
    return did


def test_an_ingest_never_takes_the_count_below_zero(redis, lanes):
    put_in_lane(lanes, 1, "ann")  # nothing counted for ann: an ingest before the door's count
    assert redis.hget(keys.INFLIGHT, "ann") is None
    redis.hset(keys.INFLIGHT, "bob", 1)
    put_in_lane(lanes, 2, "bob")
    put_in_lane(lanes, 3, "bob")
    assert not redis.hexists(keys.INFLIGHT, "bob")


def test_a_stale_count_with_no_message_on_its_way_is_reset_and_its_lane_woken(redis, lanes, guard, broker, woken):
    redis.hset(keys.INFLIGHT, "ann", 2)
    head = put_in_lane(lanes, 5, "ann")  # its own ingest took one: 1 left, for a message that is gone
    assert guard.repair(broker, wake_into(woken), now_ms=T0) == []  # first seen now: not stale yet
    repairs = guard.repair(broker, wake_into(woken), now_ms=LATER)
    assert [(r.person, r.was, r.now) for r in repairs] == [("ann", 1, 0)]
    assert not redis.hexists(keys.INFLIGHT, "ann")
    assert woken == [("ann", head)]
    assert Counters(redis).snapshot()["inflight_repaired"] == 1
    assert guard.repair(broker, wake_into(woken), now_ms=LATER + 61_000) == []  # nothing left to repair


def test_a_count_matching_the_messages_in_the_queue_is_kept(redis, redis_url, guard, broker, queue, woken):
    publish(redis_url, queue, envelope(1, "ann"), envelope(2, "bob"))
    publish(redis_url, queue, envelope(3, "ann"))
    redis.hset(keys.INFLIGHT, mapping={"ann": 2, "bob": 1})
    guard.repair(broker, wake_into(woken), now_ms=T0)
    assert guard.repair(broker, wake_into(woken), now_ms=LATER) == []
    assert redis.hgetall(keys.INFLIGHT) == {"ann": "2", "bob": "1"}
    assert Counters(redis).snapshot()["inflight_repaired"] == 0


def test_a_count_above_what_is_on_its_way_is_set_to_it(redis, redis_url, guard, broker, queue, woken):
    publish(redis_url, queue, envelope(1, "ann"))
    redis.hset(keys.INFLIGHT, "ann", 3)
    guard.repair(broker, wake_into(woken), now_ms=T0)
    repairs = guard.repair(broker, wake_into(woken), now_ms=LATER)
    assert [(r.was, r.now) for r in repairs] == [(3, 1)]
    assert redis.hget(keys.INFLIGHT, "ann") == "1"
    assert woken == []  # still one on its way: the lane keeps waiting


def test_a_negative_count_is_set_to_zero_at_once(redis, guard, broker, woken):
    redis.hset(keys.INFLIGHT, "ann", -3)
    repairs = guard.repair(broker, wake_into(woken), now_ms=T0)
    assert [(r.person, r.was, r.now) for r in repairs] == [("ann", -3, 0)]
    assert not redis.hexists(keys.INFLIGHT, "ann")


def test_a_message_taken_by_a_worker_and_not_acknowledged_is_on_its_way(redis, redis_url, guard, queue, woken):
    publish(redis_url, queue, envelope(1, "ann"))
    app = publisher_app(Settings(redis_url=redis_url))
    with app.connection_for_write() as connection:
        channel: Any = connection.default_channel  # kombu's Redis channel
        assert channel.basic_get(queue, no_ack=False)  # a worker took it, and is still at it
        assert redis.llen(queue) == 0 and redis.hlen(channel.unacked_key) == 1
        redis.hset(keys.INFLIGHT, "ann", 1)
        broker = broker_keys(connection, queue)
        assert queue in broker.queues
        guard.repair(broker, wake_into(woken), now_ms=T0)
        assert guard.repair(broker, wake_into(woken), now_ms=LATER) == []
        assert redis.hget(keys.INFLIGHT, "ann") == "1"
        channel.qos.restore_unacked()


def test_an_event_already_in_its_lane_is_not_on_its_way(redis, redis_url, lanes, guard, broker, queue, woken):
    # Its worker ingested it and died before acknowledging: the message is back, the event is in.
    publish(redis_url, queue, envelope(1, "ann"), envelope(2, "ann"))
    redis.hset(keys.INFLIGHT, "ann", 2)
    put_in_lane(lanes, 1, "ann")  # 1 left
    guard.repair(broker, wake_into(woken), now_ms=T0)
    repairs = guard.repair(broker, wake_into(woken), now_ms=LATER)
    assert repairs == []  # seq 2 is on its way, seq 1 is in: 1 is right
    assert redis.hget(keys.INFLIGHT, "ann") == "1"


def test_the_queue_is_not_read_while_no_count_is_stale(redis, guard, broker, woken, monkeypatch):
    def no_reading(_broker):
        raise AssertionError("the queue was read")

    monkeypatch.setattr(guard, "_messages", no_reading)
    redis.hset(keys.INFLIGHT, "ann", 1)
    guard.repair(broker, wake_into(woken), now_ms=T0)
    redis.hset(keys.INFLIGHT, "ann", 2)  # it moved: seen anew
    assert guard.repair(broker, wake_into(woken), now_ms=LATER) == []
    assert redis.hget(keys.INFLIGHT_SEEN, "ann") == f"2|{LATER}"


def test_a_count_that_moved_meanwhile_is_left_alone(redis, guard, broker, woken, monkeypatch):
    redis.hset(keys.INFLIGHT, "ann", 1)
    guard.repair(broker, wake_into(woken), now_ms=T0)
    read = guard._messages

    def the_door_accepts_meanwhile(given):
        redis.hincrby(keys.INFLIGHT, "ann", 1)
        return read(given)

    monkeypatch.setattr(guard, "_messages", the_door_accepts_meanwhile)
    assert guard.repair(broker, wake_into(woken), now_ms=LATER) == []
    assert redis.hget(keys.INFLIGHT, "ann") == "3"  # one per read of the queue; none taken back


def test_the_fleet_checks_once_per_interval(redis, guard, broker, woken):
    redis.hset(keys.INFLIGHT, "ann", -1)
    assert len(guard.repair_if_due(broker, wake_into(woken))) == 1
    redis.hset(keys.INFLIGHT, "ann", -1)
    assert guard.repair_if_due(broker, wake_into(woken)) == []  # another sweep of the window
    assert 0 < redis.pttl(keys.INFLIGHT_CHECK) <= 30_000


def test_a_queue_too_long_to_read_is_not_read(redis, redis_url, lanes, broker, queue, woken):
    guard = InflightGuard(redis, lanes, max_scanned=1)
    publish(redis_url, queue, envelope(1, "bob"))
    publish(redis_url, queue, envelope(2, "bob"))
    redis.hset(keys.INFLIGHT, "ann", 1)
    guard.repair(broker, wake_into(woken), now_ms=T0)
    assert guard.repair(broker, wake_into(woken), now_ms=LATER) == []
    assert redis.hget(keys.INFLIGHT, "ann") == "1"  # recounted once the queue is shorter
