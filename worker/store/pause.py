"""Pausing the destination when Intercom refuses the access token (401).

A bad token fails every event the same way; dead-lettering them all would
turn one configuration mistake into a flood of dead letters.  Instead the
first 401 pauses delivery for that token: lanes sleep and are not sent,
``status`` and the logs say why, and the sweep probes ``GET /me`` until the
token works again, then delivery resumes where it stopped.
"""

from __future__ import annotations

import json
import time

import redis as redis_lib

from worker.store import keys

#: How long a worker trusts its last look at the pause flag.
LOCAL_CHECK_SECONDS = 1.0


class Pause:
    def __init__(self, redis: redis_lib.Redis, token_id: str, probe_interval: float) -> None:
        """``probe_interval``: how often a paused destination is probed (a setting)."""
        self.redis = redis
        self.key = keys.paused(token_id)
        self.probe_key = keys.pause_probe(token_id)
        self.probe_interval = probe_interval
        # This process's last look at the flag (see is_paused); -inf: not looked yet.
        self._paused, self._checked_at = False, float("-inf")

    def pause(self, reason: str) -> bool:
        """Pause; returns True if this call paused it (False if it already was)."""
        value = json.dumps({"reason": reason, "since": int(time.time())})
        self._paused, self._checked_at = True, time.monotonic()
        return bool(self.redis.set(self.key, value, nx=True))

    def resume(self) -> None:
        self.redis.delete(self.key)
        self._checked_at = float("-inf")

    def is_paused(self) -> bool:
        """Whether delivery is paused; asked of Redis at most once a second per process.

        Every delivery asks, so the answer is kept for a second: a pause takes
        effect fleet-wide within a second, and costs no round trip per event.
        """
        now = time.monotonic()
        if now - self._checked_at >= LOCAL_CHECK_SECONDS:
            self._paused = bool(self.redis.exists(self.key))
            self._checked_at = now
        return self._paused

    def reason(self) -> dict | None:
        raw = self.redis.get(self.key)
        return json.loads(raw) if raw else None

    def probe_due(self) -> bool:
        """True at most once per probe interval across the fleet."""
        return bool(self.redis.set(self.probe_key, "1", nx=True, px=int(self.probe_interval * 1000)))
