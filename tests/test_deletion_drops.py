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
