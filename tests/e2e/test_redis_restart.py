"""Redis SIGKILLed and restarted while events flow: the workers and beat carry on, nothing is lost.

A Redis of the test's own (append-only file, fsync on every write, so that
what Redis acknowledged survives its death) is killed twice while a producer
keeps accepting events and two workers deliver them.  Every event whose
acceptance returned is delivered, once; an acceptance that raised is retried
by the producer, as a Segment client retries a 503.  This test exists so that
an upgrade of Celery or kombu that brings back a crash in their reconnect
fails CI (Celery 5.7.0's consumer died on the first restart).
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib

from producers.enqueue import Enqueuer
from producers.events import validate_event
from tests.e2e.harness import Fleet, relay_env
from tests.e2e.redis_server import KillableRedis
from tests.processes import wait_until
from worker.broker import publisher_app
from worker.settings import Settings
from worker.store.counters import Counters

pytestmark = pytest.mark.e2e


@pytest.fixture
def killable_redis(tmp_path: Path) -> Iterator[KillableRedis]:
    server = KillableRedis(tmp_path / "redis")
    server.directory.mkdir()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.directory, ignore_errors=True)


class Producer(threading.Thread):
    """Accepts one identify and one track per person, retrying what Redis refused, until told to stop."""

    def __init__(self, url: str, people: int) -> None:
        super().__init__(daemon=True)
        client = redis_lib.Redis.from_url(url, decode_responses=True, socket_timeout=2, socket_connect_timeout=1)
        self.enqueuer = Enqueuer(client, publisher_app(Settings(redis_url=url)), max_backlog=10**9)
        self.pending = [validate_event(e) for n in range(people) for e in person_events(n)]
        self.accepted: list[dict] = []
        self.refused_tries = 0

    def run(self) -> None:
        while self.pending:
            batch = self.pending[:20]
            try:
                self.enqueuer.accept(batch)
            except Exception:  # noqa: BLE001 - Redis is down: try again, as a client retries a 503
                self.refused_tries += 1
                time.sleep(0.2)
                continue
            self.accepted += batch
            del self.pending[:20]
            time.sleep(0.3)  # ~70 events/s: still accepting through both outages


def wait_for_flow(producer: Producer, events: int = 60) -> None:
    """Wait until ``events`` more are accepted: events are flowing when Redis is killed."""
    target = len(producer.accepted) + events
    wait_until(lambda: len(producer.accepted) >= target, 60, "events to be accepted before Redis is killed")


def person_events(n: int) -> list[dict]:
    user, stamp = f"r{n}", f"2026-11-01T10:{n // 60:02d}:{n % 60:02d}Z"
    return [
        {"type": "identify", "userId": user, "messageId": f"{user}-i", "timestamp": stamp, "traits": {"email": f"{user}@example.com"}},
        {"type": "track", "userId": user, "messageId": f"{user}-t", "timestamp": stamp, "event": "Restarted"},
    ]


def test_workers_and_beat_survive_redis_being_killed_twice_and_lose_nothing(killable_redis, fake_intercom_factory, tmp_path):
    fake = fake_intercom_factory()
    fleet = Fleet(relay_env(killable_redis.url, fake.url), tmp_path)
    try:
        workers = [fleet.worker("w1", concurrency=8), fleet.worker("w2", concurrency=8)]
        beat = fleet.beat()
        producer = Producer(killable_redis.url, people=400)
        producer.start()
        for down in (2, 15):  # a blip, and an outage long enough for the consumer to give up its connection
            wait_for_flow(producer)
            killable_redis.kill()
            time.sleep(down)
            killable_redis.start()
        producer.join(timeout=120)
        assert not producer.is_alive(), "the producer could not accept everything"
        assert producer.refused_tries > 0, "the producer finished before Redis was killed: nothing was tried during an outage"
        counts = wait_for_backlog(killable_redis.url, fleet)
        assert [p.poll() for p in [*workers, beat]] == [None, None, None], f"a process died:\n{fleet.log_tail()}"
    finally:
        fleet.stop()
    state = fake.state()
    tracked = {c["external_id"]: c["event_count"] for c in state["contacts"] if not c["merged"] and not c["deleted"]}
    assert tracked == {f"r{n}": 1 for n in range(400)}  # every accepted event, once
    assert (counts["accepted"], counts["delivered"], counts["dead_lettered"]) == (800, 800, 0)
    print(f"\nredis killed twice: {producer.refused_tries} refused acceptances retried, {fake.stats()['total']} calls")


def wait_for_backlog(url: str, fleet: Fleet, timeout: float = 120) -> dict:
    redis = redis_lib.Redis.from_url(url, decode_responses=True)
    deadline = time.monotonic() + timeout
    counts: dict = {}
    while time.monotonic() < deadline:
        try:
            counts = Counters(redis).snapshot()
        except redis_lib.RedisError:  # a Redis busy writing its append-only file on a loaded disk: asked again
            counts = {}
        if counts.get("accepted") == 800 and counts.get("backlog") == 0:
            return counts
        time.sleep(0.5)
    raise AssertionError(f"not delivered after {timeout}s: {counts}\n{fleet.log_tail()}")
