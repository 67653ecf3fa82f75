"""Custom attributes: which the workspace defines, and the values held back until one exists.

Intercom refuses a write that names a custom attribute it does not define (400), and with
it the whole identify.  The relay keeps the workspace's attributes in Redis,
so every worker knows an attribute the moment ``intercom-relay attributes create`` (or a
worker, under UNKNOWN_ATTRIBUTES=create) makes it.

The values it could not send are a dead letter with reason ``unknown_attribute``, one per
contact or company (id ``attr:<model>:<target>``), listed, replayed and purged with the
others (worker/store/deadletters.py).  The letter's values live in a hash of their own, so
that holding a value, and taking one away when a later write sets the attribute, is one
atomic step on that contact's values alone; the letter goes when its last value does::

    attributes:known:<model>              hash name -> data_type (GET /data_attributes, then additions)
    attributes:held-for:<model>:<target>  hash name -> JSON value held for a contact id (contacts)
                                          or a company_id (companies); a later write of the same
                                          attribute to the same target takes its value away, so
                                          a replay never overwrites a newer value
    dead / dead_index  attr:<model>:<target>   the dead letter: person, reason, when (no values)
    attributes:letters                    set of those letters' ids (counted by ``status``)
    attributes:unknown                    hash "model:name" -> values held so far
    attributes:example                    hash "model:name" -> JSON of the latest value held
    attributes:created                    how many attributes the relay created itself
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Iterator, cast

import redis as redis_lib

from worker.store import keys, scripts

MODELS = ("contact", "company")

#: The reason of a held-values dead letter (``dead-letters replay --reason unknown_attribute``).
REASON = "unknown_attribute"

#: The action whose write left the values out, by model (shown with the letter).
ACTION_OF = {"contact": "identify_contact", "company": "identify_company"}

LETTER_PREFIX = "attr:"


@dataclass(frozen=True)
class UnknownAttribute:
    """An attribute values were held for: its model, name, count, an example value, and how many wait."""

    model: str
    name: str
    count: int
    example: Any
    held: int


@dataclass(frozen=True)
class HeldValues:
    """The values held for one contact or company: the content of its unknown_attribute dead letter."""

    letter_id: str
    model: str
    target: str
    values: dict[str, Any]


def letter_id(model: str, target: str) -> str:
    """The id of the dead letter holding a contact's or company's values."""
    return f"{LETTER_PREFIX}{model}:{target}"


def parse_letter_id(dead_id: str) -> tuple[str, str] | None:
    """(model, target) of a held-values letter's id, or None for a delivery's dead letter."""
    if not dead_id.startswith(LETTER_PREFIX):
        return None
    model, _, target = dead_id.removeprefix(LETTER_PREFIX).partition(":")
    return (model, target) if model in MODELS and target else None


def letter_reason(names: list[str]) -> str:
    """``unknown_attribute: a, b``: the reason names the attributes held."""
    return f"{REASON}: {', '.join(sorted(names))}" if names else REASON


class Attributes:
    """The workspace's custom attributes and the held values, in Redis (``decode_responses=True``)."""

    def __init__(self, redis: redis_lib.Redis) -> None:
        self.redis = redis

    def known(self, model: str) -> dict[str, str] | None:
        """name -> data_type, or None when the list was never read."""
        found = cast(dict[str, str], self.redis.hgetall(keys.attributes_known(model)))
        return {k: v for k, v in found.items() if k != ""} if found else None

    def store(self, model: str, attributes: dict[str, str]) -> None:
        """Replace the list (an empty one is kept as read: the "" entry marks it so)."""
        pipe = self.redis.pipeline()
        pipe.delete(keys.attributes_known(model))
        pipe.hset(keys.attributes_known(model), "", "")
        if attributes:
            pipe.hset(keys.attributes_known(model), mapping=cast(Any, attributes))
        pipe.execute()

    def add(self, model: str, name: str, data_type: str) -> None:
        """One attribute created since the list was read."""
        self.redis.hset(keys.attributes_known(model), mapping={"": "", name: data_type})

    def hold(self, model: str, target: str, values: dict[str, Any], *, person: str | None = None) -> None:
        """Keep values Intercom could not take for the target, newest winning, as its dead letter; count them."""
        dead_id = letter_id(model, target)
        now = int(time.time() * 1000)
        meta = {"id": dead_id, "person": person or "", "reason": REASON, "action": ACTION_OF[model], "attempts": 0, "dead_at": now}
        meta["held"] = {"model": model, "target": target}
        pipe = self.redis.pipeline()
        for name, value in values.items():
            encoded = _encode(value)
            pipe.hset(keys.attributes_held(model, target), name, encoded)
            pipe.hincrby(keys.ATTRIBUTES_UNKNOWN, f"{model}:{name}", 1)
            pipe.hset(keys.ATTRIBUTES_EXAMPLE, f"{model}:{name}", encoded)
        pipe.hset(keys.DEAD, dead_id, json.dumps(meta, separators=(",", ":")))
        pipe.zadd(keys.DEAD_INDEX, {dead_id: now})  # the newest value held dates the letter (and its retention)
        pipe.sadd(keys.ATTRIBUTES_LETTERS, dead_id)
        pipe.execute()

    def written(self, model: str, target: str, names: list[str]) -> None:
        """These attributes were just written to the target: a held older value must never follow."""
        if names:
            self._unhold(model, target, [(name, "") for name in names])

    def release(self, model: str, name: str, target: str, value: Any) -> None:
        """The held value was sent: drop it, unless a newer one was held meanwhile."""
        self._unhold(model, target, [(name, _encode(value))])

    def _unhold(self, model: str, target: str, pairs: list[tuple[str, str]]) -> int:
        if not hasattr(self, "_unhold_script"):
            self._unhold_script = scripts.ATTRIBUTES_UNHOLD.register(self.redis)
        removed = self._unhold_script(
            keys={
                "held": keys.attributes_held(model, target),
                "dead": keys.DEAD,
                "dead_index": keys.DEAD_INDEX,
                "letters": keys.ATTRIBUTES_LETTERS,
            },
            args={"letter": letter_id(model, target), "values": [x for pair in pairs for x in pair]},
        )
        return int(removed)

    def letters(self, ids: list[str] | None = None, *, chunk: int = 500) -> Iterator[HeldValues]:
        """The held values of every held-values letter kept, or of those named."""
        wanted = sorted(cast(set[str], self.redis.smembers(keys.ATTRIBUTES_LETTERS))) if ids is None else ids
        parsed = [(dead_id, found) for dead_id in wanted if (found := parse_letter_id(dead_id))]
        for start in range(0, len(parsed), chunk):
            part = parsed[start : start + chunk]
            pipe = self.redis.pipeline(transaction=False)
            for _, (model, target) in part:
                pipe.hgetall(keys.attributes_held(model, target))
            for (dead_id, (model, target)), raw in zip(part, pipe.execute()):
                if raw:
                    yield HeldValues(dead_id, model, target, {name: json.loads(value) for name, value in raw.items()})

    def held(self, model: str, name: str) -> dict[str, Any]:
        """target -> value held for the attribute."""
        return {h.target: h.values[name] for h in self.letters() if h.model == model and name in h.values}

    def count_letters(self) -> int:
        """How many contacts and companies have values held (their unknown_attribute dead letters)."""
        return int(self.redis.scard(keys.ATTRIBUTES_LETTERS))

    def unknown(self) -> list[UnknownAttribute]:
        """Every attribute values were held for, most held first."""
        counts = cast(dict[str, str], self.redis.hgetall(keys.ATTRIBUTES_UNKNOWN))
        examples = cast(dict[str, str], self.redis.hgetall(keys.ATTRIBUTES_EXAMPLE))
        waiting: dict[str, int] = {}
        for held in self.letters():
            for name in held.values:
                waiting[f"{held.model}:{name}"] = waiting.get(f"{held.model}:{name}", 0) + 1
        found = []
        for key, count in counts.items():
            model, _, name = key.partition(":")
            found.append(UnknownAttribute(model, name, int(count), json.loads(examples.get(key, "null")), waiting.get(key, 0)))
        return sorted(found, key=lambda a: (-a.count, a.model, a.name))

    def count_created(self) -> int:
        """One more attribute the relay created itself; returns how many so far."""
        return int(self.redis.incr(keys.ATTRIBUTES_CREATED))

    def created(self) -> int:
        return int(self.redis.get(keys.ATTRIBUTES_CREATED) or 0)


def _encode(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
