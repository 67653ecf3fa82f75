"""What a worker process holds for its lifetime: one of each, shared by its threads.

One httpx client (pooled connections), one Redis connection pool, the
mappings, and the stores built on them.  Built on first use in each process
(after a prefork pool forks, never at import time) from ``Settings.from_env()``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import redis as redis_lib

from worker.intercom.client import IntercomClient
from worker.mappings import Mapping, load_mappings
from worker.settings import Settings
from worker.store.budget import RateBudget
from worker.store.contacts import ContactCache
from worker.store.counters import Counters
from worker.store.deadletters import DeadLetters
from worker.store.lanes import Lanes
from worker.store.lease import RenewingBudget
from worker.store.pause import Pause


@dataclass
class Runtime:
    settings: Settings
    redis: Any
    lanes: Lanes
    contacts: ContactCache
    counters: Counters
    dead_letters: DeadLetters
    budget: RateBudget
    pause: Pause
    client: IntercomClient
    mappings: dict[str, Mapping]

    @classmethod
    def build(cls, settings: Settings) -> "Runtime":
        redis = redis_lib.Redis.from_url(settings.redis_url, decode_responses=True, health_check_interval=30)
        lanes = Lanes(
            redis, lease_seconds=settings.lease_seconds, dispatch_seconds=settings.dispatch_seconds, park_hold_seconds=settings.park_hold
        )
        budget = RateBudget(redis, settings.token_id, share=settings.rate_share)
        return cls(
            settings=settings,
            redis=redis,
            lanes=lanes,
            contacts=ContactCache(redis),
            counters=Counters(redis),
            dead_letters=DeadLetters(redis, lanes),
            budget=budget,
            pause=Pause(redis, settings.token_id, settings.pause_probe_seconds),
            client=IntercomClient.from_settings(settings, budget=RenewingBudget(budget, lanes)),
            mappings={m.name: m for m in load_mappings(settings.mappings_file)},
        )

    def close(self) -> None:
        self.client.close()
        self.redis.close()


_lock = threading.Lock()
_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    """This process's runtime, built on first use."""
    global _runtime
    if _runtime is None:
        with _lock:
            if _runtime is None:
                _runtime = Runtime.build(Settings.from_env())
    return _runtime


def reset_runtime() -> None:
    """Forget the runtime (after a fork: sockets must not be shared with the parent)."""
    global _runtime
    _runtime = None
