"""What a failed call or delivery leads to: the relay's one failure policy.

Intercom's answer becomes an exception (``classify`` and its table
``STATUS_ERRORS``, in worker/intercom/errors.py); the exception becomes a
decision (``decide``, here); the delivery run (worker/delivery.py) carries the
decision out.  The whole policy in one table::

    what happened                                  exception          decision     how long                          attempt
    ---------------------------------------------  -----------------  -----------  --------------------------------  -------
    2xx                                            (none)             delivered
    429, or the fleet's own budget is spent        RateLimited        wait         until X-RateLimit-Reset, + <=1 s  no
    an unfinished create's lead may not show yet   AwaitingSearch     wait         until its next look (>= 1 s)      no
    401                                            Unauthorized       pause        PAUSE_PROBE_SECONDS, then probed  no
    404/410 for a contact, action that needs one   ContactNotFound    park         until the person's next identify, no
                                                                                   at most PARK_HOLD_SECONDS, then a
                                                                                   dead letter
    timeout, connection error, 408, 423, 5xx       RetryableError     retry        full-jitter backoff from 1 s,     yes
      (not 501), a 409 whose contact can't be used                                 doubling, capped at 5 min
    any other exception (a bug)                    (any)              retry        the same, logged with traceback   yes
    still failing RETRY_WINDOW_SECONDS after the   (any retryable)    dead letter
      first failure (4 hours, as Segment)
    400, 403, 422, 501, other 4xx, bad fields      PermanentError     dead letter
    a mapping no longer configured                 MappingError       dead letter

A wait, a pause and a retry keep the head at the front of its lane, so the
person's later events never overtake it.  A wait of up to MAX_COUNTDOWN_SECONDS
goes back to Celery as a countdown (Flower shows the retry); a longer one
sleeps in Redis and the sweep wakes it, because Celery on Redis hands a
message whose countdown outlives the broker's visibility timeout to a second
worker: worker/timers.py holds these timers and refuses to start a worker
whose settings would allow that.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from worker.intercom.errors import (
    AwaitingSearch,
    ContactNotFound,
    PermanentError,
    RateLimited,
    Unauthorized,
)
from worker.mappings import MappingError
from worker.settings import Settings

#: The first retry comes within about a second.
BASE_SECONDS = 1.0

#: No retry waits longer than five minutes, however many failed before it:
#: a recovered Intercom is noticed within minutes.
CAP_SECONDS = 300.0

#: A rate-limit wait lands at a random point of the next second, so that the
#: lanes held back by one reset do not all call at the same instant.
RATE_LIMIT_JITTER_SECONDS = 1.0


class Step(enum.Enum):
    """What the delivery run does with a failed head."""

    WAIT = "wait"  # sleep the lane for ``Decision.delay``, using no attempt
    PAUSE = "pause"  # pause the destination (a refused token) and sleep the lane
    PARK = "park"  # set the head aside until the person's next identify
    RETRY = "retry"  # sleep with backoff, using an attempt; a dead letter once out of the window
    DEAD_LETTER = "dead_letter"  # give up now, with the reason


@dataclass(frozen=True)
class Decision:
    step: Step
    #: Seconds to wait, for Step.WAIT.
    delay: float = 0.0


def decide(exc: BaseException, *, parks_on_404: bool, now: float) -> Decision:
    """What a failed head's exception leads to (the table in the module docstring)."""
    if isinstance(exc, RateLimited):
        return Decision(Step.WAIT, rate_limit_wait(exc.reset_at, now))
    if isinstance(exc, AwaitingSearch):
        return Decision(Step.WAIT, max(1.0, exc.retry_at - now))
    if isinstance(exc, Unauthorized):
        return Decision(Step.PAUSE)
    if isinstance(exc, ContactNotFound):
        # An identify never answers "no such contact" for a reason a park would fix.
        return Decision(Step.PARK if parks_on_404 else Step.RETRY)
    if isinstance(exc, (PermanentError, MappingError)):
        return Decision(Step.DEAD_LETTER)
    return Decision(Step.RETRY)  # RetryableError, and any unexpected error: a bug must not lose the event


@dataclass(frozen=True)
class RetryPolicy:
    """The numbers of the policy, from settings."""

    window: float
    probe_interval: float
    base: float = BASE_SECONDS
    cap: float = CAP_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(window=settings.retry_window, probe_interval=settings.pause_probe_seconds)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1 for the first retry)."""
        return backoff(attempt, base=self.base, cap=self.cap)

    def gives_up(self, first_failure: float, now: float) -> bool:
        """Whether a delivery failing since ``first_failure`` has used up its retry window."""
        return out_of_window(first_failure, now, self.window)


def backoff(attempt: int, *, base: float = BASE_SECONDS, cap: float = CAP_SECONDS) -> float:
    """Exponential backoff with full jitter: a random time between 0 and min(cap, base * 2**attempt).

    Full jitter spreads a crowd of lanes that failed together (an outage)
    instead of sending them back in one wave.
    """
    ceiling = min(cap, base * 2 ** min(attempt, 32))
    return random.uniform(0, ceiling)


def rate_limit_wait(reset_at: float, now: float) -> float:
    """Seconds until Intercom's window resets, plus jitter."""
    return max(0.0, reset_at - now) + random.uniform(0, RATE_LIMIT_JITTER_SECONDS)


def out_of_window(first_failure: float, now: float, window: float) -> bool:
    """Whether a delivery failing since ``first_failure`` has used up its retry window."""
    return now - first_failure >= window


__all__ = [
    "Decision",
    "RetryPolicy",
    "Step",
    "backoff",
    "decide",
    "out_of_window",
    "rate_limit_wait",
]
