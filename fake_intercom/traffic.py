"""What happens to calls before and around the model: rate-limit windows, injected faults,
the bounded request log and the traffic counters.

Rate limiting (docs/intercom-api.md, Rate limits): a per-token budget of `rate_limit` calls
per window, windows aligned to multiples of `window_seconds` in Unix time; the answer carries
X-RateLimit-Limit / -Remaining / -Reset (Unix seconds at the window's end); past the budget,
429 ``rate_limit_exceeded`` "Exceeded rate limit of N in 10_seconds", without Retry-After.
A refused call does not use budget (undocumented; the plausible reading of "remaining").

Injected faults model failures in front of the API (load balancer, deploys): they are
answered before rate limiting, without rate-limit headers, and use no budget.
"""

from __future__ import annotations

import random
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Iterable

from .config import FakeConfig

#: Per-window counters kept for /_fake/stats: one day of 10-second windows.
MAX_WINDOWS_KEPT = 8640

#: Marker status for "close the connection without answering".
DROP = "drop"


@dataclass(frozen=True)
class RateDecision:
    """The limiter's verdict and the header values that go with it."""

    allowed: bool
    limit: int
    remaining: int
    reset: int
    window_start: int

    def headers(self) -> dict[str, str]:
        """X-RateLimit-* as Intercom sends them on authenticated responses."""
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


class RateLimiter:
    """Fixed windows per token: (window start, calls allowed so far)."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, int]] = {}

    def check(self, token: str, now: float, config: FakeConfig) -> RateDecision:
        """Count one call for `token` at `now`; refuse it if the window's budget is spent."""
        length, limit = config.window_seconds, config.rate_limit
        start = int(now // length) * length
        window_start, used = self._windows.get(token, (start, 0))
        if window_start != start:
            used = 0
        allowed = used < limit
        if allowed:
            used += 1
        self._windows[token] = (start, used)
        return RateDecision(allowed, limit, max(limit - used, 0), start + length, start)

    def reset(self) -> None:
        """Forget every window."""
        self._windows.clear()


@dataclass(frozen=True)
class Fault:
    """An injected answer: an HTTP status, or DROP for a closed connection."""

    status: int | str
    reason: str  # "outage" | "queued" | "random"


class FaultInjector:
    """Outages, a queue of "next N calls answer S", and a random fault rate."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._queue: deque[list[Any]] = deque()  # [status, calls left]

    def outage(self, now: float, config: FakeConfig) -> Fault | None:
        """The outage answer if `now` falls in the configured outage window."""
        start = config.outage_start
        if start is None or not start <= now < start + config.outage_seconds:
            return None
        return Fault(DROP if config.outage_mode == DROP else 503, "outage")

    def enqueue(self, status: int | str, count: int = 1) -> None:
        """Answer the next `count` API calls with `status` (an int, or "drop")."""
        if status != DROP and not (isinstance(status, int) and 100 <= status <= 599):
            raise ValueError("status must be an HTTP status or 'drop'")
        if count < 1:
            raise ValueError("count must be >= 1")
        self._queue.append([status, count])

    def queued(self) -> list[dict[str, Any]]:
        """The pending queue, for /_fake/config."""
        return [{"status": s, "count": n} for s, n in self._queue]

    def next_fault(self, config: FakeConfig) -> Fault | None:
        """A queued fault first, else one drawn at `fault_rate`."""
        if self._queue:
            head = self._queue[0]
            head[1] -= 1
            if head[1] == 0:
                self._queue.popleft()
            return Fault(head[0], "queued")
        if config.fault_rate and self._rng.random() < config.fault_rate:
            return Fault(config.fault_status, "random")
        return None

    def reset(self, seed: int | None = None) -> None:
        """Empty the queue and reseed the dice."""
        self._queue.clear()
        self._rng = random.Random(seed)


class RequestLog:
    """The last `size` API calls, oldest first, each with a sequence number."""

    def __init__(self, size: int) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)
        self._seq = 0

    def append(self, entry: dict[str, Any]) -> None:
        """Number and keep one entry (the oldest falls off when full)."""
        self._seq += 1
        entry["seq"] = self._seq
        self._entries.append(entry)

    def resize(self, size: int) -> None:
        """Change the bound, keeping the newest entries."""
        if size != self._entries.maxlen:
            self._entries = deque(self._entries, maxlen=size)

    def query(
        self,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        route: str | None = None,
        since: int | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Entries matching every given filter; `since` is a sequence number (exclusive);
        `limit` keeps the newest ones."""
        found = [
            e
            for e in self._entries
            if (method is None or e["method"] == method.upper())
            and (path is None or e["path"] == path)
            and (status is None or e["status"] == status)
            and (route is None or e["route"] == route)
            and (since is None or e["seq"] > since)
        ]
        return found[-limit:] if limit else found

    @property
    def total(self) -> int:
        """Calls ever logged (including those that fell off)."""
        return self._seq

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget everything, numbering restarts."""
        self._entries.clear()
        self._seq = 0


class Stats:
    """Counters that stay small however long the run: never derived from the log."""

    def __init__(self, started_at: float) -> None:
        self.started_at = started_at
        self.total = 0
        self.by_status: Counter[int | str] = Counter()  # HTTP statuses, and DROP
        self.by_route: Counter[str] = Counter()
        self.by_route_status: Counter[str] = Counter()
        self.by_version: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.schema_invalid = 0
        self.windows: OrderedDict[int, dict[str, int]] = OrderedDict()
        self.max_calls_in_window = 0
        self.max_accepted_in_window = 0

    def record(self, route: str, status: int | str, version: str | None, reason: str | None, schema_valid: bool | None) -> None:
        """Count one finished API call."""
        self.total += 1
        self.by_status[status] += 1
        self.by_route[route] += 1
        self.by_route_status[f"{route} {status}"] += 1
        self.by_version[version or "(none)"] += 1
        if reason:
            self.reasons[reason] += 1
        if schema_valid is False:
            self.schema_invalid += 1

    def record_window(self, decision: Any) -> None:
        """Count one authenticated call in its rate-limit window."""
        window = self.windows.get(decision.window_start)
        if window is None:
            window = self.windows[decision.window_start] = {"calls": 0, "accepted": 0, "rate_limited": 0}
            while len(self.windows) > MAX_WINDOWS_KEPT:
                self.windows.popitem(last=False)
        window["calls"] += 1
        window["accepted" if decision.allowed else "rate_limited"] += 1
        self.max_calls_in_window = max(self.max_calls_in_window, window["calls"])
        self.max_accepted_in_window = max(self.max_accepted_in_window, window["accepted"])

    def to_json(self, now: float, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The /_fake/stats document."""
        return {
            "started_at": self.started_at,
            "uptime_seconds": round(now - self.started_at, 3),
            "total": self.total,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items(), key=lambda kv: str(kv[0]))},
            "by_route": dict(self.by_route),
            "by_route_status": dict(self.by_route_status),
            "by_version": dict(self.by_version),
            "rate_limited": self.by_status.get(429, 0),
            "unauthorized": self.by_status.get(401, 0),
            "faults": {
                "outage": self.reasons.get("outage", 0),
                "queued": self.reasons.get("queued", 0),
                "random": self.reasons.get("random", 0),
                "dropped_connections": self.by_status.get(DROP, 0),
            },
            "schema_invalid": self.schema_invalid,
            "windows": [{"start": start, **counts} for start, counts in self.windows.items()],
            "max_calls_in_window": self.max_calls_in_window,
            "max_accepted_in_window": self.max_accepted_in_window,
            **(extra or {}),
        }


def parse_fault_queue(items: Iterable[Any]) -> list[tuple[int | str, int]]:
    """Validate ``[{"status": 503, "count": 2}, …]`` from a control request."""
    parsed = []
    for item in items:
        if not isinstance(item, dict) or "status" not in item:
            raise ValueError("each queued fault needs a status")
        parsed.append((item["status"], int(item.get("count", 1))))
    return parsed
