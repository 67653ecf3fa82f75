"""Running deliveries' leases on their lanes: renewed together, ended together.

A lane's lease tells the sweep that a worker is still on it; it runs out
after LEASE_SECONDS of silence, and then the head is sent again.  A worker
process renews the leases of every delivery it runs in one round trip, every
few seconds, from its liveness thread (``worker/liveness.py``), however long
a call to Intercom takes.

A task's token (the lane state while it runs the head) starts with the id of
its worker process, so that when a worker falls silent (SIGKILL, OOM) the
sweep can find the lanes it held and end their leases at once instead of
waiting for them to run out.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable

import redis as redis_lib

from worker.store import keys, scripts

#: The keys lane_renew.lua changes.
_RENEW_KEYS: scripts.LaneRenewKeys = {"leases": keys.LEASES, "lane_state": keys.LANE_STATE}

#: Between a worker's id and the rest of a task's token.
TOKEN_SEPARATOR = "/"


def new_token(worker: str) -> str:
    """A fresh token for a task run by ``worker`` (a worker process id, see worker/liveness.py)."""
    return f"{worker}{TOKEN_SEPARATOR}{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Lease:
    """The hold of one task (``token``) on ``person``'s lane."""

    person: str
    token: str
    taken_at: float = field(default_factory=time.monotonic)


class Leases:
    """The lease operations of a worker process and of the sweep."""

    def __init__(self, redis: redis_lib.Redis, lease_seconds: float) -> None:
        self.redis = redis
        self.lease_ms = int(lease_seconds * 1000)
        self._renew = scripts.LANE_RENEW.register(redis)

    def renew(self, leases: Iterable[Lease], pipe: Any) -> None:
        """Queue on ``pipe`` the renewal of each lease; one whose lane has moved on is left alone."""
        deadline = int(time.time() * 1000) + self.lease_ms
        for lease in leases:
            self._renew(keys=_RENEW_KEYS, args={"person": lease.person, "token": lease.token, "deadline": deadline}, client=pipe)

    def end_all_of(self, worker: str) -> int:
        """End now every lease held by ``worker``'s tasks; the sweep then sends their heads again.

        Scans the lane states (one pass, only when a worker has fallen silent):
        a lane is found by its state alone, however recently it was claimed.
        Returns how many leases were ended.
        """
        prefix, ended = worker + TOKEN_SEPARATOR, 0
        for person, state in self.redis.hscan_iter(keys.LANE_STATE, count=1000):
            state = state.decode() if isinstance(state, bytes) else state
            if state.startswith(prefix):
                # A deadline of 0 has passed: the same script that renews a lease ends it,
                # and only while the lane is still that task's.
                ended += int(self._renew(keys=_RENEW_KEYS, args={"person": person, "token": state, "deadline": 0}))
        return ended
