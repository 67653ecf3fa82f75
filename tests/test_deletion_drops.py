"""A deletion drops, unsent, the person's deliveries accepted before it (issue 11): counted as deleted."""

from __future__ import annotations

from tests.test_delivery_chain import FakeTask, accept, rt, stream  # noqa: F401 - rt is a fixture
from worker.delivery import deliver
from worker.store import keys
from worker.store.deletions import Deletions, deletion_event


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
