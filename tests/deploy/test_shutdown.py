"""Graceful shutdown: SIGTERM to a worker finishes the calls in flight and loses nothing.

Celery's *warm shutdown* (SIGTERM) stops taking new tasks and waits for the
running ones.  With the fake Intercom answering slowly (3 s a call), the test
catches a worker with calls in flight, sends it SIGTERM by pid, and checks
that those calls completed (the fake's request log, the worker's log and the
delivered counter), then that a new worker delivers everything else:
backlog 0, delivered == accepted, every contact and event in Intercom.
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest

from fake_intercom import FakeConfig, start_in_subprocess
from producers.enqueue import Enqueuer
from producers.events import validate_event
from tests.processes import celery_worker, child_env, start, stop, tail, wait_until
from worker.celery_app import create_app
from worker.settings import Settings
from worker.store.counters import Counters
from worker.worker_command import beat_command

LATENCY_MS = 3000
PEOPLE = 6
TRACKS = 2


@pytest.fixture
def slow_fake() -> Iterator[tuple]:
    """The fake Intercom answering every call after 3 s, and its one token."""
    token = "shutdown-" + secrets.token_hex(6)
    handle = start_in_subprocess(FakeConfig(tokens=(token,), latency_ms=LATENCY_MS))
    yield handle, token
    handle.stop()


def sample_events() -> list[dict]:
    """An identify then a few tracks for each of a handful of people."""
    now = datetime.now(timezone.utc)
    events = []
    for n in range(PEOPLE):
        person = f"shutdown-user-{n}"
        events.append({"type": "identify", "userId": person, "traits": {"email": f"{person}@example.com"}})
        events += [{"type": "track", "userId": person, "event": f"Step {k}", "timestamp": f"2026-01-01T00:00:0{k}Z"} for k in range(TRACKS)]
    return [validate_event(e, received_at=now) for e in events]


def active_action_tasks(app) -> list[dict]:
    """The intercom.* action tasks running right now on any worker (Celery's inspect)."""
    # limit=1: return as soon as the one worker answers, not after the whole timeout,
    # so that the snapshot is fresh when the test acts on it.
    replies = app.control.inspect(timeout=2.0, limit=1).active() or {}
    return [t for tasks in replies.values() for t in tasks if t["name"] != "intercom.ingest"]


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_warm_shutdown_finishes_in_flight_calls_and_loses_nothing(redis, redis_url: str, slow_fake, tmp_path: Path) -> None:
    fake, token = slow_fake
    env = child_env(REDIS_URL=redis_url, INTERCOM_API_URL=fake.url, INTERCOM_ACCESS_TOKEN=token)
    settings = Settings.from_env(env)
    app = create_app(settings)
    events = sample_events()
    Enqueuer(redis, app, max_backlog=10_000).accept(events)

    beat = start(beat_command(tmp_path / "beat-schedule", loglevel="INFO"), env, tmp_path / "beat.log")
    first_log, second_log = tmp_path / "w1.log", tmp_path / "w2.log"
    first = celery_worker(env, first_log, "w1")
    second = None
    try:
        in_flight = wait_until(lambda: len(active := active_action_tasks(app)) >= 3 and active, 60, "three action tasks in flight")
        time.sleep(0.3)  # well inside the fake's 3 s: the calls are on the wire
        sigterm_at = time.time()
        delivered_before = Counters(redis).snapshot()["delivered"]
        assert stop(first, timeout=60) == 0, tail(first_log)
        shutdown_took = time.time() - sigterm_at

        # The calls in flight at SIGTERM completed, and the worker waited for them.
        on_the_wire = [r for r in fake.requests() if r["time"] <= sigterm_at < r["time"] + r["duration_ms"] / 1000]
        assert on_the_wire, "no call was in flight at SIGTERM"
        assert all(isinstance(r["status"], int) and r["status"] < 300 for r in on_the_wire), on_the_wire
        assert shutdown_took > 0.5, f"the worker exited in {shutdown_took:.2f}s: it did not wait for its calls"
        log = first_log.read_text()
        assert "Warm shutdown" in log
        for task in in_flight:
            assert re.search(rf"{re.escape(task['id'])}\] succeeded", log), f"{task} did not finish:\n{tail(first_log)}"
        assert Counters(redis).snapshot()["delivered"] >= delivered_before + len(in_flight) - 1

        # A new worker delivers the rest; nothing was lost.
        second = celery_worker(env, second_log, "w2")
        counts = wait_until(lambda: (c := Counters(redis).snapshot())["backlog"] == 0 and c, 120, "the backlog to drain")
        assert counts["accepted"] == len(events)
        assert counts["delivered"] == counts["deliveries"] == len(events), counts
        assert counts["dead_lettered"] == 0 and counts["parked"] == 0 and counts["retrying"] == 0, counts
        state = fake.state()
        assert sorted(c["external_id"] for c in state["contacts"]) == sorted(f"shutdown-user-{n}" for n in range(PEOPLE))
        assert state["counts"]["events"] == PEOPLE * TRACKS
        assert state["counts"]["duplicate_events"] == 0
    except Exception:
        print("--- w1\n" + tail(first_log), "--- w2\n" + tail(second_log), sep="\n")
        raise
    finally:
        stop(first)
        stop(second)
        stop(beat)
