"""One running fake: the current config, the workspace, the traffic machinery, and one lock.

The lock guards state mutations only (handlers hold it for microseconds); latency sleeps and
I/O happen outside it, so hundreds of slow calls can be in flight at once.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from .config import FakeConfig
from .state import WorkspaceState
from .traffic import FaultInjector, RateLimiter, RequestLog, Stats, parse_fault_queue


class FakeIntercom:
    """The fake's whole in-memory world, shared by the ASGI app and the control endpoints."""

    def __init__(self, config: FakeConfig, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.initial_config = config
        self.config = config
        self.lock = threading.RLock()
        self.workspace = WorkspaceState(config, clock)
        self.limiter = RateLimiter()
        self.faults = FaultInjector(config.seed)
        self.log = RequestLog(config.request_log_size)
        self.stats = Stats(clock())

    def configure(self, changes: dict[str, Any]) -> FakeConfig:
        """Apply a partial config change at runtime; raises ValueError on a bad one.

        Besides FakeConfig fields it understands: ``add_contact_attributes`` /
        ``add_company_attributes`` (names to add to the workspace), ``outage_in`` (seconds from
        now → ``outage_start``) and ``queue_faults`` (``[{"status": 503, "count": 2}]``).
        """
        changes = dict(changes)
        with self.lock:
            config = self.config
            for key, attr in (("add_contact_attributes", "contact_attributes"), ("add_company_attributes", "company_attributes")):
                if key in changes:
                    added = changes.pop(key)
                    added = [added] if isinstance(added, str) else list(added)
                    changes[attr] = (*changes.get(attr, getattr(config, attr)), *added)
            if "outage_in" in changes:
                changes["outage_start"] = self.clock() + float(changes.pop("outage_in"))
            queue = parse_fault_queue(changes.pop("queue_faults", []))
            for key in ("tokens", "contact_attributes", "company_attributes"):
                if isinstance(changes.get(key), list):
                    changes[key] = tuple(changes[key])
            new_config = config.changed(**changes)
            for status, count in queue:
                self.faults.enqueue(status, count)
            self._apply(new_config)
            if "seed" in changes:
                self.faults.reset(new_config.seed)
            return new_config

    def _apply(self, config: FakeConfig) -> None:
        self.config = config
        self.workspace.config = config
        self.log.resize(config.request_log_size)

    def reset(self, restore_config: bool = False) -> None:
        """Empty the workspace, the log, the counters, the windows and the fault queue."""
        with self.lock:
            if restore_config:
                self._apply(self.initial_config)
            self.workspace.reset()
            self.limiter.reset()
            self.faults.reset(self.config.seed)
            self.log.clear()
            self.stats = Stats(self.clock())

    def config_json(self) -> dict[str, Any]:
        """The current config (tokens redacted) plus the pending fault queue."""
        data = self.config.to_dict(redact_tokens=True)
        data["queued_faults"] = self.faults.queued()
        return data

    def stats_json(self) -> dict[str, Any]:
        """GET /_fake/stats."""
        with self.lock:
            extra = {
                "requests_logged": len(self.log),
                "requests_total": self.log.total,
                "state_counts": self.workspace.counts(),
            }
            return self.stats.to_json(self.clock(), extra)
