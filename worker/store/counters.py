"""Fleet-wide pipeline counters, kept in one Redis hash.

Every accepted event ends in exactly one countable state (docs/design.md, guarantee
2).  The unit at the door is the *event*; after ingestion it is the
*delivery* (one event through one mapping; with the default mappings every
event makes exactly one delivery):

    accepted = duplicate + filtered + ingested + unreadable_events + (waiting to be ingested)
    deliveries = delivered + dead_lettered + deleted + (in a lane, parked or retrying)

The Lua scripts of lanes.py move these counters in the same atomic step as
the state change they count, so the sums hold at every instant.
"""

from __future__ import annotations

from typing import Any

import redis as redis_lib

from worker.store import keys

#: Counters that only grow.
TOTALS = (
    "accepted",  # events the door accepted (durable in Redis)
    "refused",  # events the door refused as invalid
    "duplicate",  # accepted again with a messageId already seen: delivered once
    "filtered",  # events that triggered no mapping
    "ingested",  # events expanded into one or more deliveries
    "deliveries",  # deliveries created by ingestion (and by dead-letter replays)
    "delivered",  # deliveries Intercom accepted
    "dead_lettered",  # deliveries given up, with their reason
    "deleted",  # deliveries dropped unsent: their person was deleted after they were accepted
    "rate_limited",  # 429 answers from Intercom
    "api_calls",  # HTTP calls made to Intercom
    "unchanged",  # delivered without a call: Intercom already held what they carried (SKIP_UNCHANGED)
    "coalesced",  # identifies delivered in the call of an earlier identify of the same person
    "unreadable",  # queue messages no worker could read, kept as dead letters with their raw body (worker/consumer.py)
    "unreadable_events",  # accepted events inside those messages, where the body could be read that far
    "inflight_repaired",  # in-flight counts the sweep found stuck and set to what is on its way (inflight.py)
)

#: Counters that go up and down: how many deliveries are in that state now.
GAUGES = ("parked", "retrying")


class Counters:
    """Read and bump the counters; ``snapshot()`` is what ``status`` shows."""

    def __init__(self, redis: redis_lib.Redis) -> None:
        self.redis = redis

    def incr(self, name: str, amount: int = 1, *, pipe: Any = None) -> None:
        (pipe or self.redis).hincrby(keys.COUNTERS, name, amount)

    def snapshot(self) -> dict[str, int]:
        raw = self.redis.hgetall(keys.COUNTERS)
        counts = {name: int(raw.get(name, 0)) for name in TOTALS + GAUGES}
        counts["backlog"] = backlog(counts)
        return counts


def backlog(c: dict[str, int]) -> int:
    """Accepted and not yet finished: waiting at the door, in lanes, parked or retrying."""
    not_ingested = c["accepted"] - c["duplicate"] - c["filtered"] - c["ingested"] - c["unreadable_events"]
    unfinished = c["deliveries"] - c["delivered"] - c["dead_lettered"] - c["deleted"]
    return not_ingested + unfinished
