"""The in-flight guard, and its repair from what is really on its way.

``relay:inflight`` (``keys.INFLIGHT``) counts, per person, the events the door
accepted that ``intercom.ingest`` has not yet put in the person's lane; the
lane does not start while the count is above zero (lane_functions.lua
``next_head``), so that an identify still in the queue is never overtaken.
The door adds to it and each ingested event takes one away, never below zero
(``decr_field``).

A failure can still leave a count that no ingest will ever take away: an
ingest message deleted from the queue by hand, one whose body no worker could
read (worker/consumer.py releases what it can read of it), a door process
that died between counting and publishing.  Such a count holds its lane for
good.  So the sweep, at most once per ``CHECK_INTERVAL_SECONDS`` for the whole
fleet, does this:

1. it notes since when each person's count has stood at its value
   (``keys.INFLIGHT_SEEN``);
2. the counts that have not moved for ``STALE_SECONDS`` (and any below zero,
   left by an older version) are recounted from the ingest messages that
   exist: in the Celery queue and in kombu's ``unacked`` hash (taken by a
   worker, not acknowledged), less the events an ingest already put in their
   lane (a message that came back after its worker died having ingested it);
3. each is set to that count, only if it is still the value seen (one Lua
   step, which also wakes the lane when the count reaches zero), logged and
   counted (``inflight_repaired``).

The queue is read only when some count is stale, and read twice, keeping what
either read saw: a worker takes a message off the queue list a moment before
it records it as unacknowledged, and a single read could miss it then.  A
queue longer than ``MAX_SCANNED`` is not read (a backlog that long explains
counts that stand still); the check comes back once it is shorter.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, cast

import redis as redis_lib

from worker.store import keys, scripts
from worker.store.lanes import Lanes, person_of
from worker.task_names import INGEST_TASK

log = logging.getLogger("worker.inflight")

#: A count that has not moved for this long is recounted.  An ingest takes
#: milliseconds and an unacknowledged one is put back after 20 s
#: (worker/broker.py), so a count this old either waits behind a long queue
#: (the recount finds its messages and keeps it) or will never come down.
STALE_SECONDS = 60.0

#: The fleet checks the counts at most this often (one sweep per window does).
CHECK_INTERVAL_SECONDS = 30.0

#: The most messages one read of the queue lists goes through.
MAX_SCANNED = 20_000

#: Messages read from a queue list per command.
CHUNK = 1000


@dataclass(frozen=True)
class BrokerKeys:
    """Where kombu keeps the messages: the queue lists (one per priority step) and the unacked hash."""

    queues: tuple[str, ...]
    unacked: str


@dataclass(frozen=True)
class Repair:
    person: str
    was: int
    now: int


def broker_keys(connection: Any, queue: str = "celery") -> BrokerKeys:
    """The Redis keys of ``queue`` and of the unacknowledged messages on a kombu Redis connection."""
    channel = connection.default_channel  # kombu's Redis channel: its priority steps and key names
    queues = tuple(dict.fromkeys(channel._q_for_pri(queue, pri) for pri in channel.priority_steps))
    return BrokerKeys(queues=queues, unacked=channel.unacked_key)


class InflightGuard:
    """Check the in-flight counts and repair those that stand still without a reason."""

    def __init__(
        self,
        redis: redis_lib.Redis,
        lanes: Lanes,
        *,
        stale_seconds: float = STALE_SECONDS,
        interval_seconds: float = CHECK_INTERVAL_SECONDS,
        max_scanned: int = MAX_SCANNED,
    ) -> None:
        self.redis = redis
        self.lanes = lanes
        self.stale_ms = int(stale_seconds * 1000)
        self.interval_ms = int(interval_seconds * 1000)
        self.max_scanned = max_scanned
        self._repair = scripts.INFLIGHT_REPAIR.register(redis, IDENTIFY_CODE=lanes.identify_code)

    def repair_if_due(self, broker: BrokerKeys, wake: Callable[[str, str], Any]) -> list[Repair]:
        """Check, unless a sweep of the fleet did within the interval; ``wake(person, head)`` sends a woken lane's head."""
        if not self.redis.set(keys.INFLIGHT_CHECK, "1", nx=True, px=self.interval_ms):
            return []
        return self.repair(broker, wake)

    def repair(self, broker: BrokerKeys, wake: Callable[[str, str], Any], now_ms: int | None = None) -> list[Repair]:
        now = int(time.time() * 1000) if now_ms is None else now_ms
        suspects = self._note(now)
        if not suspects:
            return []
        found = self._on_their_way(broker, set(suspects))
        if found is None:
            log.info("inflight check: the queue holds over %d messages; counts not recounted this time", self.max_scanned)
            return []
        repairs = []
        for person, was in suspects.items():
            truth = found.get(person, 0)
            if truth == was:
                continue
            repaired = self._repair(
                keys={
                    "inflight": keys.INFLIGHT,
                    "leases": keys.LEASES,
                    "lane_state": keys.LANE_STATE,
                    "counters": keys.COUNTERS,
                    "lane": keys.lane(person),
                },
                args={"person": person, "seen": was, "found": truth, "now": now, "dispatch_ms": self.lanes.dispatch_ms},
            )
            status, head = cast(list[str], repaired)
            if _text(status) != "repaired":
                continue
            log.warning("inflight repaired: %s counted %d events on their way, %d found; set to %d", person, was, truth, truth)
            repairs.append(Repair(person, was, truth))
            if _text(head):
                wake(person, _text(head))
        return repairs

    def _note(self, now: int) -> dict[str, int]:
        """Record since when each count stands at its value; the counts to recount (stale or below zero)."""
        counts = {_text(p): int(v) for p, v in cast(dict, self.redis.hgetall(keys.INFLIGHT)).items()}
        seen = {_text(p): _text(v) for p, v in cast(dict, self.redis.hgetall(keys.INFLIGHT_SEEN)).items()}
        suspects: dict[str, int] = {}
        fresh: dict[Any, Any] = {}  # redis-py types its mapping by what it encodes
        for person, count in counts.items():
            value, _, since = seen.get(person, "").partition("|")
            if value != str(count) or not since:
                fresh[person] = f"{count}|{now}"
                since = str(now)
            if count < 0 or (count > 0 and now - int(since) >= self.stale_ms):
                suspects[person] = count
        gone = [p for p in seen if p not in counts]
        pipe = self.redis.pipeline(transaction=False)
        if fresh:
            pipe.hset(keys.INFLIGHT_SEEN, mapping=fresh)
        if gone:
            pipe.hdel(keys.INFLIGHT_SEEN, *gone)
        pipe.execute()
        return suspects

    def _on_their_way(self, broker: BrokerKeys, people: set[str]) -> Counter[str] | None:
        """Per person among ``people``, their events in ingest messages not yet ingested; None if the queue is too long."""
        pending: dict[tuple[str, int], tuple[str, str]] = {}  # (delivery tag, seq) -> (person, seen key): both reads, once
        for _ in range(2):
            messages = self._messages(broker)
            if messages is None:
                return None
            for tag, envelope in _ingest_envelopes(messages):
                event, seq = envelope["event"], envelope["seq"]
                person = person_of(event)
                if person in people:
                    pending[(tag, seq)] = (person, keys.seen(str(event.get("messageId") or seq)))
        pipe = self.redis.pipeline(transaction=False)
        for _, seen_key in pending.values():
            pipe.get(seen_key)
        found: Counter[str] = Counter()
        for ((_, seq), (person, _)), seen in zip(pending.items(), pipe.execute()):
            if _text(seen) != str(seq):  # lane_ingest.lua takes nothing away for an event it ingested already
                found[person] += 1
        return found

    def _messages(self, broker: BrokerKeys) -> list[dict] | None:
        """The messages in the queue lists, then those in the unacked hash, as kombu keeps them."""
        raws: list[str] = []
        for queue in broker.queues:
            length = int(self.redis.llen(queue))
            if len(raws) + length > self.max_scanned:
                return None
            for start in range(0, length, CHUNK):
                raws += [_text(r) for r in cast(list, self.redis.lrange(queue, start, start + CHUNK - 1))]
        messages = [m for m in map(_loads, raws) if isinstance(m, dict)]
        for raw in cast(list, self.redis.hvals(broker.unacked)):
            kept = _loads(_text(raw))  # [message, exchange, routing key]
            if isinstance(kept, list) and kept and isinstance(kept[0], dict):
                messages.append(kept[0])
        return messages


def _ingest_envelopes(messages: Iterable[dict]) -> Iterator[tuple[str, dict]]:
    """(delivery tag, envelope) of every envelope in the ingest messages among ``messages``."""
    for message in messages:
        headers = message.get("headers")
        if not isinstance(headers, dict) or headers.get("task") != INGEST_TASK:
            continue
        properties = message.get("properties")
        if not isinstance(properties, dict):
            properties = {}
        tag = str(properties.get("delivery_tag") or "")
        try:
            body = _decode_body(message, properties)
        except (ValueError, TypeError):
            continue
        for envelope in ingest_envelopes(body) or []:
            yield tag, envelope


def _loads(raw: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value) if value is not None else ""


def ingest_envelopes(body: bytes | str) -> list[dict] | None:
    """The envelopes ({seq, event}) an ingest message's body carries (Celery's protocol 2:
    ``[args, kwargs, embed]``, args ``[envelopes]``), or None when it does not read as one."""
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not (isinstance(decoded, list) and decoded and isinstance(decoded[0], list) and decoded[0]):
        return None
    envelopes = decoded[0][0]
    if not isinstance(envelopes, list):
        return None
    return [e for e in envelopes if isinstance(e, dict) and isinstance(e.get("event"), dict) and isinstance(e.get("seq"), int)]


def people_of(envelopes: list[dict]) -> Counter[str]:
    """How many events of each person the envelopes carry."""
    return Counter(person_of(e["event"]) for e in envelopes)


def _decode_body(message: dict, properties: dict) -> bytes:
    body = message.get("body", "")
    if properties.get("body_encoding") == "base64":
        return base64.b64decode(body)
    return body.encode() if isinstance(body, str) else bytes(body)
