"""What a worker process holds for its lifetime: one of each, shared by its threads.

One httpx client (pooled connections), one Redis connection pool, the
mappings, and the stores built on them.  Built on first use in each process
(after a prefork pool forks, never at import time) from ``Settings.from_env()``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Self

import redis as redis_lib

from worker.actions import IDENTIFY, LANE_CODES
from worker.actions.common import WorkspacePolicy
from worker.actions.unchanged import SkipPolicy
from worker.intercom.client import IntercomClient
from worker.mappings import Mapping, load_mappings
from worker.policy import RetryPolicy
from worker.settings import Settings
from worker.store.attributes import Attributes
from worker.store.budget import RateBudget
from worker.store.companies import CompanyCache
from worker.store.connect import connect
from worker.store.contacts import ContactCache
from worker.store.counters import Counters
from worker.store.deadletters import DeadLetters
from worker.store.deletions import Deletions
from worker.store.dropped import DroppedFields
from worker.store.lanes import Lanes
from worker.store.outcomes import Outcomes
from worker.store.pause import Pause


def build_lanes(redis: redis_lib.Redis, settings: Settings) -> Lanes:
    """The lanes, with the action table's lane codes and the settings' times."""
    return Lanes(
        redis,
        lane_codes=LANE_CODES,
        identify_action=IDENTIFY.name,
        lease_seconds=settings.lease_seconds,
        dispatch_seconds=settings.dispatch_seconds,
        park_hold_seconds=settings.park_hold,
    )


@dataclass
class Runtime:
    settings: Settings
    redis: redis_lib.Redis
    lanes: Lanes
    contacts: ContactCache
    counters: Counters
    dead_letters: DeadLetters
    budget: RateBudget
    pause: Pause
    client: IntercomClient
    mappings: dict[str, Mapping]
    policy: RetryPolicy
    companies: CompanyCache
    skip: SkipPolicy
    outcomes: Outcomes
    deletions: Deletions
    dropped_fields: DroppedFields
    attributes: Attributes
    workspace: WorkspacePolicy

    @classmethod
    def build(cls, settings: Settings) -> Self:
        redis = connect(settings.redis_url, decode_responses=True, health_check_interval=30)
        lanes = build_lanes(redis, settings)
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
            # Calls made for a delivery go through its run (worker/delivery.py), which adds the lease.
            client=IntercomClient.from_settings(settings, budget=budget),
            mappings={m.name: m for m in load_mappings(settings.mappings_file)},
            policy=RetryPolicy.from_settings(settings),
            companies=CompanyCache(redis),
            outcomes=Outcomes(redis),
            deletions=Deletions(redis),
            dropped_fields=DroppedFields(redis),
            attributes=Attributes(redis),
            workspace=WorkspacePolicy(merge_leads_by_email=settings.merge_leads_by_email),
            skip=SkipPolicy(enabled=settings.skip_unchanged, last_seen_resolution=settings.last_seen_resolution),
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
