"""The counters over the last hour, for the console's charts (console/).

The counters (counters.py) only say how many since the start.  Beat's sweep,
which runs every second, appends a snapshot of them to a capped list once
per 10-s window, fleet-wide; the difference of two snapshots is what
happened between them.  The windows are those of Intercom's rate limit
(multiples of 10 s on the clock), so the difference of ``api_calls`` between
two consecutive snapshots is the calls made in one of Intercom's windows,
give or take the sweep's one-second jitter.

Each snapshot also carries the rate budget's limit per window when Intercom
has reported one (``X-RateLimit-Limit``, kept in the budget hash by
budget.py), else None.

Bounded: KEEP snapshots (an hour), each about 330 bytes of JSON
(docs/monitoring.md gives the measured cost).
"""

from __future__ import annotations

import json
import time
from typing import Any, cast

import redis as redis_lib

from worker.store import keys
from worker.store.budget import WINDOW_SECONDS
from worker.store.counters import Counters

#: Snapshots kept: an hour of 10-s windows.
KEEP = 360


class History:
    """Take and read the snapshots."""

    def __init__(self, redis: redis_lib.Redis) -> None:
        self.redis = redis

    def snapshot_if_due(self, budget_key: str | None = None, *, now: float | None = None) -> bool:
        """Append a snapshot unless one was taken in this 10-s window; True if this call took it.

        Safe on any number of beats at once: the first to set the window's
        guard takes the snapshot.  The guard outlives its window, so a sweep
        late in the window cannot take a second one.
        """
        now = time.time() if now is None else now
        window = int(now // WINDOW_SECONDS)
        if not self.redis.set(keys.history_taken(window), "1", nx=True, ex=2 * WINDOW_SECONDS):
            return False
        limit = self.redis.hget(budget_key, "limit") if budget_key else None
        entry = {
            "at": window * WINDOW_SECONDS,
            "taken": round(now, 3),
            "counts": Counters(self.redis).snapshot(),
            "limit": int(cast(str, limit)) if limit else None,
        }
        pipe = self.redis.pipeline(transaction=False)
        pipe.lpush(keys.HISTORY, json.dumps(entry, separators=(",", ":")))
        pipe.ltrim(keys.HISTORY, 0, KEEP - 1)
        pipe.execute()
        return True

    def entries(self) -> list[dict[str, Any]]:
        """Every snapshot kept, oldest first."""
        raw = cast(list[str], self.redis.lrange(keys.HISTORY, 0, KEEP - 1))
        return [json.loads(item) for item in reversed(raw)]
