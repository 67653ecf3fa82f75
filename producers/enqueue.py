"""Put validated events on the Celery queue: the one place events enter Redis.

It sends ``intercom.ingest`` by name through a publishing app
(``worker.broker.publisher_app``), so the door loads neither the worker's tasks
nor its actions.

An event is *accepted* once ``Enqueuer.accept`` returns: it sits in the
Redis-backed Celery queue, stamped with its acceptance sequence.  The worker's
``intercom.ingest`` task moves it into its person's lane in that order.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from worker.store import keys
from worker.store.counters import Counters
from worker.store.lanes import person_of
from worker.task_names import INGEST_TASK

if TYPE_CHECKING:  # for the annotations only: a publisher imports Celery when it is built
    import redis as redis_lib
    from celery import Celery

#: Events per ``intercom.ingest`` message.  Large enough that publishing costs
#: little per event, small enough that one message is a quick task.
INGEST_BATCH = 100

#: Seconds a client is told to wait when the backlog is over its bound.
BACKPRESSURE_RETRY_AFTER = 10


class BackPressure(Exception):
    """The relay holds more unfinished events than its bound: try again later."""

    def __init__(self, backlog: int, bound: int) -> None:
        super().__init__(f"backlog of {backlog} events is over the bound of {bound}; retry later")
        self.retry_after = BACKPRESSURE_RETRY_AFTER


class Enqueuer:
    """Accepts validated, normalised Segment events into the pipeline."""

    def __init__(self, redis: redis_lib.Redis, celery_app: Celery, *, max_backlog: int) -> None:
        self.redis = redis
        self.app = celery_app
        self.max_backlog = max_backlog
        self.counters = Counters(redis)

    def accept(self, events: list[dict]) -> int:
        """Make ``events`` durable and queued for delivery; returns how many.

        Raises BackPressure, before accepting anything, when the backlog is over
        its bound, so that Redis never runs out of memory under a flood.
        """
        if not events:
            return 0
        self.check_backlog()
        first = self.redis.incrby(keys.SEQ, len(events)) - len(events) + 1
        envelopes = [{"seq": first + i, "event": _without_secrets(e)} for i, e in enumerate(events)]
        for start in range(0, len(envelopes), INGEST_BATCH):
            chunk = envelopes[start : start + INGEST_BATCH]
            # argsrepr: what Flower shows; Celery's own repr of 100 events costs a third of a publish.
            self.app.send_task(INGEST_TASK, args=[chunk], argsrepr=f"[{len(chunk)} events, seq {chunk[0]['seq']}..{chunk[-1]['seq']}]")
        self._count(events)
        return len(events)

    def check_backlog(self) -> None:
        backlog = self.counters.snapshot()["backlog"]
        if backlog >= self.max_backlog:
            raise BackPressure(backlog, self.max_backlog)

    def _count(self, events: list[dict]) -> None:
        # Counted after publishing: should the process die in between, a lane is
        # at worst not held back for one batch, instead of held back forever.
        pipe = self.redis.pipeline(transaction=False)
        for person, n in Counter(person_of(e) for e in events).items():
            pipe.hincrby(keys.INFLIGHT, person, n)
        self.counters.incr("accepted", len(events), pipe=pipe)
        pipe.execute()


def _without_secrets(event: dict) -> dict:
    """Segment clients may put the write key in the body; it must not reach Flower."""
    if "writeKey" in event:
        event = {k: v for k, v in event.items() if k != "writeKey"}
    return event
