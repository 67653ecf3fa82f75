"""Dead letters: deliveries given up, kept in Redis with their reason.

Each dead letter holds the delivery (the event, its mapping and action), the
reason, Intercom's last response, the attempts and the times, so that an
operator can see why and replay it once the cause is fixed.  A replay puts
the delivery back at the end of its person's lane, so it keeps that person's
order from then on.

Retention is bounded (a count and an age) so that a long outage of a bad
mapping cannot fill Redis.

Custom attribute values the workspace could not take (UNKNOWN_ATTRIBUTES=hold) are dead
letters too, with reason ``unknown_attribute``: one per contact or company, holding no
delivery but the values (worker/store/attributes.py).  Their delivery went out without
them, so a replay does not put anything back in a lane: it sends the values that are
still held (worker/actions/attribute_replay.py), and a purge drops them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Iterator, cast

import redis as redis_lib

from worker.store import keys
from worker.store.attributes import Attributes, letter_reason, parse_letter_id
from worker.store.deletions import DELETE_ACTION, Deletions
from worker.store.lanes import Lanes

#: Dead letters kept at most; the oldest go first.
DEFAULT_MAX_DEAD_LETTERS = 100_000

#: And for at most this long.
DEFAULT_MAX_AGE_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class DeadLetter:
    id: str
    person: str
    action: str | None
    reason: str
    response: Any
    attempts: int
    dead_at: int
    delivery: dict | None
    #: Held attribute values ({model, target, values}) instead of a delivery: reason unknown_attribute.
    held: dict | None = None
    #: What a worker received and could not read, instead of a delivery (worker/store/unreadable.py).
    message: dict | None = None

    @classmethod
    def from_json(cls, raw: str, held_values: dict[str, Any] | None = None) -> "DeadLetter":
        """The letter as stored; a held-values letter takes its values (and the reason naming them) from ``held_values``."""
        data = json.loads(raw)
        delivery = data.get("delivery") or None
        held = {**data["held"], "values": held_values or {}} if data.get("held") else None
        return cls(
            id=data["id"],
            person=data.get("person", ""),
            action=(delivery or {}).get("action") or data.get("action"),
            reason=letter_reason(list(held_values or {})) if held else data.get("reason", ""),
            response=data.get("response"),
            attempts=int(data.get("attempts") or 0),
            dead_at=int(data.get("dead_at") or 0),
            delivery=delivery,
            held=held,
            message=data.get("message"),
        )

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "person": self.person,
            "action": self.action,
            "reason": self.reason,
            "response": self.response,
            "attempts": self.attempts,
            "dead_at": self.dead_at,
            "event": (self.delivery or {}).get("event"),
            "mapping": (self.delivery or {}).get("mapping"),
            **({"held": self.held} if self.held else {}),
            **({"message": self.message} if self.message else {}),
        }


def letter(
    delivery_id: str, record: dict, reason: str, *, response: Any = None, attempts: int = 0, first_failure_ms: int | None = None
) -> dict:
    """The JSON body of a dead letter, as lanes.finish stores it."""
    return {
        "id": delivery_id,
        "person": record.get("person"),
        "reason": reason,
        "response": response,
        "attempts": attempts,
        "first_failure_at": first_failure_ms,
        "dead_at": int(time.time() * 1000),
        "delivery": record,
    }


class DeadLetters:
    """List, replay, purge and trim dead letters."""

    def __init__(self, redis: redis_lib.Redis, lanes: Lanes) -> None:
        self.redis = redis
        self.lanes = lanes

    def count(self) -> int:
        return int(self.redis.zcard(keys.DEAD_INDEX))

    def iter(
        self, *, reason: str | None = None, person: str | None = None, ids: list[str] | None = None, chunk: int = 500
    ) -> Iterator[DeadLetter]:
        """Dead letters oldest first, filtered by reason (substring), person or ids."""
        wanted = set(ids) if ids else None
        start = 0
        while True:
            batch: list[str] = cast(list[str], self.redis.zrange(keys.DEAD_INDEX, start, start + chunk - 1))
            if not batch:
                return
            start += chunk
            for dead in load(self.redis, [i for i in batch if wanted is None or i in wanted]):
                if _matches(dead, reason, person, wanted):
                    yield dead

    def get(self, ids: list[str]) -> list[DeadLetter]:
        """The letters of ``ids`` still kept."""
        return load(self.redis, ids)

    def replay(self, letters: list[DeadLetter]) -> tuple[int, list[tuple[str, str]]]:
        """Put letters back in their lanes; returns (replayed, [(person, head to send)])."""
        replayed, to_send = 0, []
        for dead in letters:
            if not dead.delivery:
                continue  # held attribute values: worker/actions/attribute_replay.py sends them
            ok, head = self.lanes.replay(dead.id, dead.person, dead.delivery, dead.delivery["action"])
            replayed += ok
            if ok and dead.delivery["action"] == DELETE_ACTION:
                Deletions(self.redis).replayed(dead.delivery)
            if head:
                to_send.append((dead.person, head))
        return replayed, to_send

    def purge(self, letters: list[DeadLetter]) -> int:
        ids = [d.id for d in letters]
        if not ids:
            return 0
        pipe = self.redis.pipeline()
        pipe.hdel(keys.DEAD, *ids)
        pipe.zrem(keys.DEAD_INDEX, *ids)
        _drop_held(pipe, ids)
        return int(pipe.execute()[0])

    def trim(self, *, max_count: int = DEFAULT_MAX_DEAD_LETTERS, max_age: float = DEFAULT_MAX_AGE_SECONDS) -> int:
        """Drop the oldest letters beyond the count, and those older than the age."""
        cutoff = int((time.time() - max_age) * 1000)
        old: list[str] = cast(list[str], self.redis.zrangebyscore(keys.DEAD_INDEX, "-inf", cutoff, start=0, num=10_000))
        excess = self.count() - len(old) - max_count
        if excess > 0:
            old += cast(list[str], self.redis.zrange(keys.DEAD_INDEX, len(old), len(old) + excess - 1))
        if not old:
            return 0
        pipe = self.redis.pipeline()
        pipe.hdel(keys.DEAD, *old)
        pipe.zrem(keys.DEAD_INDEX, *old)
        _drop_held(pipe, old)
        pipe.execute()
        return len(old)


def load(redis: redis_lib.Redis, ids: list[str]) -> list[DeadLetter]:
    """The dead letters of ``ids`` still kept, in the order given; held-values letters with their values."""
    if not ids:
        return []
    raws = cast(list[str | None], redis.hmget(keys.DEAD, ids))  # a decode_responses client answers str
    held_ids = [dead_id for dead_id, raw in zip(ids, raws) if raw is not None and parse_letter_id(dead_id)]
    values = {h.letter_id: h.values for h in Attributes(redis).letters(held_ids)} if held_ids else {}
    found = []
    for dead_id, raw in zip(ids, raws):
        if raw is None:
            continue
        if dead_id in values or not parse_letter_id(dead_id):
            found.append(DeadLetter.from_json(raw, values.get(dead_id)))
    return found


def _drop_held(pipe: Any, ids: list[str]) -> None:
    """Queue: the values of the held-values letters among ``ids`` go with their letters."""
    for dead_id in ids:
        found = parse_letter_id(dead_id)
        if found:
            pipe.delete(keys.attributes_held(*found))
            pipe.srem(keys.ATTRIBUTES_LETTERS, dead_id)


def _matches(dead: DeadLetter, reason: str | None, person: str | None, ids: set[str] | None) -> bool:
    if ids is not None and dead.id not in ids:
        return False
    if person is not None and dead.person != person:
        return False
    return reason is None or reason.lower() in dead.reason.lower()
