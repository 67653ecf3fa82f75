"""The Python API: durable on return by default, batching when asked, bad input refused at the call."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

import producers
from producers import BackPressure, BufferFull, InvalidEvent, Producer
from tests.producers import accepted_count, queued_events


def test_a_sync_call_has_put_the_event_in_redis_when_it_returns(enqueuer, redis):
    producer = Producer(enqueuer)
    event = producer.identify("u1", {"email": "ada@example.com"})
    # No flush, no wait: the event is already durable.
    assert accepted_count(redis) == 1
    [queued] = queued_events(redis)
    assert queued["messageId"] == event["messageId"]
    assert queued["traits"] == {"email": "ada@example.com"}
    assert queued["context"]["library"]["name"] == "intercom-relay-python"


def test_every_call_builds_its_segment_event(enqueuer, redis):
    producer = Producer(enqueuer)
    producer.identify("u1", {"name": "Ada"}, context={"ip": "1.2.3.4"})
    producer.track("u1", "Order Completed", {"revenue": 9.5}, message_id="m-1")
    producer.group("u1", "acme", {"name": "Acme"})
    producer.page("u1", "Docs", "Install", {"url": "https://x"})
    producer.screen(None, None, "Home", anonymous_id="anon-1")
    producer.alias("anon-1", "u1")
    events = queued_events(redis)
    assert [e["type"] for e in events] == ["identify", "track", "group", "page", "screen", "alias"]
    identify, track, group, page, screen, alias = events
    assert identify["context"]["ip"] == "1.2.3.4"
    assert (track["event"], track["properties"], track["messageId"]) == ("Order Completed", {"revenue": 9.5}, "m-1")
    assert (group["groupId"], group["traits"]) == ("acme", {"name": "Acme"})
    assert (page["category"], page["name"]) == ("Docs", "Install")
    assert (screen["anonymousId"], "userId" in screen) == ("anon-1", False)
    assert (alias["previousId"], alias["userId"]) == ("anon-1", "u1")


def test_a_timestamp_given_is_kept(enqueuer, redis):
    Producer(enqueuer).track("u1", "Old", timestamp=datetime(2023, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
    assert queued_events(redis)[0]["timestamp"] == "2023-01-02T03:04:05.000Z"


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda p: p.track("u1", ""), "event"),
        (lambda p: p.track(None, "Signed Up"), "userId"),
        (lambda p: p.identify("u1", traits=["not", "a", "dict"]), "traits"),
        (lambda p: p.group("u1", None), "groupId"),
        (lambda p: p.alias(None, "u1"), "previousId"),
        (lambda p: p.track("u1", "E", timestamp="last tuesday"), "timestamp"),
    ],
)
def test_bad_input_raises_invalid_event_at_the_call_naming_the_field(enqueuer, redis, call, field):
    with pytest.raises(InvalidEvent) as caught:
        call(Producer(enqueuer))
    assert caught.value.field == field and field in str(caught.value)
    assert accepted_count(redis) == 0


def test_back_pressure_reaches_the_sync_caller(enqueuer, redis):
    enqueuer.max_backlog = 1
    redis.hset("relay:counters", "accepted", 1)
    with pytest.raises(BackPressure):
        Producer(enqueuer).track("u1", "E")


def test_batching_mode_accepts_in_batches_on_flush(enqueuer, redis):
    calls: list[int] = []
    real_accept = enqueuer.accept

    def accept(events):
        calls.append(len(events))
        return real_accept(events)

    enqueuer.accept = accept
    producer = Producer(enqueuer, batch_size=50, flush_interval=5, sync=False)
    for i in range(120):
        producer.track(f"u{i}", "E")
    producer.flush()
    assert accepted_count(redis) == 120
    assert sum(calls) == 120 and max(calls) <= 50 and len(calls) <= 4
    producer.shutdown()


def test_batching_mode_flushes_on_its_interval(enqueuer, redis):
    producer = Producer(enqueuer, batch_size=1000, flush_interval=0.05, sync=False)
    producer.track("u1", "E")
    done = threading.Event()
    for _ in range(100):
        if accepted_count(redis) == 1:
            done.set()
            break
        done.wait(0.02)
    assert done.is_set()
    producer.shutdown()


def test_batching_mode_still_refuses_bad_input_at_the_call(enqueuer):
    producer = Producer(enqueuer, sync=False)
    with pytest.raises(InvalidEvent):
        producer.track("u1", None)
    producer.shutdown()


def test_batching_mode_raises_when_its_buffer_is_full(enqueuer):
    gate = threading.Event()
    enqueuer.accept = lambda events: gate.wait()
    producer = Producer(enqueuer, batch_size=1, flush_interval=0.01, sync=False, max_queue_size=2)
    with pytest.raises(BufferFull):
        for _ in range(10):
            producer.track("u1", "E")
    gate.set()
    producer.shutdown()


def test_module_functions_use_the_configured_producer(enqueuer, redis):
    producers.configure(Producer(enqueuer))
    try:
        producers.identify("u1", {"email": "a@b.c"})
        producers.track("u1", "Signed Up")
        producers.group("u1", "acme")
        producers.page("u1", name="Home")
        producers.screen("u1", name="Home")
        producers.alias("anon", "u1")
        producers.flush()
        assert accepted_count(redis) == 6
    finally:
        producers.shutdown()


def test_the_default_producer_is_built_from_the_environment_on_first_use(redis_url, redis, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    producers.shutdown()
    try:
        producers.track("u1", "E")
        assert accepted_count(redis) == 1
    finally:
        producers.shutdown()


def test_importing_producers_connects_to_nothing():
    import subprocess
    import sys

    code = "import sys, producers; assert producers._default is None; assert 'starlette' not in sys.modules and 'celery' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, env={"REDIS_URL": "redis://127.0.0.1:1/0"})
