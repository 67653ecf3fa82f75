"""What a 200 promises: ACCEPT_DURABILITY=replica waits for a replica; a retried request is delivered once.

A master and its replica are redis-servers of the test's own.  With the
replica connected the door answers 200 and the replica holds the events; with
it stopped the door answers 503 ``not_replicated`` within the timeout, the
events stored on the master.  The client's retry of such a request (or of any
503 whose write landed) is then delivered once, by messageId.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Iterator

import httpx
import pytest
import redis as redis_lib

from demo.embedded_redis import EmbeddedRedis
from producers.enqueue import Enqueuer, NotReplicated
from producers.events import validate_event
from producers.http import create_app
from tests.fixtures_fake import DEFAULT_TOKEN
from tests.producers import WRITE_KEY, LiveServer, make_event, queued_envelopes
from worker import runtime as runtime_module
from worker.broker import publisher_app
from worker.delivery import deliver
from worker.runtime import Runtime
from worker.settings import Settings, SettingsError
from worker.store import keys
from worker.tasks import ingest

TIMEOUT_MS = 500


@dataclass
class Pair:
    master: EmbeddedRedis
    replica: EmbeddedRedis
    client: redis_lib.Redis

    def replica_client(self) -> redis_lib.Redis:
        return redis_lib.Redis.from_url(self.replica.url, decode_responses=True)


@pytest.fixture
def pair() -> Iterator[Pair]:
    """A master and a replica of it (REPLICAOF, as --replicaof at start), on free ports."""
    master = EmbeddedRedis().start()
    replica = EmbeddedRedis().start()
    client = redis_lib.Redis.from_url(master.url, decode_responses=True)
    try:
        client.config_set("repl-diskless-sync-delay", 0)  # sync at once, not after Redis's 5 s
        redis_lib.Redis.from_url(replica.url).execute_command("REPLICAOF", "127.0.0.1", str(master.port))
        wait_until(lambda: replicated(client, replica), "the replica did not sync")
        yield Pair(master, replica, client)
    finally:
        client.close()
        replica.stop()
        master.stop()


def replicated(client: redis_lib.Redis, replica: EmbeddedRedis) -> bool:
    """Whether the replica is past its first sync and a write made now reaches it.

    A write made during the sync reaches it in the snapshot, not in the stream of
    writes; the master calls it online before it streams (it starts on the
    replica's first acknowledgement, within a second).
    """
    if client.info("replication").get("slave0", {}).get("state") != "online":
        return False
    token = str(time.monotonic_ns())
    client.set("relay-test:probe", token)
    time.sleep(0.05)
    with redis_lib.Redis.from_url(replica.url, decode_responses=True) as replica_client:
        arrived = replica_client.get("relay-test:probe") == token
    client.delete("relay-test:probe")
    return arrived


def wait_until(condition: Any, message: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.05)


def replica_enqueuer(pair: Pair) -> tuple[Enqueuer, Any]:
    app = publisher_app(Settings(redis_url=pair.master.url))
    return Enqueuer(pair.client, app, max_backlog=10**9, max_backlog_bytes=0, durability="replica", replica_timeout_ms=TIMEOUT_MS), app


def test_with_a_replica_the_events_are_on_it_when_accept_returns(pair):
    enqueuer, app = replica_enqueuer(pair)
    try:
        enqueuer.accept([validate_event(make_event(userId=f"u{i}")) for i in range(150)])
    finally:
        app.close()
    replica = pair.replica_client()
    # No waiting here: WAIT returned only once the replica held every write of the request.
    assert replica.llen("celery") == 2 and replica.hget(keys.COUNTERS, "accepted") == "150"


def test_with_the_replica_stopped_the_door_answers_503_within_the_timeout(pair):
    settings = Settings(redis_url=pair.master.url, write_keys=(WRITE_KEY,))
    enqueuer, app = replica_enqueuer(pair)
    live = LiveServer(create_app(settings, enqueuer)).start()
    try:
        body = {"batch": [make_event(userId="u1", messageId="m1")]}
        assert httpx.post(f"{live.url}/v1/batch", json=body, auth=(WRITE_KEY, "")).status_code == 200
        pair.replica.stop()
        started = time.monotonic()
        response = httpx.post(f"{live.url}/v1/batch", json=body, auth=(WRITE_KEY, ""), timeout=10)
        elapsed = time.monotonic() - started
    finally:
        live.stop()
        app.close()
    assert (response.status_code, response.json()["code"]) == (503, "not_replicated")
    assert "stored" in response.json()["message"] and "messageId" in response.json()["message"]
    assert "Retry-After" in response.headers
    assert TIMEOUT_MS / 1000 <= elapsed < TIMEOUT_MS / 1000 + 1.5
    # Stored on the master all the same: the retry is the one to be deduplicated.
    assert len(queued_envelopes(pair.client)) == 2


def test_not_replicated_is_raised_after_the_write(pair):
    enqueuer, app = replica_enqueuer(pair)
    pair.replica.stop()
    try:
        with pytest.raises(NotReplicated, match=f"0 of the 1 replica.*{TIMEOUT_MS} ms"):
            enqueuer.accept([validate_event(make_event())])
    finally:
        app.close()
    assert pair.client.hget(keys.COUNTERS, "accepted") == "1"


# -- a request accepted twice is delivered once ----------------------------------------------


class FakeTask:
    """What ``ingest`` and ``deliver`` use of a Celery task: ``app.send_task`` and ``retry``."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list]] = []
        self.app = SimpleNamespace(send_task=lambda name, *, args=None, countdown=None: self.sent.append((name, list(args or ()))))

    def retry(self, **kwargs: Any) -> Exception:
        raise AssertionError(f"no delivery should be retried: {kwargs}")


@pytest.fixture
def runtime(redis_url: str, fake_intercom_factory: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Runtime, Any]]:
    fake = fake_intercom_factory()
    built = Runtime.build(Settings(redis_url=redis_url, api_url=fake.url, access_token=DEFAULT_TOKEN))
    monkeypatch.setattr(runtime_module, "_runtime", built)
    yield built, fake
    built.close()


def test_a_request_accepted_twice_is_delivered_once(enqueuer, redis, runtime):
    rt, fake = runtime
    raw = [make_event("identify", userId=who, messageId=f"{who}-i", traits={"email": f"{who}@example.com"}) for who in ("ann", "bob")]
    stamp = "2026-11-01T10:00:0{}Z"
    raw += [make_event(userId="ann", messageId=f"ann-t{n}", event="Signed In", timestamp=stamp.format(n)) for n in range(3)]
    raw += [make_event(userId="bob", messageId="bob-t0", event="Signed In", timestamp=stamp.format(0))]
    # As after a 503 whose write landed (not_replicated, or a reply lost on the way): the client sends again.
    for _ in range(2):
        enqueuer.accept([validate_event(dict(e)) for e in raw])
    messages = queued_envelopes(redis)
    assert len(messages) == 12
    task = FakeTask()
    ingest(task, messages)
    counts = rt.counters.snapshot()
    assert (counts["accepted"], counts["ingested"], counts["duplicate"]) == (12, 6, 6)
    assert redis.hgetall(keys.INFLIGHT) == {}  # every acceptance's count came back down: no lane held back
    for _, (person, head) in task.sent:
        deliver(task, rt, person, head)
    contacts = {c["external_id"]: c for c in fake.state()["contacts"]}
    assert (contacts["ann"]["event_count"], contacts["bob"]["event_count"]) == (3, 1)
    # Once each, by the relay: Intercom's own de-duplication of events (name, time) was not needed.
    assert fake.state()["counts"]["duplicate_events"] == 0
    counts = rt.counters.snapshot()
    assert (counts["delivered"], counts["backlog"]) == (6, 0)


def test_durability_settings_reach_the_enqueuer(redis, celery_app):
    settings = Settings.from_env({"ACCEPT_DURABILITY": "Replica", "ACCEPT_REPLICA_TIMEOUT_MS": "250", "MAX_BACKLOG_BYTES": "1gb"})
    enqueuer = Enqueuer.from_settings(redis, celery_app, settings)
    assert (enqueuer.replicas, enqueuer.replica_timeout_ms, enqueuer.memory.setting) == (1, 250, 2**30)
    assert Enqueuer.from_settings(redis, celery_app, Settings()).replicas == 0


@pytest.mark.parametrize(
    ("env", "variable"),
    [({"ACCEPT_DURABILITY": "disk"}, "ACCEPT_DURABILITY"), ({"ACCEPT_REPLICA_TIMEOUT_MS": "0"}, "ACCEPT_REPLICA_TIMEOUT_MS")],
)
def test_a_bad_durability_setting_is_named(env, variable):
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env(env)
