"""Dead letters: deliveries given up, kept in Redis with their reason.

Each dead letter holds the delivery (the event, its mapping and action), the
reason, Intercom's last response, the attempts and the times, so that an
operator can see why and replay it once the cause is fixed.  A replay puts
the delivery back at the end of its person's lane, so it keeps that person's
order from then on.

Retention is bounded (a count and an age) so that a long outage of a bad
mapping cannot fill Redis.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Iterator, cast

import redis as redis_lib

from worker.store import keys
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

    @classmethod
    def from_json(cls, raw: str) -> "DeadLetter":
        data = json.loads(raw)
        delivery = data.get("delivery") or None
        return cls(
            id=data["id"],
            person=data.get("person", ""),
            action=(delivery or {}).get("action"),
            reason=data.get("reason", ""),
            response=data.get("response"),
            attempts=int(data.get("attempts") or 0),
            dead_at=int(data.get("dead_at") or 0),
            delivery=delivery,
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
            for raw in self.redis.hmget(keys.DEAD, batch):
                if raw is None:
                    continue
                dead = DeadLetter.from_json(cast(str, raw))  # a decode_responses client answers str
                if _matches(dead, reason, person, wanted):
                    yield dead

    def replay(self, letters: list[DeadLetter]) -> tuple[int, list[tuple[str, str]]]:
        """Put letters back in their lanes; returns (replayed, [(person, head to send)])."""
        replayed, to_send = 0, []
        for dead in letters:
            if not dead.delivery:
                continue
            ok, head = self.lanes.replay(dead.id, dead.person, dead.delivery, dead.delivery["action"])
            replayed += ok
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
        pipe.execute()
        return len(old)


def _matches(dead: DeadLetter, reason: str | None, person: str | None, ids: set[str] | None) -> bool:
    if ids is not None and dead.id not in ids:
        return False
    if person is not None and dead.person != person:
        return False
    return reason is None or reason.lower() in dead.reason.lower()
