"""A running delivery's lease on its lane, kept alive while it calls Intercom.

A lane's lease tells the sweep that a worker is still on it; it runs out
after LEASE_SECONDS of silence, and then the head is sent again.  One
delivery can take several calls of up to the HTTP timeout each, so the lease
is renewed before each call to Intercom (the delivery run asks, see
``worker/delivery.py``) — at most every third of the lease, to keep the cost
at one round trip per several calls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from worker.store.lanes import Lanes


@dataclass
class Lease:
    """The hold of one task (``token``) on ``person``'s lane."""

    lanes: Lanes
    person: str
    token: str
    renewed_at: float = field(default_factory=time.monotonic)

    def renew_if_due(self) -> None:
        """Renew the lease when a third of it has passed since the last renewal."""
        if time.monotonic() - self.renewed_at >= self.lanes.lease_ms / 1000 / 3:
            self.lanes.renew(self.person, self.token)
            self.renewed_at = time.monotonic()
