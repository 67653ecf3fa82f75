"""Put validated events on the Celery queue: the one place events enter Redis.

It sends ``intercom.ingest`` by name through a publishing app
(``worker.broker.publisher_app``), so the door loads neither the worker's tasks
nor its actions.

An event is *accepted* once ``Enqueuer.accept`` returns: it sits in the
Redis-backed Celery queue, stamped with its acceptance sequence.  The worker's
``intercom.ingest`` task moves it into its person's lane in that order.

A request is accepted whole or not at all: its messages are built by Celery
on a channel this thread holds, kept back from Redis (``PutCollector``), and
stored with its in-flight counts and the ``accepted`` counter in one script
(``worker/store/acceptance.py``).  With ACCEPT_DURABILITY=replica the door then
waits for a replica to hold them too.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Callable

from worker.store import keys
from worker.store.acceptance import NotReplicated, store_request
from worker.store.counters import Counters
from worker.store.lanes import person_of
from worker.task_names import INGEST_TASK

if TYPE_CHECKING:  # for the annotations only: a publisher imports Celery when it is built
    import redis as redis_lib
    from celery import Celery

    from worker.settings import Settings

__all__ = ["BackPressure", "Enqueuer", "MemoryBound", "NotReplicated"]

#: Events per ``intercom.ingest`` message.  Large enough that publishing costs
#: little per event, small enough that one message is a quick task.
INGEST_BATCH = 100

#: Seconds a client is told to wait when the backlog is over its bound.
BACKPRESSURE_RETRY_AFTER = 10


#: How long one reading of Redis's memory serves the back-pressure check of a
#: door process: INFO costs a round trip, and memory moves slowly.
MEMORY_READING_SECONDS = 1.0

#: With MAX_BACKLOG_BYTES unset, the door stops at this share of Redis's
#: maxmemory: the rest is the workers' room to ingest and deliver what is
#: queued, since a Redis at maxmemory refuses their writes too.
MAXMEMORY_SHARE = 0.9


class BackPressure(Exception):
    """The relay holds more unfinished events (or Redis more bytes) than its bound: try again later."""

    def __init__(self, backlog: int, bound: int, unit: str = "events") -> None:
        what = "backlog" if unit == "events" else "Redis's memory"
        super().__init__(f"{what} of {backlog} {unit} is over the bound of {bound}; retry later")
        self.retry_after = BACKPRESSURE_RETRY_AFTER


class MemoryBound:
    """Redis's used memory against MAX_BACKLOG_BYTES, read at most once a second per process.

    ``setting`` None: 90% of Redis's own maxmemory (read from the same INFO
    reply), no bound when Redis has none; 0: no bound, and no INFO is asked.
    """

    def __init__(self, redis: redis_lib.Redis, setting: int | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.redis = redis
        self.setting = setting
        self.clock = clock
        self._reading: tuple[float, int, int] | None = None  # (read at, used, bound)

    def check(self) -> None:
        """Raise BackPressure when Redis's used memory is over the bound."""
        if self.setting == 0:
            return
        used, bound = self._read()
        if bound and used >= bound:
            raise BackPressure(used, bound, unit="bytes")

    def _read(self) -> tuple[int, int]:
        reading = self._reading
        now = self.clock()
        if reading is None or now - reading[0] >= MEMORY_READING_SECONDS:
            info: Any = self.redis.info("memory")
            used, maxmemory = int(info["used_memory"]), int(info.get("maxmemory") or 0)
            bound = self.setting if self.setting is not None else int(maxmemory * MAXMEMORY_SHARE)
            reading = self._reading = (now, used, bound)
        return reading[1], reading[2]


class Enqueuer:
    """Accepts validated, normalised Segment events into the pipeline."""

    def __init__(
        self,
        redis: redis_lib.Redis,
        celery_app: Celery,
        *,
        max_backlog: int,
        max_backlog_bytes: int | None = None,
        durability: str = "local",
        replica_timeout_ms: int = 1000,
    ) -> None:
        self.redis = redis
        self.app = celery_app
        self.max_backlog = max_backlog
        self.memory = MemoryBound(redis, max_backlog_bytes)
        self.replicas = 1 if durability == "replica" else 0
        self.replica_timeout_ms = replica_timeout_ms
        self.counters = Counters(redis)

    @classmethod
    def from_settings(cls, redis: redis_lib.Redis, celery_app: Celery, settings: Settings) -> Enqueuer:
        return cls(
            redis,
            celery_app,
            max_backlog=settings.max_backlog,
            max_backlog_bytes=settings.max_backlog_bytes,
            durability=settings.accept_durability,
            replica_timeout_ms=settings.accept_replica_timeout_ms,
        )

    def accept(self, events: list[dict]) -> int:
        """Make ``events`` durable and queued for delivery, all or none; returns how many.

        Raises BackPressure, before accepting anything, when the backlog or
        Redis's memory is over its bound, so that Redis never runs out of
        memory under a flood.  Raises redis's and kombu's errors when nothing
        was stored, and NotReplicated (ACCEPT_DURABILITY=replica) when
        everything was stored but no replica acknowledged it in time.
        """
        if not events:
            return 0
        self.check_backlog()
        # A request that then fails leaves a gap in the sequence: harmless, lanes only compare.
        first = self.redis.incrby(keys.SEQ, len(events)) - len(events) + 1
        envelopes = [{"seq": first + i, "event": _without_secrets(e)} for i, e in enumerate(events)]
        chunks = [envelopes[start : start + INGEST_BATCH] for start in range(0, len(envelopes), INGEST_BATCH)]
        self._store(chunks, Counter(person_of(e) for e in events))
        return len(events)

    def _store(self, chunks: list[list[dict]], people: Counter[str]) -> None:
        """One ingest message per chunk, built by Celery, stored with the counts in one script."""
        from kombu.exceptions import OperationalError  # noqa: PLC0415 - loaded by the first publish anyway

        from worker.broker import PutCollector  # noqa: PLC0415

        with self.app.producer_or_acquire() as producer:  # its channel is this thread's alone until released
            channel = producer.channel
            with PutCollector(channel) as collected:
                for chunk in chunks:
                    self._publish(producer, chunk)
            if len(collected.puts) != len(chunks):  # kombu found no queue bound to them (it drops such): count nothing
                raise OperationalError(f"the broker routed {len(collected.puts)} of {len(chunks)} ingest messages to a queue")
            store_request(channel.pool, collected.puts, dict(people), replicas=self.replicas, replica_timeout_ms=self.replica_timeout_ms)

    def _publish(self, producer: Any, chunk: list[dict]) -> None:
        # argsrepr: what Flower shows; Celery's own repr of 100 events costs a third of a publish.
        # retry=False: kombu would retry on a revived channel, which pushes instead of collecting.
        self.app.send_task(
            INGEST_TASK,
            args=[chunk],
            argsrepr=f"[{len(chunk)} events, seq {chunk[0]['seq']}..{chunk[-1]['seq']}]",
            producer=producer,
            retry=False,
        )

    def check_backlog(self) -> None:
        backlog = self.counters.snapshot()["backlog"]
        if backlog >= self.max_backlog:
            raise BackPressure(backlog, self.max_backlog)
        self.memory.check()


def _without_secrets(event: dict) -> dict:
    """Segment clients may put the write key in the body; it must not reach Flower."""
    if "writeKey" in event:
        event = {k: v for k, v in event.items() if k != "writeKey"}
    return event
