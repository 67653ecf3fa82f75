"""A request is accepted whole or not at all: its messages, in-flight counts and counter in one step.

Redis refusing part-way (out of memory, a key of the wrong type) must leave
nothing of the request behind: no message a 503's retry would duplicate, no
in-flight count that holds a lane back, no ``accepted`` that never arrives.
The failures are real ones, from redis-server processes of the tests' own.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Iterator

import celery
import httpx
import pytest
import redis as redis_lib
from redis.exceptions import OutOfMemoryError, ResponseError

import producers.enqueue as enqueue_module
from demo.embedded_redis import EmbeddedRedis
from producers.enqueue import INGEST_BATCH, BackPressure, Enqueuer, MemoryBound
from producers.events import validate_event
from producers.http import create_app
from tests.producers import WRITE_KEY, LiveServer, accepted_count, make_event, queued_envelopes
from worker.broker import publisher_app
from worker.settings import Settings, SettingsError
from worker.store import keys
from worker.store.acceptance import store_request

ENVELOPES_PER_REQUEST = 2 * INGEST_BATCH + 50  # three messages: a failure can land between them


def request_events(n: int = ENVELOPES_PER_REQUEST, people: int = 7) -> list[dict]:
    return [validate_event(make_event(userId=f"p{i % people}", messageId=f"m{i}")) for i in range(n)]


def state(client: redis_lib.Redis) -> tuple[int, dict, int]:
    """What a request leaves: messages queued, in-flight counts, the accepted counter."""
    return client.llen("celery"), client.hgetall(keys.INFLIGHT), accepted_count(client)


@pytest.fixture
def own_redis() -> Iterator[tuple[EmbeddedRedis, redis_lib.Redis]]:
    """A redis-server of this test's own: its maxmemory is changed, which the suite's Redis must not see."""
    server = EmbeddedRedis().start()
    client = redis_lib.Redis.from_url(server.url, decode_responses=True)
    yield server, client
    client.close()
    server.stop()


@pytest.fixture
def own_enqueuer(own_redis: tuple[EmbeddedRedis, redis_lib.Redis]) -> Iterator[Enqueuer]:
    server, client = own_redis
    app = publisher_app(Settings(redis_url=server.url))
    yield Enqueuer(client, app, max_backlog=10**9, max_backlog_bytes=0)
    app.close()


def test_a_request_is_one_message_per_hundred_events_with_its_counts(enqueuer, redis):
    events = request_events()
    assert enqueuer.accept(events) == len(events)
    raw = [json.loads(m) for m in reversed(redis.lrange("celery", 0, -1))]
    assert [m["headers"]["argsrepr"] for m in raw] == [
        "[100 events, seq 1..100]",
        "[100 events, seq 101..200]",
        "[50 events, seq 201..250]",
    ]
    assert all("m0" not in m["headers"]["argsrepr"] for m in raw)  # Flower shows no event body
    assert [e["event"]["messageId"] for e in queued_envelopes(redis)] == [f"m{i}" for i in range(len(events))]
    inflight = redis.hgetall(keys.INFLIGHT)
    assert sum(int(v) for v in inflight.values()) == len(events) and set(inflight) == {f"p{i}" for i in range(7)}
    assert accepted_count(redis) == len(events)
    # The body Celery made is a task message a worker can run: protocol 2, [args, kwargs, embed].
    args, kwargs, _ = json.loads(base64.b64decode(raw[0]["body"]))
    assert kwargs == {} and len(args[0]) == INGEST_BATCH


def test_the_publishing_apps_transport_collects_and_stores_the_same(own_enqueuer, own_redis):
    _, client = own_redis
    own_enqueuer.accept(request_events())
    assert state(client)[0] == 3 and accepted_count(client) == ENVELOPES_PER_REQUEST


def test_redis_out_of_memory_before_the_request_stores_nothing(own_enqueuer, own_redis):
    _, client = own_redis
    own_enqueuer.accept(request_events(3))  # declares the queue: a later failure is the request's own
    before = state(client)
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", 1)
    with pytest.raises(OutOfMemoryError):
        own_enqueuer.accept(request_events())
    assert state(client) == before


def test_redis_out_of_memory_at_the_script_stores_nothing(own_enqueuer, own_redis, monkeypatch):
    """The sequence is taken, the messages built; Redis fills up just before the one write."""
    _, client = own_redis
    own_enqueuer.accept(request_events(3))
    before = state(client)
    store_request = enqueue_module.store_request

    def full_then_store(*args: Any, **kwargs: Any) -> int:
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", 1)
        return store_request(*args, **kwargs)

    monkeypatch.setattr(enqueue_module, "store_request", full_then_store)
    with pytest.raises(OutOfMemoryError):
        own_enqueuer.accept(request_events())
    assert state(client) == before
    # Once Redis has room again, the client's retry stores the request once.
    client.config_set("maxmemory", 0)
    monkeypatch.setattr(enqueue_module, "store_request", store_request)
    own_enqueuer.accept(request_events())
    assert state(client)[0] == before[0] + 3 and accepted_count(client) == before[2] + ENVELOPES_PER_REQUEST


def test_a_script_that_fails_part_way_has_written_nothing(enqueuer, redis):
    # The fourth person's in-flight count is not a number: HINCRBY would fail after the
    # pushes and the first three people's counts, were the checks not all done first.
    redis.hset(keys.INFLIGHT, "p3", "not a number")
    with pytest.raises(ResponseError, match="is not a number"):
        enqueuer.accept(request_events())
    assert state(redis) == (0, {"p3": "not a number"}, 0)


def test_a_queue_key_of_the_wrong_type_refuses_the_request_whole(redis):
    # kombu's publish already trips over such a key (LLEN); the script checks again, before writing.
    redis.set("relay-test:q2", "not a list")
    puts = [("relay-test:q1", "message 1"), ("relay-test:q2", "message 2")]
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        store_request(redis.connection_pool, puts, {"p1": 1, "p2": 1})
    assert (redis.exists("relay-test:q1"), redis.hgetall(keys.INFLIGHT), accepted_count(redis)) == (0, {}, 0)


def test_the_door_answers_503_and_stores_nothing_when_redis_is_full(own_redis):
    server, client = own_redis
    settings = Settings(redis_url=server.url, write_keys=(WRITE_KEY,))
    app = publisher_app(settings)
    live = LiveServer(create_app(settings, Enqueuer(client, app, max_backlog=10**9, max_backlog_bytes=0))).start()
    try:
        batch = {"batch": [make_event(userId=f"p{i % 5}") for i in range(ENVELOPES_PER_REQUEST)]}
        assert httpx.post(f"{live.url}/v1/batch", json=batch, auth=(WRITE_KEY, "")).status_code == 200
        before = state(client)
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", 1)
        response = httpx.post(f"{live.url}/v1/batch", json=batch, auth=(WRITE_KEY, ""))
        assert (response.status_code, response.json()["code"]) == (503, "unavailable")
        assert "Retry-After" in response.headers
        client.config_set("maxmemory", 0)
        assert state(client) == before
    finally:
        live.stop()
        app.close()


# -- MAX_BACKLOG_BYTES ------------------------------------------------------------------


class InfoStub:
    """What MemoryBound reads of Redis: INFO memory, and how often it was asked."""

    def __init__(self, used: int, maxmemory: int) -> None:
        self.used, self.maxmemory, self.asked = used, maxmemory, 0

    def info(self, section: str) -> dict:
        assert section == "memory"
        self.asked += 1
        return {"used_memory": self.used, "maxmemory": self.maxmemory}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_unset_the_bound_is_nine_tenths_of_redis_maxmemory():
    redis = InfoStub(used=899, maxmemory=1000)
    bound = MemoryBound(redis, None, clock=Clock())  # type: ignore[arg-type]
    bound.check()
    redis.used, bound._reading = 900, None
    with pytest.raises(BackPressure, match="memory of 900 bytes is over the bound of 900"):
        bound.check()


def test_unset_and_redis_without_maxmemory_there_is_no_bound():
    MemoryBound(InfoStub(used=10**12, maxmemory=0), None).check()  # type: ignore[arg-type]


def test_zero_is_off_and_asks_redis_nothing():
    redis = InfoStub(used=10**12, maxmemory=1)
    MemoryBound(redis, 0).check()  # type: ignore[arg-type]
    assert redis.asked == 0


def test_a_set_bound_is_used_as_is_and_read_once_a_second():
    redis, clock = InfoStub(used=5000, maxmemory=0), Clock()
    bound = MemoryBound(redis, 10_000, clock=clock)  # type: ignore[arg-type]
    bound.check()
    redis.used = 20_000
    bound.check()  # the reading of 5000 still serves
    clock.now += enqueue_module.MEMORY_READING_SECONDS
    with pytest.raises(BackPressure):
        bound.check()
    assert redis.asked == 2


def test_the_door_answers_503_backpressure_over_max_backlog_bytes(redis, celery_app: celery.Celery, settings):
    enqueuer = Enqueuer(redis, celery_app, max_backlog=10**9, max_backlog_bytes=1)
    live = LiveServer(create_app(settings, enqueuer)).start()
    try:
        response = httpx.post(f"{live.url}/v1/track", json=make_event(), auth=(WRITE_KEY, ""))
    finally:
        live.stop()
    assert (response.status_code, response.json()["code"]) == (503, "backpressure")
    assert "Redis's memory" in response.json()["message"] and int(response.headers["Retry-After"]) > 0
    assert state(redis) == (0, {}, 0)


@pytest.mark.parametrize(
    ("raw", "expected"), [("", None), ("0", 0), ("2000000000", 2 * 10**9), ("1500mb", 1500 * 2**20), ("2GB", 2 * 2**30), ("3k", 3000)]
)
def test_max_backlog_bytes_is_read_as_redis_writes_maxmemory(raw, expected):
    assert Settings.from_env({"MAX_BACKLOG_BYTES": raw}).max_backlog_bytes == expected


@pytest.mark.parametrize("raw", ["-1", "1.5gb", "2tb", "gb", "lots"])
def test_a_bad_max_backlog_bytes_is_named(raw):
    with pytest.raises(SettingsError, match="MAX_BACKLOG_BYTES"):
        Settings.from_env({"MAX_BACKLOG_BYTES": raw})
