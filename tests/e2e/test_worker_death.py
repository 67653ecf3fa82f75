"""A SIGKILLed worker's people resume within seconds, and nothing reaches Intercom twice.

Two workers and beat, with the production LEASE_SECONDS and DISPATCH_SECONDS
(the e2e settings shorten them; here they must not hide what a death costs).
Intercom answers slowly, so that a worker is always mid-call, and one worker
takes more messages than it has threads, so that it also holds messages it
has not started (as a worker does with a larger prefetch, or with a retry's
countdown).  That worker is SIGKILLed; the test measures, for each of its
people, the seconds until a live worker closed the lane head the dead one
held, and checks afterwards that every event reached Intercom exactly once.
The figures are printed (``pytest -s``).
"""

from __future__ import annotations

import base64
import json
import socket
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis as redis_lib

from tests.e2e.harness import Fleet, accept, relay_env, wait_until_finished
from tests.processes import wait_until
from worker.liveness import SILENCE_SECONDS
from worker.store import keys
from worker.store.counters import Counters
from worker.task_names import INGEST_TASK, SWEEP_TASK

pytestmark = pytest.mark.e2e

PEOPLE = 24
TRACKS = 4
LATENCY_MS = 3000
#: How long the test waits for the dead worker's people: far below the broker's visibility timeout
#: (10 minutes), so that their resuming at all shows the sweep freed them, not kombu's timeout.
#: How fast they resume is a figure printed here, not an assertion (bench/ measures speed).
RESUME_WAIT_SECONDS = 120.0


def identify(n: int) -> dict:
    user = f"d{n}"
    return {"type": "identify", "userId": user, "messageId": f"{user}-i", "traits": {"email": f"{user}@example.com"}}


def tracks(n: int) -> list[dict]:
    """A second apart: Intercom takes a second event of one name at one second for a repeat."""
    start = datetime(2026, 11, 1, 10, tzinfo=UTC) + timedelta(minutes=n)
    user = f"d{n}"
    return [
        {
            "type": "track",
            "userId": user,
            "messageId": f"{user}-t{k}",
            "timestamp": (start + timedelta(seconds=k)).isoformat(),
            "event": "Kept",
        }
        for k in range(TRACKS)
    ]


def worker_id_of(redis, pid: int) -> str | None:
    """The id a worker process beats with (worker/liveness.py: host.pid.random)."""
    prefix = f"{socket.gethostname()}.{pid}."
    return next((w for w in redis.zrange(keys.WORKERS, 0, -1) if w.startswith(prefix)), None)


def closed(redis, person: str, head: str) -> bool:
    """Whether ``head`` left ``person``'s lane (False while Redis is too busy to answer: asked again)."""
    try:
        return redis.zscore(keys.lane(person), head) is None
    except redis_lib.RedisError:
        return False


def holdings(redis, worker: str) -> tuple[set[str], set[str]]:
    """(people whose lane the worker's tasks run, people of the delivery messages it holds unstarted or running)."""
    running = {person for person, state in redis.hscan_iter(keys.LANE_STATE) if state.startswith(worker + "/")}
    held = set()
    for tag in redis.smembers(keys.held(worker)):
        raw = redis.hget("unacked", tag)
        if raw:
            message = json.loads(raw)[0]
            if message["headers"]["task"] not in (INGEST_TASK, SWEEP_TASK):  # a delivery: (person, delivery)
                args = json.loads(base64.b64decode(message["body"]))[0]
                held.add(args[0])
    return running, held


def test_a_killed_workers_people_resume_before_the_visibility_timeout_and_nothing_is_delivered_twice(
    redis, redis_url, fake_intercom_factory, tmp_path
):
    fake = fake_intercom_factory()
    # LEASE_SECONDS and DISPATCH_SECONDS empty: the production defaults.
    fleet = Fleet(relay_env(redis_url, fake.url, LEASE_SECONDS="", DISPATCH_SECONDS=""), tmp_path)
    try:
        # The worker to kill: 4 threads, up to 16 messages taken (4 running, 12 waiting for a thread).
        doomed = fleet.worker("w1", concurrency=4, extra=["--prefetch-multiplier", "4"])
        fleet.worker("w2", concurrency=32)
        fleet.beat()
        accept(redis_url, [identify(n) for n in range(PEOPLE)])
        wait_until_finished(redis, fleet, timeout=60)  # everyone is a known contact: a track is one call

        fake.configure(latency_ms=LATENCY_MS)
        accept(redis_url, [e for n in range(PEOPLE) for e in tracks(n)])
        worker = None

        def doomed_holds_running_and_waiting() -> bool:
            nonlocal worker
            worker = worker or worker_id_of(redis, doomed.pid)
            if worker is None:
                return False
            running, held = holdings(redis, worker)
            return bool(running) and bool(held - running)

        wait_until(doomed_holds_running_and_waiting, 30, "the worker to kill to hold running and waiting deliveries")
        assert worker is not None
        fleet.kill(doomed)
        killed_at = time.monotonic()
        # What it held, as Redis kept it: a dead worker changes nothing any more.
        running, held = holdings(redis, worker)
        people = running | held
        heads = {person: redis.zrange(keys.lane(person), 0, 0)[0] for person in people}

        resumed: dict[str, float] = {}
        while len(resumed) < len(people) and time.monotonic() - killed_at < RESUME_WAIT_SECONDS:
            for person, head in heads.items():
                if person not in resumed and closed(redis, person, head):
                    resumed[person] = time.monotonic() - killed_at  # closed, by a live worker
            time.sleep(0.1)
        counts = wait_until_finished(redis, fleet, timeout=120)
    finally:
        fleet.stop()

    state = fake.state()
    contacts = [c for c in state["contacts"] if not c["merged"] and not c["deleted"]]
    event_calls = len(fake.requests(method="POST", path="/events", limit=100_000))
    slowest = max(resumed.values(), default=float("nan"))
    print(
        f"\nworker SIGKILLed while running {len(running)} deliveries and holding {len(held - running)} more unstarted "
        f"({len(people)} people; calls take {LATENCY_MS / 1000:g} s; a worker is taken for dead after {SILENCE_SECONDS:g} s of silence)"
    )
    print(
        f"  their next events delivered after {min(resumed.values(), default=float('nan')):.1f}-{slowest:.1f} s (all {len(resumed)} people)"
    )
    print(f"  {PEOPLE * TRACKS} tracks: {event_calls} POST /events calls, {Counters(redis).snapshot()['delivered'] - PEOPLE} delivered")
    assert set(resumed) == people, f"not resumed within {RESUME_WAIT_SECONDS:g} s: {sorted(people - set(resumed))}\n{fleet.log_tail()}"
    assert {c["external_id"]: c["event_count"] for c in contacts} == {f"d{n}": TRACKS for n in range(PEOPLE)}, (
        "an event lost or delivered twice"
    )
    assert len(contacts) == PEOPLE
    assert counts["dead_lettered"] == 0
