"""One rate budget per access token, shared by the whole fleet (docs/design.md, guarantee 5).

Intercom allows a number of calls per 10-second window (``X-RateLimit-Limit``;
1,666 at 10,000 a minute) for the app, whichever worker makes them.  Celery's
own ``rate_limit`` is per worker, so the budget lives in Redis.

Mechanism: a *reservation* schedule (the generic cell rate algorithm).  Each
call reserves the next free slot, ``interval = window / allowed`` after the
previous one; a worker whose slot is a moment away waits for it in its
thread, one whose slot is far away gives its lane back to sleep until then.
Calls are spread evenly, so the fleet never bursts past a window's limit and
never piles up on a window boundary; slots are never refused and retried,
which keeps CPU low when the fleet is saturated.

A task running a lane's next event itself reserves that event's first call
in the round trip that claims it (``Lanes.finish_and_claim``): the slot is
*prepaid*, kept by the delivery run (worker/delivery.py), and its call takes it
without a round trip of its own.  A prepaid slot whose call is never made is
uncounted, and stays unused.  The scheduling itself is ``lua/budget_*.lua``.

What Intercom says on every response corrects the schedule: the window's
limit, and when ``X-RateLimit-Remaining`` shows that other apps of the
workspace spend the same allowance, the slots are pushed back so that our
calls fit in what is left before ``X-RateLimit-Reset``.  A 429 pushes every
slot past the window's reset.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis as redis_lib

from worker.intercom.errors import RateLimited
from worker.store import keys, scripts
from worker.store.scripts import BudgetAcquireArgs

#: Intercom's window and its default limit: 10,000 calls a minute spread over
#: 10-second windows (developers.intercom.com, rate limiting).
WINDOW_SECONDS = 10
DEFAULT_LIMIT_PER_WINDOW = 1666

#: A slot this close is waited for in the worker's thread; a later one hands
#: the lane back to sleep (a thread should not idle for long).
MAX_INLINE_WAIT_SECONDS = 2.0

#: Calls are scheduled for 99% of the window's limit: a call reserved at the
#: end of one window can reach Intercom in the next (answers vary by tens of
#: milliseconds), and the 1% keeps those from tipping a window into 429s.
HEADROOM = 0.99  # the Lua scripts read the same value (set when a script is registered)

#: What reserves a slot along with another script's work: the budget's key and reserve()'s arguments.
Reservation = tuple[str, BudgetAcquireArgs]


@dataclass(frozen=True)
class Slot:
    """A reserved call: its time by Redis's clock, and when to go by this process's monotonic clock."""

    at: float
    go_at: float


class RateBudget:
    """The fleet's budget for one access token; the Intercom client calls it around each request."""

    def __init__(
        self,
        redis: redis_lib.Redis,
        token_id: str,
        *,
        share: float = 1.0,
        default_limit: int = DEFAULT_LIMIT_PER_WINDOW,
        window_seconds: float = WINDOW_SECONDS,
        max_inline_wait: float = MAX_INLINE_WAIT_SECONDS,
    ) -> None:
        self.key = keys.budget(token_id)
        self.share = share
        self.default_limit = default_limit
        self.window_ms = int(window_seconds * 1000)
        self.max_wait_ms = int(max_inline_wait * 1000)
        self._limit: int | None = None  # the limit the last reservation scheduled for
        self._redis = redis
        self._reserve = scripts.BUDGET_ACQUIRE.register(redis, HEADROOM=HEADROOM)
        self._observe = scripts.BUDGET_OBSERVE.register(redis, HEADROOM=HEADROOM)

    def acquire(self, prepaid: Slot | None = None) -> float:
        """Take the next slot (or the ``prepaid`` one): wait for it if it is near, else raise RateLimited.

        Returns the slot's time (Unix seconds by Redis's clock), which is what
        the schedule promised, whenever this thread actually got to run.
        """
        slot = prepaid
        if slot is None:
            key, args = self.reservation()
            reply = self._reserve(keys={"budget": key, "counters": keys.COUNTERS}, args=args)
            slot = self._slot(reply)
            if slot is None:
                raise RateLimited("the fleet's rate budget is spent for now", reset_at=reply[1] / 1000)
        wait = slot.go_at - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        return slot.at

    # -- a slot reserved along with other work --------------------------------
    def reservation(self) -> Reservation:
        """What a script needs to call ``reserve()`` (lua/budget_reserve.lua) along with its own work.

        The budget's key, and reserve()'s arguments by name (the counters'
        key is ``keys.COUNTERS``).
        """
        args: BudgetAcquireArgs = {
            "default_limit": self.default_limit,
            "share": self.share,
            "window_ms": self.window_ms,
            "max_wait_ms": self.max_wait_ms,
        }
        return self.key, args

    def slot_of(self, reply: Any) -> Slot | None:
        """The slot another script reserved (its ``reserve()`` reply), to pass to ``acquire`` later.

        None for a slot too far away, which was not reserved: the call then
        asks again, and learns that it must wait.
        """
        return self._slot(reply)

    def uncount(self) -> None:
        """A prepaid slot's call was not made: uncount it.

        The slot itself stays spent (the schedule has moved past it); it is one
        call the fleet does not make in its window.
        """
        self._redis.hincrby(keys.COUNTERS, "api_calls", -1)

    def _slot(self, reply: Any) -> Slot | None:
        wait_ms, slot_ms, self._limit = reply
        if wait_ms < 0:
            return None
        return Slot(slot_ms / 1000, time.monotonic() + wait_ms / 1000)

    def observe(self, response: Any, slot: float | None = None) -> None:
        """Learn from X-RateLimit-* headers (and count a 429), when they have something to teach.

        ``slot`` is the time ``acquire`` gave this call.  Most answers only
        confirm the schedule: the limit it already uses, and as many calls
        remaining as our own pace leaves.  Those need no round trip to Redis.
        """
        headers = response.headers
        limit, remaining, reset = (
            headers.get("X-RateLimit-Limit", ""),
            headers.get("X-RateLimit-Remaining", ""),
            headers.get("X-RateLimit-Reset", ""),
        )
        if response.status_code != 429 and slot is not None and not self._teaches(limit, remaining, reset, slot):
            return
        self._observe(
            keys={"budget": self.key, "counters": keys.COUNTERS},
            args={
                "limit": limit,
                "remaining": remaining,
                "reset_s": reset,
                "status": str(response.status_code),
                "share": self.share,
                "window_ms": self.window_ms,
            },
        )

    def _teaches(self, limit: str, remaining: str, reset: str, slot: float) -> bool:
        """Whether the headers would change the schedule (the same test as _OBSERVE's, from this side)."""
        if not limit:
            return False  # no rate headers (a 401): nothing to learn
        try:
            if int(limit) != int(self._limit or self.default_limit):
                return True
            if not (remaining and reset):
                return False
            allowed = max(1, int(int(limit) * self.share * HEADROOM))
            interval = self.window_ms / allowed
            left = int(remaining)
            earliest = float(reset) * 1000 - (left * interval if left > 0 else 0)
        except ValueError:
            return True  # let the script judge headers this side cannot read
        # The script moves the schedule only to a time later than both now and
        # the next free slot, which is at least one interval past this call's.
        # Intercom counts the calls made up to its answer, which comes a
        # latency after the slot: comparing with the slot alone would call
        # nearly every answer news.
        return earliest > max(slot * 1000 + interval, time.time() * 1000)
