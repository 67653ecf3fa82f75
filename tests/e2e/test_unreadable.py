"""A message a worker cannot read becomes a dead letter with its raw body, and the worker goes on.

Broken messages are pushed straight into the Celery queue list in Redis, in the
envelope kombu writes (copied from a message the door published), next to
events accepted at the door.  Real Redis, a real ``celery worker``, the fake Intercom.
"""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest

from tests.e2e.harness import accept, wait_until_finished
from tests.e2e.test_retries import cli, wait_for, wait_ready
from worker.store import keys
from worker.store.counters import Counters

pytestmark = pytest.mark.e2e

QUEUE = "celery"


def identify(person: str) -> dict:
    return {
        "type": "identify",
        "userId": person,
        "messageId": f"id-{person}-{uuid.uuid4().hex[:6]}",
        "traits": {"email": f"{person}@example.com"},
    }


def broken(template: dict, body: bytes, *, content_type: str = "application/json", task: str | None = "intercom.ingest") -> str:
    """A copy of a real message from the queue with another body, content type and task (None: no task header)."""
    message = json.loads(json.dumps(template))
    message["body"] = base64.b64encode(body).decode()
    message["content-type"] = content_type
    message["headers"]["id"] = str(uuid.uuid4())
    if task is None:
        del message["headers"]["task"]
    else:
        message["headers"]["task"] = task
    message["properties"]["delivery_tag"] = str(uuid.uuid4())
    return json.dumps(message)


def ingest_body(*envelopes: dict) -> bytes:
    return json.dumps([[list(envelopes)], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]).encode()


def test_unreadable_messages_become_dead_letters_and_the_worker_keeps_working(redis, redis_url, fake_intercom, fleet):
    workers = fleet(fake_intercom.url)
    accept(redis_url, [identify("ann"), identify("carol")])  # before any worker: both wait in the queue
    real = [json.loads(raw) for raw in redis.lrange(QUEUE, 0, -1)]
    assert real and real[0]["headers"]["task"] == "intercom.ingest" and real[0]["properties"]["body_encoding"] == "base64"
    template = real[0]

    # One of carol's events is in a message a worker cannot read: the door counted it.
    redis.hincrby(keys.INFLIGHT, "carol", 1)
    Counters(redis).incr("accepted")  # and accepted it
    carol_lost = {"seq": 10**9, "event": {"type": "track", "event": "Lost", "userId": "carol", "messageId": "lost-1"}}
    pushed = {
        "undecodable_message": broken(template, b'{"not": json'),
        "undecodable_message ": broken(template, b"[" * 2000 + b"]" * 2000),  # nested too deep to decode
        "unknown_task": broken(template, ingest_body(), task="intercom.no_such_task"),
        "invalid_task": broken(template, ingest_body(carol_lost), content_type="application/x-yaml"),
        "invalid_task ": broken(template, b'"hello"'),  # JSON, but not a task's arguments
        "unknown_message": broken(template, b'{"no": "task"}', task=None),
    }
    for raw in pushed.values():
        redis.lpush(QUEUE, raw)

    workers.worker("w1", concurrency=4)
    workers.beat()
    wait_ready(workers, "w1")
    letters = wait_for(lambda: _letters(redis) if len(_letters(redis)) == len(pushed) else None, 30, "a dead letter per broken message")

    reasons = sorted(d["reason"].split(":")[0] for d in letters)
    assert reasons == sorted(r.strip() for r in pushed), reasons
    invalid_json = next(d for d in letters if d["message"]["body"] == '{"not": json')
    assert invalid_json["message"]["content_type"] == "application/json" and not invalid_json["message"]["truncated"]
    assert invalid_json["message"]["headers"]["task"] == "intercom.ingest"
    deep = next(d for d in letters if d["message"]["size"] == 4000)
    assert deep["reason"].startswith("undecodable_message")

    # carol's lost event no longer holds her lane: both accepted identifies are delivered.
    counts = wait_until_finished(redis, workers, timeout=60)
    assert (counts["delivered"], counts["unreadable"]) == (2, len(pushed))
    assert not redis.hexists(keys.INFLIGHT, "carol")
    # Every broken message acknowledged once kept; the ack follows the counters by a moment.
    wait_for(lambda: redis.hlen("unacked") == 0, 10, "no message left unacknowledged")

    listed = cli(workers.env, "dead-letters", "list", "--reason", "unknown_task").stdout
    assert "unknown_task: no task named 'intercom.no_such_task'" in listed
    replayed = cli(workers.env, "dead-letters", "replay", "--reason", "undecodable_message")
    assert "replayed 0 dead letter(s)" in replayed.stdout
    assert "cannot be replayed" in replayed.stdout + replayed.stderr
    assert len(_letters(redis)) == len(pushed)  # still there, to read and purge

    # The worker goes on: an event accepted now is delivered.
    accept(redis_url, [identify("dan")])
    assert wait_until_finished(redis, workers, timeout=60)["delivered"] == 3
    log = (workers.logs / "w1.log").read_text(errors="replace")
    assert "Can't decode message body" not in log and "unreadable message kept as dead letter" in log


def test_the_sweep_repairs_an_inflight_count_no_message_will_bring_down(redis, redis_url, fake_intercom, fleet):
    workers = fleet(fake_intercom.url)
    workers.worker("w1", concurrency=4)
    workers.beat()
    wait_ready(workers, "w1")
    redis.hincrby(keys.INFLIGHT, "zed", 1)  # an event of zed's whose message is gone
    accept(redis_url, [identify("zed")])
    wait_for(lambda: redis.hget(keys.INFLIGHT, "zed") == "1" and redis.zcard(keys.lane("zed")) == 1, 30, "zed's lane held")
    # As if the count had stood still for two minutes, and no sweep had checked in this window.
    redis.hset(keys.INFLIGHT_SEEN, "zed", f"1|{int(time.time() * 1000) - 120_000}")
    redis.delete(keys.INFLIGHT_CHECK)
    counts = wait_until_finished(redis, workers, timeout=30)
    assert (counts["delivered"], counts["inflight_repaired"]) == (1, 1)
    assert "inflight repaired: zed counted 1 events on their way, 0 found" in (workers.logs / "w1.log").read_text(errors="replace")


def _letters(redis) -> list[dict]:
    return [json.loads(raw) for raw in redis.hvals(keys.DEAD)]
