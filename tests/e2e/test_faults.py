"""The whole stack under faults, as an operator would see them, with real processes only.

Clients send Segment batches over HTTP to the ingestion server (a real
``intercom-relay serve`` process), two celery workers and beat deliver them
to the fake Intercom, and the test breaks things while events flow:

1. Redis (append-only, ``appendfsync everysec``) is SIGKILLed and started again, twice;
2. the ingestion server is SIGKILLed and started again;
3. once every event has been answered 200, a worker is SIGKILLed while it is
   mid-call, with the production defaults for its lease and dispatch times.

The clients behave as Segment's do: anything but a 200 (a 503, a reset
connection) is sent again, with the same messageIds.  The test then checks
that every event answered 200 reached Intercom exactly once, that no process
but the killed ones died, and how long the killed worker's people waited.
The figures are printed (``pytest -s``) for the operations docs.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis as redis_lib

from demo.embedded_redis import free_port
from tests.e2e.harness import Fleet, relay_env
from tests.e2e.redis_server import KillableRedis
from tests.processes import stop, wait_until
from worker.store import keys
from worker.store.counters import Counters

pytestmark = pytest.mark.e2e

PEOPLE = 400
TRACKS_PER_PERSON = 2
BATCH = 10
WRITE_KEY = secrets.token_urlsafe(32)


@dataclass
class Door:
    """``intercom-relay serve`` as a child process, killable and restartable on its port."""

    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [sys.executable, "-c", "from cli.main import main; main()", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._up, 30, f"the ingestion server to start (see {self.log})")

    def _up(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()


class Sender(threading.Thread):
    """One client: sends its people's events in order, a batch at a time, each until it is answered 200."""

    def __init__(self, url: str, events: list[dict], log: list[tuple[float, float, str]]) -> None:
        super().__init__(daemon=True)
        self.url, self.pending, self.log = url, events, log
        self.accepted: list[dict] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.url, auth=(WRITE_KEY, ""), timeout=10) as client:
            while self.pending:
                batch, sent_at = self.pending[:BATCH], time.monotonic()
                answer = self._send(client, batch)
                self.log.append((sent_at, time.monotonic(), answer))
                if answer == "200":
                    self.accepted += batch
                    del self.pending[:BATCH]
                    time.sleep(0.3)  # ~60 events/s from two clients: events flow through every fault
                else:
                    time.sleep(0.2)  # a Segment client backs off and sends the same batch again

    def _send(self, client: httpx.Client, batch: list[dict]) -> str:
        try:
            response = client.post("/v1/batch", json={"batch": batch})
        except httpx.TransportError as exc:
            return type(exc).__name__
        if response.status_code == 200:
            assert not response.json().get("refused"), response.text
        return str(response.status_code)


def person_events(n: int) -> list[dict]:
    """An identify and its tracks, a second apart: Intercom takes a second event of one name at one second for a repeat."""
    user, start = f"f{n}", datetime(2026, 11, 1, 10, tzinfo=UTC) + timedelta(minutes=n)
    traits = {"email": f"{user}@example.com"}
    identify = {"type": "identify", "userId": user, "messageId": f"{user}-i", "timestamp": start.isoformat(), "traits": traits}
    tracks = [
        {
            "type": "track",
            "userId": user,
            "messageId": f"{user}-t{k}",
            "timestamp": (start + timedelta(seconds=k + 1)).isoformat(),
            "event": "Survived",
        }
        for k in range(TRACKS_PER_PERSON)
    ]
    return [identify, *tracks]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[KillableRedis]:
    server = KillableRedis(tmp_path / "redis", appendfsync="everysec")
    server.directory.mkdir()
    server.start()
    yield server
    server.stop()


def test_every_event_answered_200_is_delivered_once_through_redis_server_and_worker_deaths(redis_server, fake_intercom_factory, tmp_path):
    fake = fake_intercom_factory(latency_ms=150)  # workers are mid-call whenever one is killed
    # LEASE_SECONDS and DISPATCH_SECONDS empty: the production defaults, which decide how long a
    # dead worker's people wait.
    env = relay_env(redis_server.url, fake.url, LEASE_SECONDS="", DISPATCH_SECONDS="", WRITE_KEYS=WRITE_KEY)
    fleet = Fleet(env, tmp_path)
    door = Door(env, tmp_path / "door.log")
    answers: list[tuple[float, float, str]] = []  # (sent, answered, status or error)
    windows: dict[str, tuple[float, float]] = {}
    try:
        w1, w2 = fleet.worker("w1", concurrency=8), fleet.worker("w2", concurrency=8)
        beat = fleet.beat()
        door.start()
        people = [person_events(n) for n in range(PEOPLE)]
        senders = [Sender(door.url, [e for p in people[i::2] for e in p], answers) for i in range(2)]
        for sender in senders:
            sender.start()

        for name, down in (("redis killed (2 s)", 2.0), ("redis killed (6 s)", 6.0)):
            events_flow(answers)
            redis_server.kill()
            dead_from = time.monotonic()
            time.sleep(down)  # how long the outage lasts
            windows[name] = (dead_from, time.monotonic())
            redis_server.start()
        events_flow(answers)
        door.kill()
        dead_from = time.monotonic()
        time.sleep(1)
        windows["server killed"] = (dead_from, time.monotonic())
        door.start()

        for sender in senders:
            sender.join(timeout=180)
        assert not any(s.is_alive() for s in senders), "the clients could not send everything"
        client = redis_lib.Redis.from_url(redis_server.url, decode_responses=True)
        assert Counters(client).snapshot()["backlog"] > 0, "nothing left to deliver when the worker is killed: slow the fake down"
        held = {str(person) for person in client.zrange(keys.LEASES, 0, -1)}  # the people whose lanes a worker is on now
        killed_at = time.monotonic()
        fleet.kill(w1)
        resumed_after = wait_for_lanes(client, held, killed_at, fleet)
        drained_after = wait_for_backlog(client, killed_at, fleet)
        assert [p.poll() for p in (w2, beat)] == [None, None], f"a process died:\n{fleet.log_tail()}"
        assert door.process is not None and door.process.poll() is None, f"the ingestion server died; see {door.log}"
        counts = Counters(client).snapshot()
    finally:
        stop(door.process)
        fleet.stop()

    accepted = [e for s in senders for e in s.accepted]
    state = fake.state()
    contacts = [c for c in state["contacts"] if not c["merged"] and not c["deleted"]]
    tracked = {c["external_id"]: c["event_count"] for c in contacts}
    assert len(accepted) == PEOPLE * (1 + TRACKS_PER_PERSON)
    assert tracked == {f"f{n}": TRACKS_PER_PERSON for n in range(PEOPLE)}, "an event answered 200 was lost or delivered twice"
    assert len(contacts) == PEOPLE
    assert counts["dead_lettered"] == 0

    # A request belongs to a fault's window when it was sent and answered while the process was dead
    # (one answered just after the kill may have been stored just before it).
    during = {name: Counter(a for s, t, a in answers if lo < s and t < hi) for name, (lo, hi) in windows.items()}
    print(f"\nfaults: {len(accepted)} events answered 200, {len(answers)} requests, answers {dict(Counter(a for _, _, a in answers))}")
    for name, seen in during.items():
        print(f"  while {name}: {dict(seen)}")
    print(f"  lost 0, duplicates in Intercom 0, duplicates caught at ingest {counts.get('duplicate', 0)}")
    print(f"  worker SIGKILLed while {len(held)} lanes were held: those people delivered again after {resumed_after:.1f} s")
    print(f"  backlog empty {drained_after:.1f} s after the worker's death")
    assert not any(seen["200"] for name, seen in during.items() if name.startswith("redis")), "a 200 while Redis could not store"


def events_flow(answers: list[tuple[float, float, str]], batches: int = 4) -> None:
    """Wait until ``batches`` more requests have been answered 200: events are flowing when the next fault strikes."""
    seen = sum(1 for _, _, a in answers if a == "200") + batches
    wait_until(lambda: sum(1 for _, _, a in answers if a == "200") >= seen, 60, "events to be answered 200 before the fault")


def wait_for_lanes(client: redis_lib.Redis, people: set[str], since: float, fleet: Fleet, timeout: float = 180) -> float:
    """Seconds from ``since`` until none of ``people`` has anything left in their lane."""
    deadline = since + timeout
    while time.monotonic() < deadline:
        pipe = client.pipeline(transaction=False)
        for person in people:
            pipe.zcard(keys.lane(person))
        try:
            left = any(pipe.execute())
        except redis_lib.RedisError:  # a Redis busy writing its append-only file on a loaded disk: asked again
            left = True
        if not left:
            return time.monotonic() - since
        time.sleep(0.2)
    raise AssertionError(f"the killed worker's people were not delivered within {timeout} s\n{fleet.log_tail()}")


def wait_for_backlog(client: redis_lib.Redis, since: float, fleet: Fleet, timeout: float = 180) -> float:
    deadline = since + timeout
    counts: dict = {}
    while time.monotonic() < deadline:
        try:
            counts = Counters(client).snapshot()
        except redis_lib.RedisError:  # asked again
            counts = {}
        if counts.get("backlog") == 0:
            return time.monotonic() - since
        time.sleep(0.2)
    raise AssertionError(f"not delivered after {timeout} s: {counts}\n{fleet.log_tail()}")
