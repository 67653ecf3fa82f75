"""Fields dropped from events because their mapped value could not be converted.

A value such as ``signed_up_at: "last tuesday"`` or ``size: "about 40"`` costs only its
field, not the whole event (STRICT_FIELDS=false, the default): the action leaves it out,
logs it, and counts it here, per ``action.field``, for ``intercom-relay status``.
"""

from __future__ import annotations

from typing import cast

import redis as redis_lib

from worker.store import keys


class DroppedFields:
    """Counts of dropped fields, fleet-wide, in Redis (a ``decode_responses=True`` client)."""

    def __init__(self, redis: redis_lib.Redis) -> None:
        self.redis = redis

    def add(self, action: str, names: list[str]) -> None:
        """Count one drop of each named field of the action."""
        if not names:
            return
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hincrby(keys.DROPPED_FIELDS, f"{action}.{name}", 1)
        pipe.execute()

    def snapshot(self) -> dict[str, int]:
        """``{"action.field": count}``."""
        raw = cast(dict[str, str], self.redis.hgetall(keys.DROPPED_FIELDS))
        return {name: int(count) for name, count in sorted(raw.items())}
