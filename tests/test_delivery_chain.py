"""A task runs its lane's next heads itself: in-process, on real Redis and the fake Intercom.

The end-to-end tests (tests/e2e) show the outcome through real workers; these
show what one task does and what it hands back to Celery, which a fleet
cannot show deterministically.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Sequence

import pytest
from celery.exceptions import Retry

from tests.fixtures_fake import DEFAULT_TOKEN
from worker import runtime as runtime_module
from worker.delivery import CHAIN_MAX, deliver
from worker.runtime import Runtime
from worker.settings import Settings
from worker.store import keys
from worker.tasks import ingest


class FakeTask:
    """What ``deliver`` uses of a Celery task: ``app.send_task`` and ``retry``."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list, float | None]] = []
        self.retried: list[tuple[list, float]] = []

    @property
    def app(self) -> FakeTask:
        return self  # the app's send_task is all a delivery uses of it

    def send_task(self, name: str, *, args: Sequence[Any] | None = None, countdown: float | None = None) -> None:
        self.sent.append((name, list(args or ()), countdown))

    def retry(self, *, args: tuple[Any, ...] | None = None, countdown: float | None = None, max_retries: int | None = None) -> Retry:
        self.retried.append((list(args or ()), countdown or 0.0))
        return Retry("retry")


@dataclass
class RuntimeWithFake(Runtime):
    """A worker's runtime, and the fake Intercom it talks to."""

    fake: Any = None


@pytest.fixture
def rt(redis, redis_url, fake_intercom_factory, monkeypatch):
    def build(relay=None, **fake):
        handle = fake_intercom_factory(**fake)
        built = RuntimeWithFake.build(Settings(redis_url=redis_url, api_url=handle.url, access_token=DEFAULT_TOKEN, **(relay or {})))
        monkeypatch.setattr(runtime_module, "_runtime", built)
        built.fake = handle
        return built

    yield build
    if runtime_module._runtime is not None:
        runtime_module._runtime.close()


def accept(redis, task: FakeTask, events: list[dict]) -> tuple[str, str]:
    """Accept and ingest the events as the door and the ingest task do; the woken (person, head)."""
    for event in events:
        redis.hincrby(keys.INFLIGHT, event.get("userId") or event["anonymousId"], 1)
    ingest(task, [{"seq": n, "event": e} for n, e in enumerate(events, start=1)])
    ((name, args, _),) = task.sent
    task.sent.clear()
    return args[0], args[1]


def stream(user: str, tracks: int) -> list[dict]:
    identify = {
        "type": "identify",
        "userId": user,
        "messageId": f"{user}-i",
        "timestamp": "2026-11-01T10:00:00Z",
        "traits": {"email": f"{user}@example.com", "name": user},
    }
    events = [identify]
    for n in range(tracks):
        events.append(
            {
                "type": "track",
                "userId": user,
                "event": "Signed In",
                "messageId": f"{user}-t{n}",
                "timestamp": f"2026-11-01T10:00:{n + 1:02d}Z",
                "properties": {"n": n},
            }
        )
    events.append(
        {
            "type": "group",
            "userId": user,
            "groupId": "acme",
            "messageId": f"{user}-g",
            "timestamp": "2026-11-01T10:01:00Z",
            "traits": {"name": "Acme"},
        }
    )
    return events


def test_one_task_delivers_a_persons_identify_tracks_and_group(redis, rt):
    runtime = rt()
    task = FakeTask()
    person, head = accept(redis, task, stream("ann", 3))
    result = deliver(task, runtime, person, head)
    assert result["delivered_in_task"] == {"identify_contact": 1, "track_event": 3, "identify_company": 1}
    assert task.sent == [] and task.retried == []  # no hop through Celery
    (contact,) = runtime.fake.state()["contacts"]
    assert contact["external_id"] == "ann"
    assert redis.hget(keys.COUNTERS, "delivered") == "5"


def test_a_chain_stops_at_its_limit_and_sends_the_rest_as_a_task(redis, rt):
    runtime = rt()
    task = FakeTask()
    person, head = accept(redis, task, stream("bob", CHAIN_MAX + 3))
    result = deliver(task, runtime, person, head)
    assert sum(result["delivered_in_task"].values()) == CHAIN_MAX + 1
    ((name, args, countdown),) = task.sent
    assert (name, args[0], countdown) == ("intercom.track_event", "bob", None)


def test_a_chained_head_that_must_wait_gets_a_task_of_its_own_action(redis, rt):
    # Two calls per 10-s window (one once the budget has learnt the limit): the
    # identify and the track go, the group's slot is seconds away.
    # The new user's identify makes one call: no search for leads sharing its email.
    runtime = rt(rate_limit=2, relay={"merge_leads_by_email": False})
    task = FakeTask()
    person, head = accept(redis, task, stream("cy", 1))
    result = deliver(task, runtime, person, head)
    assert result["delivered_in_task"] == {"identify_contact": 1, "track_event": 1}
    assert task.retried == []  # the identify task is not shown retrying a group
    ((name, args, countdown),) = task.sent
    assert name == "intercom.identify_company" and args == [person, result["waiting"]]
    assert countdown is not None and 0 < countdown <= 60


def test_the_tasks_own_delivery_that_must_wait_is_a_celery_retry(redis, rt):
    runtime = rt(rate_limit=2)
    runtime.budget.observe(
        SimpleNamespace(
            status_code=200,
            headers={"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(runtime.redis.time()[0]) + 8)},
        )
    )
    task = FakeTask()
    person, head = accept(redis, task, stream("dee", 1))
    with pytest.raises(Retry):
        deliver(task, runtime, person, head)
    ((args, countdown),) = task.retried
    assert args == [person, head] and 0 < countdown <= 60
    assert task.sent == []


def identify(user: str, n: int, traits: dict, **extra: Any) -> dict:
    return {
        "type": "identify",
        "userId": user,
        "messageId": f"{user}-i{n}",
        "timestamp": f"2026-11-01T10:00:{n:02d}Z",
        "traits": traits,
        **extra,
    }


def test_identifies_waiting_next_to_each_other_go_out_as_one_call(redis, rt):
    runtime = rt()
    task = FakeTask()
    events = [
        identify("eve", 1, {"email": "eve@example.com", "name": "Eve"}),
        identify("eve", 2, {"name": "Evelyn"}),
        identify("eve", 3, {"phone": "+15550100"}),
        stream("eve", 1)[1],  # a track: the identifies behind it are not taken along
        identify("eve", 5, {"name": "Eve"}),
    ]
    person, head = accept(redis, task, events)
    result = deliver(task, runtime, person, head)
    assert result["delivered_in_task"] == {"identify_contact": 2, "track_event": 1}
    (contact,) = runtime.fake.state()["contacts"]
    # (The new user's first identify also searches for leads sharing its email: not a write.)
    writes = [
        (r["method"], r["path"]) for r in runtime.fake.requests() if r["path"].startswith("/contacts") and r["path"] != "/contacts/search"
    ]
    assert writes == [("POST", "/contacts"), ("PUT", f"/contacts/{contact['id']}")]  # three identifies, one call
    assert (contact["name"], contact["phone"], contact["email"]) == ("Eve", "+15550100", "eve@example.com")
    counts = runtime.counters.snapshot()
    assert (counts["deliveries"], counts["delivered"], counts["coalesced"]) == (5, 5, 2)


def test_each_outcome_is_sampled_for_the_person_and_the_fleet(redis, rt):
    runtime = rt()
    task = FakeTask()
    person, head = accept(redis, task, stream("fay", 2))
    deliver(task, runtime, person, head)
    samples = runtime.outcomes.of_person("fay")
    assert [(s["action"], s["status"]) for s in samples] == [
        ("identify_company", "delivered"),
        ("track_event", "delivered"),
        ("track_event", "delivered"),
        ("identify_contact", "delivered"),
    ]
    assert all(s["latency_s"] is None or s["latency_s"] >= 0 for s in samples)
    assert runtime.outcomes.recent(4) == samples
