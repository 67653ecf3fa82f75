"""A worker's beat, its leases, what it holds, and what the sweep frees at its death: on real Redis.

tests/e2e/test_worker_death.py shows the outcome with real workers, one SIGKILLed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis as redis_lib
from kombu import Connection

from worker import liveness
from worker.broker import TRANSPORT
from worker.liveness import Liveness, holding_transport, reap_silent_workers
from worker.runtime import build_lanes
from worker.settings import Settings
from worker.store import keys
from worker.store.lanes import now_ms
from worker.store.lease import Lease, Leases, new_token

SETTINGS = Settings(lease_seconds=15)


@pytest.fixture
def connection(redis, redis_url) -> Iterator[Connection]:
    """A broker connection whose channels note what this process holds, as a worker's do."""
    with Connection(redis_url, transport=holding_transport(TRANSPORT)) as conn:
        yield conn


def running(redis, person: str, token: str) -> None:
    """``person``'s lane as a claim leaves it: its state the task's token, its lease a deadline."""
    redis.hset(keys.LANE_STATE, person, token)
    redis.zadd(keys.LEASES, {person: now_ms() + 1000})


def test_a_beat_registers_the_worker_and_renews_the_leases_it_holds(redis):
    alive = Liveness.for_settings(redis, SETTINGS)
    ann, bob = Lease("ann", new_token(alive.worker)), Lease("bob", new_token(alive.worker))
    running(redis, "ann", ann.token)
    running(redis, "bob", "someone-else/t")  # bob's lane has moved on to another task
    alive.hold(ann)
    alive.hold(bob)

    assert alive.beat() == 2
    assert redis.zscore(keys.WORKERS, alive.worker) == pytest.approx(now_ms(), abs=1000)
    assert redis.zscore(keys.LEASES, "ann") == pytest.approx(now_ms() + 15_000, abs=1000)
    assert redis.zscore(keys.LEASES, "bob") < now_ms() + 2000  # not this task's lane any more: left alone

    alive.let_go(ann)
    assert alive.beat() == 1


def test_a_delivery_held_longer_than_any_task_can_last_is_no_longer_renewed(redis):
    alive = Liveness.for_settings(redis, SETTINGS)
    stuck = Lease("ann", new_token(alive.worker), taken_at=time.monotonic() - alive.max_hold - 1)
    running(redis, "ann", stuck.token)
    alive.hold(stuck)
    assert alive.beat() == 0
    assert redis.zscore(keys.LEASES, "ann") < now_ms() + 2000


def test_the_process_liveness_beats_every_tick_and_renews_what_a_run_holds(redis):
    # A 0.2-s lease: ticks of 0.05 s.
    alive = liveness.start(redis, Settings(lease_seconds=0.2))
    try:
        lease = Lease("ann", liveness.token())
        running(redis, "ann", lease.token)
        with liveness.holding(lease):
            time.sleep(0.5)  # more than two leases: renewed meanwhile
            assert redis.zscore(keys.LEASES, "ann") > now_ms()
            assert redis.zscore(keys.WORKERS, alive.worker) > now_ms() - 200
        assert alive.beat() == 0  # let go when the run ended
    finally:
        liveness.stop()


def test_a_task_token_names_its_worker():
    assert liveness.token().startswith(liveness.worker_id() + "/")
    assert liveness.token() != liveness.token()


def test_a_taken_message_is_noted_as_held_until_acknowledged(redis, connection):
    queue = connection.SimpleQueue("liveness-test")
    queue.put({"n": 1})
    message = queue.get(timeout=2)
    held = redis.smembers(keys.held(liveness.worker_id()))
    assert held == {message.delivery_tag}
    assert redis.hexists("unacked", message.delivery_tag)

    message.ack()
    assert redis.smembers(keys.held(liveness.worker_id())) == set()
    assert not redis.hexists("unacked", message.delivery_tag)
    queue.close()


def test_the_sweep_frees_what_a_silent_worker_held_and_nothing_of_a_live_one(redis, connection):
    lanes = build_lanes(redis, SETTINGS)
    queue = connection.SimpleQueue("liveness-test")
    queue.put({"n": 1})
    taken = queue.get(timeout=2)  # taken by this process, whose beat we make old: it "died"
    dead, live = liveness.worker_id(), "other-host.1.abc"
    redis.zadd(keys.WORKERS, {dead: now_ms() - 11_000, live: now_ms()})
    redis.zadd(keys.lane("ann"), {"1:0i": 1})
    redis.zadd(keys.lane("bob"), {"2:0i": 2})
    running(redis, "ann", new_token(dead))
    running(redis, "bob", new_token(live))

    (reaped,) = reap_silent_workers(connection, redis, SETTINGS)

    assert (reaped.worker, reaped.restored, reaped.leases_ended) == (dead, 1, 1)
    assert redis.zrange(keys.WORKERS, 0, -1) == [live]
    assert not redis.exists(keys.held(dead))
    again = queue.get(timeout=2)  # back on the queue at once, not after the visibility timeout
    assert again.payload == taken.payload == {"n": 1}
    again.ack()
    assert lanes.sweep() == [("ann", "1:0i")]  # the dead worker's lane is sent again; bob's stays with its worker
    assert reap_silent_workers(connection, redis, SETTINGS) == []  # reaped once
    queue.close()


def test_a_sweep_that_has_not_reached_redis_steadily_judges_no_one(redis, connection):
    # Right after Redis was away, every worker looks silent until its next tick.
    redis.zadd(keys.WORKERS, {"other-host.1.abc": now_ms() - 60_000})
    liveness.start(redis, SETTINGS)  # this process has beaten once: steady for ~0 s
    try:
        assert reap_silent_workers(connection, redis, SETTINGS) == []
        assert "other-host.1.abc" in [r.worker for r in reap_silent_workers(connection, redis, SETTINGS, silence=0)]
    finally:
        liveness.stop()


def test_a_clean_stop_leaves_nothing_for_the_sweep_to_restore(redis, connection):
    liveness.start(redis, SETTINGS)
    liveness.stop()
    redis.zadd(keys.WORKERS, {liveness.worker_id(): now_ms() - 11_000})
    (reaped,) = reap_silent_workers(connection, redis, SETTINGS)
    assert (reaped.restored, reaped.leases_ended) == (0, 0)


def test_ending_a_workers_leases_finds_a_lane_however_recently_claimed(redis):
    leases = Leases(redis, 15)
    for n in range(2500):  # more than one scan page
        running(redis, f"p{n}", new_token("w1" if n % 2 else "w2"))
    assert leases.end_all_of("w1") == 1250
    assert redis.zcount(keys.LEASES, 0, 0) == 1250
    assert leases.end_all_of("w") == 0  # a worker id is matched whole, never as a prefix of another


def flaky_pipes(monkeypatch, qos, failures: int) -> None:
    """The QoS's next ``failures`` pipes fail as when Redis goes away between the BRPOP and the record."""
    real, left = qos.pipe_or_acquire, [failures]

    @contextmanager
    def pipe_or_acquire(pipe=None, client=None):
        with real(pipe, client) as p:
            if left[0]:
                left[0] -= 1
                raise redis_lib.ConnectionError("Connection closed by server.")
            yield p

    monkeypatch.setattr(qos, "pipe_or_acquire", pipe_or_acquire)


def test_a_message_taken_as_redis_goes_away_is_recorded_once_it_answers_not_lost(redis, connection, monkeypatch):
    queue = connection.SimpleQueue("liveness-away")
    queue.put({"n": 1})
    flaky_pipes(monkeypatch, queue.channel.qos, failures=2)
    message = queue.get(timeout=5)  # off the queue; kombu's append raised here and the message was gone
    assert redis.hexists("unacked", message.delivery_tag)
    assert redis.smembers(keys.held(liveness.worker_id())) == {message.delivery_tag}
    message.ack()
    queue.close()


def test_a_message_that_cannot_be_recorded_in_time_is_said_lost(redis, connection, monkeypatch, caplog):
    monkeypatch.setattr(liveness, "APPEND_PATIENCE_SECONDS", 0.0)
    queue = connection.SimpleQueue("liveness-away")
    queue.put({"n": 1})
    flaky_pipes(monkeypatch, queue.channel.qos, failures=100)
    with pytest.raises(redis_lib.ConnectionError):
        queue.get(timeout=5)
    assert "NOT recorded" in caplog.text
    queue.close()
