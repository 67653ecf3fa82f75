"""A deletion drops, unsent, the person's deliveries accepted before it: counted as deleted.

And one that fails (its delivery became a dead letter) says so, and why.
"""

from __future__ import annotations

import threading
import time

from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.testclient import TestClient

from cli.main import main
from producers.deletions import deletion_routes
from producers.enqueue import Enqueuer
from tests.test_delivery_chain import FakeTask, accept, rt, stream  # noqa: F401 - rt is a fixture
from worker.broker import publisher_app
from worker.delivery import deliver
from worker.settings import Settings
from worker.store import keys
from worker.store.deadletters import DeadLetters
from worker.store.deletions import Deletions, deletion_event
from worker.tasks import ingest


def test_a_backlog_accepted_before_the_deletion_is_dropped_and_counted(redis, rt) -> None:  # noqa: F811
    runtime = rt()
    task = FakeTask()
    backlog = stream("dee", 2)  # an identify, two tracks and a group, waiting in the lane
    deletions = Deletions(redis)
    deletions.request("d1")
    redis.set(keys.SEQ, len(backlog))  # as the door leaves it after accepting the backlog
    deletions.mark("dee", "d1")
    person, head = accept(redis, task, [*backlog, deletion_event("d1", "dee", None, None)])

    deliver(task, runtime, person, head)

    counts = runtime.counters.snapshot()
    dropped = len(backlog)
    assert (counts["deleted"], counts["delivered"], counts["deliveries"]) == (dropped, 1, dropped + 1)
    record = deletions.get("d1") or {}
    assert (record["state"], record["events_dropped"], record["contacts_deleted"]) == ("done", str(dropped), "0")
    assert runtime.fake.state()["contacts"] == []  # nothing of the backlog reached Intercom
    assert [r["path"] for r in runtime.fake.requests()] == ["/contacts/search"]  # the deletion's lookup only


def test_without_a_deletion_nothing_is_dropped(redis, rt) -> None:  # noqa: F811
    runtime = rt()
    task = FakeTask()
    person, head = accept(redis, task, stream("eve", 1))
    deliver(task, runtime, person, head)
    assert runtime.counters.snapshot()["deleted"] == 0


def test_parked_deliveries_accepted_before_the_deletion_are_dropped_not_left_to_expire(redis) -> None:
    deletions = Deletions(redis)
    deletions.request("d2")
    redis.rpush(keys.parked("gus"), "3:0T|1000", "9:0T|1001")  # 9 was accepted after the request
    redis.zadd(keys.PARKED_INDEX, {"gus": 1000})
    redis.hset(keys.DELIVERIES, mapping={"3:0T": "{}", "9:0T": "{}"})
    redis.hset(keys.COUNTERS, "parked", 2)
    redis.set(keys.SEQ, 5)
    deletions.mark("gus", "d2")

    assert deletions.drop_parked("gus", "d2") == 1
    assert redis.lrange(keys.parked("gus"), 0, -1) == ["9:0T|1001"]
    assert (redis.hget(keys.COUNTERS, "parked"), redis.hget(keys.COUNTERS, "deleted")) == ("1", "1")
    assert redis.hkeys(keys.DELIVERIES) == ["9:0T"]
    assert (deletions.get("d2") or {})["events_dropped"] == "1"
    assert deletions.drop_parked("gus", "another deletion") == 0  # only the deletion that marked the person


# -- a deletion that fails says so, and why; replayed and carried out, it is done -----------------


def ingest_from(redis, task: FakeTask, events: list[dict], first_seq: int) -> dict[str, str]:
    """Ingest the events as the door (sequence numbers from ``first_seq``) and the ingest task do; person -> woken head."""
    for event in events:
        redis.hincrby(keys.INFLIGHT, event.get("userId") or event["anonymousId"], 1)
    ingest(task, [{"seq": n, "event": e} for n, e in enumerate(events, start=first_seq)])
    redis.set(keys.SEQ, first_seq + len(events) - 1)
    woken = {args[0]: args[1] for _, args, _ in task.sent}
    task.sent.clear()
    return woken


def test_a_deletion_intercom_refuses_is_failed_with_why_then_done_once_replayed(redis, rt) -> None:  # noqa: F811
    refusing = rt(fault_rate=1.0, fault_status=403)  # every call answered 403: a permanent refusal
    task = FakeTask()
    deletions = Deletions(redis)
    deletions.request("d3")
    deletions.mark("fay", "d3", user_id="fay")
    woken = ingest_from(redis, task, [deletion_event("d3", "fay", None, None)], 1)

    deliver(task, refusing, "fay", woken["fay"])

    record = deletions.get("d3") or {}
    (dead,) = DeadLetters(redis, refusing.lanes).iter(person="fay")
    assert (record["state"], record["dead_letter"]) == ("failed", dead.id)
    assert "403" in record["reason"] and record["reason"] == dead.reason
    assert deletions.count_done() == 0
    refusing.close()

    healthy = rt()  # the cause is fixed (a token with the right scope)
    replayed, heads = DeadLetters(redis, healthy.lanes).replay([dead])
    assert replayed == 1
    assert (deletions.get("d3") or {})["state"] == "pending"  # replayed: waiting for its delivery again
    for person, head in heads:
        deliver(task, healthy, person, head)
    record = deletions.get("d3") or {}
    assert record["state"] == "done" and not {"reason", "failed_at", "dead_letter"} & set(record)
    assert deletions.count_done() == 1


def test_delete_person_wait_stops_on_a_failure_with_a_non_zero_exit_and_why(redis, redis_url, monkeypatch) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)

    def fail_the_deletion() -> None:  # what a worker does when the deletion's delivery is dead-lettered
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not redis.keys("relay:deletion:*"):
            time.sleep(0.05)
        (key,) = redis.keys("relay:deletion:*")
        record = {"event": {"properties": {"deletion_id": key.rsplit(":", 1)[1]}}}
        Deletions(redis).failed(record, "Intercom answered 403: the token lacks the scope", "7:0X")

    worker = threading.Thread(target=fail_the_deletion)
    worker.start()
    result = CliRunner().invoke(main, ["delete-person", "--user-id", "gil", "--wait", "--timeout", "20"])
    worker.join()
    assert result.exit_code == 1, result.output
    assert '"state": "failed"' in result.output
    assert "failed: Intercom answered 403: the token lacks the scope" in result.output
    assert "dead-letters replay --id 7:0X" in result.output


def test_the_deletion_route_answers_failed_and_why(redis, redis_url) -> None:
    admin = ("ops", "a-long-admin-password")
    settings = Settings(redis_url=redis_url, admin_keys=(admin,))
    enqueuer = Enqueuer(redis, publisher_app(settings), max_backlog=10**6)
    with TestClient(Starlette(routes=deletion_routes(settings, enqueuer))) as client:
        deletion_id = client.post("/v1/deletions", json={"userId": "hal"}, auth=admin).json()["id"]
        Deletions(redis).failed({"event": {"properties": {"deletion_id": deletion_id}}}, "gave up after 9 attempts: 503", "4:0X")
        state = client.get(f"/v1/deletions/{deletion_id}", auth=admin).json()
    assert (state["state"], state["reason"], state["dead_letter"]) == ("failed", "gave up after 9 attempts: 503", "4:0X")


# -- a deletion by user id covers the anonymous lanes the relay links to that user -----------------


def test_a_deletion_by_user_id_drops_the_backlog_of_the_anonymous_ids_linked_to_the_user(redis, rt) -> None:  # noqa: F811
    runtime = rt()
    task = FakeTask()
    identify = {
        "type": "identify",
        "userId": "ivy",
        "anonymousId": "a-ivy",
        "messageId": "ivy-i",
        "timestamp": "2026-11-01T10:00:00Z",
        "traits": {"email": "ivy@example.com"},
    }
    woken = ingest_from(redis, task, [identify], 1)
    deliver(task, runtime, "ivy", woken["ivy"])  # the cache now links a-ivy to ivy's contact

    def track(n: int, **person: str) -> dict:
        return {"type": "track", "event": "Clicked", "messageId": f"ivy-t{n}", "timestamp": f"2026-11-01T10:01:{n:02d}Z", **person}

    backlog = [track(1, anonymousId="a-ivy"), track(2, anonymousId="a-ivy"), track(3, userId="ivy")]
    woken = ingest_from(redis, task, backlog, 2)
    deletions = Deletions(redis)
    deletions.request("d4")
    assert deletions.mark("ivy", "d4", user_id="ivy") == ["ivy", "a-ivy"]
    assert deletions.mark("nobody", "d0", user_id="nobody") == ["nobody"]  # no link known: only the user's lane
    woken.update(ingest_from(redis, task, [deletion_event("d4", "ivy", None, None)], 5))

    for person, head in woken.items():
        deliver(task, runtime, person, head)

    counts = runtime.counters.snapshot()
    assert (counts["deleted"], counts["delivered"], counts["deliveries"]) == (3, 2, 5)  # both lanes' backlogs, dropped unsent
    record = deletions.get("d4") or {}
    assert (record["state"], record["events_dropped"], record["contacts_deleted"]) == ("done", "3", "1")
    assert not [r for r in runtime.fake.requests() if r["path"] == "/events"]  # no track reached Intercom
    assert [c["deleted"] for c in runtime.fake.state()["contacts"]] == [True]
