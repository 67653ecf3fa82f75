"""Custom attributes: which the workspace defines, and the values held back until one exists.

Intercom refuses a write that names a custom attribute it does not define (400), and the
whole identify used to fail with it.  The relay keeps the workspace's attributes in Redis,
so every worker knows an attribute the moment ``intercom-relay attributes create`` (or a
worker, under UNKNOWN_ATTRIBUTES=create) makes it:

    attributes:known:<model>          hash name -> data_type (GET /data_attributes, then additions)
    attributes:held:<model>:<name>    hash target -> JSON value: held values, per contact id
                                      (contacts) or company_id (companies); a later write of the
                                      same attribute to the same target takes its entry away,
                                      so a replay never overwrites a newer value
    attributes:unknown                hash "model:name" -> values held so far
    attributes:example                hash "model:name" -> JSON of the latest value held
    attributes:created                how many attributes the relay created itself
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

import redis as redis_lib

from worker.store import keys

MODELS = ("contact", "company")


@dataclass(frozen=True)
class UnknownAttribute:
    """An attribute values were held for: its model, name, count and an example value."""

    model: str
    name: str
    count: int
    example: Any
    held: int


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

    def hold(self, model: str, target: str, values: dict[str, Any]) -> None:
        """Keep values Intercom could not take for the target, newest winning, and count them."""
        pipe = self.redis.pipeline()
        for name, value in values.items():
            encoded = json.dumps(value, separators=(",", ":"))
            pipe.hset(keys.attributes_held(model, name), target, encoded)
            pipe.hincrby(keys.ATTRIBUTES_UNKNOWN, f"{model}:{name}", 1)
            pipe.hset(keys.ATTRIBUTES_EXAMPLE, f"{model}:{name}", encoded)
        pipe.execute()

    def written(self, model: str, target: str, names: list[str]) -> None:
        """These attributes were just written to the target: a held older value must never follow."""
        if names:
            pipe = self.redis.pipeline(transaction=False)
            for name in names:
                pipe.hdel(keys.attributes_held(model, name), target)
            pipe.execute()

    def held(self, model: str, name: str) -> dict[str, Any]:
        """target -> value held for the attribute."""
        raw = cast(dict[str, str], self.redis.hgetall(keys.attributes_held(model, name)))
        return {target: json.loads(value) for target, value in raw.items()}

    def release(self, model: str, name: str, target: str, value: Any) -> None:
        """The held value was sent: drop it, unless a newer one was held meanwhile."""
        key = keys.attributes_held(model, name)
        if self.redis.hget(key, target) == json.dumps(value, separators=(",", ":")):
            self.redis.hdel(key, target)

    def unknown(self) -> list[UnknownAttribute]:
        """Every attribute values were held for, most held first."""
        counts = cast(dict[str, str], self.redis.hgetall(keys.ATTRIBUTES_UNKNOWN))
        examples = cast(dict[str, str], self.redis.hgetall(keys.ATTRIBUTES_EXAMPLE))
        found = []
        for key, count in counts.items():
            model, _, name = key.partition(":")
            held = int(self.redis.hlen(keys.attributes_held(model, name)))
            found.append(UnknownAttribute(model, name, int(count), json.loads(examples.get(key, "null")), held))
        return sorted(found, key=lambda a: (-a.count, a.model, a.name))

    def count_created(self) -> int:
        """One more attribute the relay created itself; returns how many so far."""
        return int(self.redis.incr(keys.ATTRIBUTES_CREATED))

    def created(self) -> int:
        return int(self.redis.get(keys.ATTRIBUTES_CREATED) or 0)
