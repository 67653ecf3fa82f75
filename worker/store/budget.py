"""One rate budget per access token, shared by the whole fleet (DESIGN.md guarantee 5).

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
*prepaid* for the thread, and its call takes it without a round trip of its
own.  A prepaid slot whose call is never made is uncounted, and stays unused.

What Intercom says on every response corrects the schedule: the window's
limit, and when ``X-RateLimit-Remaining`` shows that other apps of the
workspace spend the same allowance, the slots are pushed back so that our
calls fit in what is left before ``X-RateLimit-Reset``.  A 429 pushes every
slot past the window's reset.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from worker.intercom.errors import RateLimited
from worker.store import keys

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
HEADROOM = 0.99
_HEADROOM = f"local HEADROOM = {HEADROOM}\n"

# reserve(budget hash, counters, default limit, share, window ms, max wait ms)
# returns {wait in ms before the reserved slot, the slot's time in ms, the limit
# it scheduled for}; the wait is -1 when the slot is further than max wait
# (nothing is reserved then).  A reserved slot is a call about to be made: it
# is counted here, which spares most calls a second round trip (see observe).
# A Lua function, so that the lane scripts can reserve a claimed head's first
# call in the round trip that claims it (worker/store/lanes.py).
RESERVE_FUNCTION = (
    _HEADROOM
    + """
local function reserve(budget, counters, default_limit, share, window_ms, max_wait_ms)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local limit = tonumber(redis.call('HGET', budget, 'limit') or default_limit)
  local allowed = math.max(1, math.floor(limit * tonumber(share) * HEADROOM))
  local interval = tonumber(window_ms) / allowed
  local tat = tonumber(redis.call('HGET', budget, 'tat') or '0')
  local slot = math.max(now, tat)
  if slot - now > tonumber(max_wait_ms) then return {-1, math.floor(slot), limit} end
  redis.call('HSET', budget, 'tat', slot + interval)
  redis.call('PEXPIRE', budget, 3600000)
  redis.call('HINCRBY', counters, 'api_calls', 1)
  return {math.floor(slot - now), math.floor(slot), limit}
end
"""
)

# KEYS: budget hash, counters    ARGV: default limit, share, window ms, max wait ms
_RESERVE = (
    RESERVE_FUNCTION
    + """
return reserve(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
"""
)

# KEYS: budget hash, counters
# ARGV: limit ('' if absent), remaining ('' if absent), reset s ('' if absent), status, share, window ms
_OBSERVE = (
    _HEADROOM
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'limit', ARGV[1]) end
if ARGV[3] == '' then return 0 end
local reset = tonumber(ARGV[3]) * 1000
local tat = tonumber(redis.call('HGET', KEYS[1], 'tat') or '0')
if ARGV[4] == '429' then
  redis.call('HINCRBY', KEYS[2], 'rate_limited', 1)
  redis.call('HSET', KEYS[1], 'tat', math.max(tat, reset))
  return 1
end
if ARGV[2] ~= '' and ARGV[1] ~= '' then
  -- Fit our remaining calls of this window into what Intercom says is left.
  local allowed = math.max(1, math.floor(tonumber(ARGV[1]) * tonumber(ARGV[5]) * HEADROOM))
  local interval = tonumber(ARGV[6]) / allowed
  local remaining = tonumber(ARGV[2])
  local earliest = reset - remaining * interval
  if remaining <= 0 then earliest = reset end
  if earliest > tat and earliest > now then redis.call('HSET', KEYS[1], 'tat', earliest) end
end
return 0
"""
)


@dataclass(frozen=True)
class Slot:
    """A reserved call: its time by Redis's clock, and when to go by this process's monotonic clock."""

    at: float
    go_at: float


#: A slot reserved for this thread's next call before it asked (see RateBudget.prepay).
_prepaid: ContextVar[Slot | None] = ContextVar("prepaid_slot", default=None)


class RateBudget:
    """The fleet's budget for one access token; the Intercom client calls it around each request."""

    def __init__(
        self,
        redis: Any,
        token_id: str,
        *,
        share: float = 1.0,
        default_limit: int = DEFAULT_LIMIT_PER_WINDOW,
        window_seconds: float = WINDOW_SECONDS,
        max_inline_wait: float = MAX_INLINE_WAIT_SECONDS,
    ) -> None:
        self.key = f"{keys.PREFIX}budget:{token_id}"
        self.share = share
        self.default_limit = default_limit
        self.window_ms = int(window_seconds * 1000)
        self.max_wait_ms = int(max_inline_wait * 1000)
        self._limit: int | None = None  # the limit the last reservation scheduled for
        self._redis = redis
        self._reserve = redis.register_script(_RESERVE)
        self._observe = redis.register_script(_OBSERVE)

    def acquire(self) -> float:
        """Take the next slot: wait for it if it is near, else raise RateLimited with its time.

        Returns the slot's time (Unix seconds by Redis's clock), which is what
        the schedule promised, whenever this thread actually got to run.
        """
        slot = _prepaid.get()
        if slot is not None:
            _prepaid.set(None)
        else:
            key, args = self.reservation()
            reply = self._reserve(keys=[key, keys.COUNTERS], args=args)
            slot = self._slot(reply)
            if slot is None:
                raise RateLimited("the fleet's rate budget is spent for now", reset_at=reply[1] / 1000)
        wait = slot.go_at - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        return slot.at

    # -- a slot reserved along with other work --------------------------------
    def reservation(self) -> tuple[str, list[Any]]:
        """What a script needs to call ``reserve()`` (RESERVE_FUNCTION) along with its own work.

        The budget's key, and the arguments after the keys (the counters'
        key is ``keys.COUNTERS``).
        """
        return self.key, [self.default_limit, self.share, self.window_ms, self.max_wait_ms]

    def prepay(self, reply: Any) -> None:
        """Keep the slot another script reserved (its ``reserve()`` reply) for this thread's next call.

        A slot too far away was not reserved: the next call then asks again,
        and learns that it must wait.
        """
        _prepaid.set(self._slot(reply))

    def release_prepaid(self) -> None:
        """The call a slot was prepaid for was not made: forget the slot and uncount the call.

        The slot itself stays spent (the schedule has moved past it); it is one
        call the fleet does not make in its window.
        """
        if _prepaid.get() is not None:
            _prepaid.set(None)
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
        args = [limit, remaining, reset, str(response.status_code), self.share, self.window_ms]
        self._observe(keys=[self.key, keys.COUNTERS], args=args)

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
