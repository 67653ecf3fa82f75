"""When to try a failed delivery again (DESIGN.md guarantee 6).

Exponential backoff with full jitter: the n-th retry waits a random time
between 0 and min(cap, base * 2**n).  Full jitter spreads a crowd of lanes
that failed together (an outage) instead of sending them back in one wave.
A delivery keeps retrying for the retry window (Segment's 4 hours), then it
is dead-lettered.  Waiting on the rate limit is not a retry: it uses up no
attempt and waits exactly until the window resets.
"""

from __future__ import annotations

import random

#: The first retry comes within about a second.
BASE_SECONDS = 1.0

#: No retry waits longer than five minutes, however many failed before it:
#: a recovered Intercom is noticed within minutes.
CAP_SECONDS = 300.0

#: A rate-limit wait lands at a random point of the next second, so that the
#: lanes held back by one reset do not all call at the same instant.
RATE_LIMIT_JITTER_SECONDS = 1.0


def backoff(attempt: int, *, base: float = BASE_SECONDS, cap: float = CAP_SECONDS) -> float:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry)."""
    ceiling = min(cap, base * 2 ** min(attempt, 32))
    return random.uniform(0, ceiling)


def rate_limit_wait(reset_at: float, now: float) -> float:
    """Seconds until Intercom's window resets, plus jitter."""
    return max(0.0, reset_at - now) + random.uniform(0, RATE_LIMIT_JITTER_SECONDS)


def out_of_window(first_failure: float, now: float, window: float) -> bool:
    """Whether a delivery failing since ``first_failure`` has used up its retry window."""
    return now - first_failure >= window
