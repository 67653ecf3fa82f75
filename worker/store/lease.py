"""Keeping a running delivery's lease alive while it calls Intercom.

A lane's lease tells the sweep that a worker is still on it; it runs out
after LEASE_SECONDS of silence, and then the head is sent again.  One
delivery can take several calls of up to the HTTP timeout each, so the lease
is renewed before each call to Intercom — at most every third of the lease,
to keep the cost at one round trip per several calls.

The delivery being run is known per thread (a context variable set by
``worker/delivery.py``); the renewal rides on the Intercom client's
before-each-request hook, wrapped around the fleet's rate budget.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from worker.store.lanes import Lanes


@dataclass
class Lease:
    person: str
    token: str
    renewed_at: float


current_lease: ContextVar[Lease | None] = ContextVar("current_lease", default=None)


class RenewingBudget:
    """The rate budget, renewing the current delivery's lease before each call."""

    def __init__(self, budget: Any, lanes: Lanes) -> None:
        self.budget = budget
        self.lanes = lanes
        self.every = lanes.lease_ms / 1000 / 3

    def acquire(self) -> float:
        lease = current_lease.get()
        if lease is not None and time.monotonic() - lease.renewed_at >= self.every:
            self.lanes.renew(lease.person, lease.token)
            lease.renewed_at = time.monotonic()
        return self.budget.acquire()

    def observe(self, response: Any, slot: float | None = None) -> None:
        self.budget.observe(response, slot)
