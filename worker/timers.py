"""The timers that depend on each other, in one place, and the check of how they relate.

    timer                          value  what it times (where)
    -----------------------------  -----  ------------------------------------------------------------
    LEASE_SECONDS (a setting)      15 s   a running delivery's lease (worker/store/lease.py)
    TICK_SECONDS                   3 s    a worker's beat, renewing its leases (worker/liveness.py)
    SILENCE_SECONDS                10 s   a worker not heard from, taken for dead (worker/liveness.py)
    CHAIN_SECONDS                  5 s    a task running its lane's next heads (worker/delivery.py)
    MAX_COUNTDOWN_SECONDS          60 s   a wait given back to Celery as a countdown (worker/delivery.py)
    INTERCOM_TIMEOUT_SECONDS       30 s   one call to Intercom, CALLS_PER_DELIVERY (5) calls a delivery
      (a setting)                         (worker/intercom/client.py)
    VISIBILITY_TIMEOUT_SECONDS     600 s  an unacknowledged message handed out again (worker/broker.py)

How they relate:

* a worker beats every TICK_SECONDS, or every quarter of LEASE_SECONDS if
  that is shorter (worker/liveness.py), so that a lease is renewed at least
  four times before it runs out and one slow round trip never loses it: this
  holds by construction, whatever LEASE_SECONDS;
* SILENCE_SECONDS > 3 x TICK_SECONDS: a worker is taken for dead only after
  three beats missed, never for one late beat (``check_silence_and_tick``);
* SILENCE_SECONDS < VISIBILITY_TIMEOUT_SECONDS: the sweep puts a dead worker's
  messages back on the queue before the broker would (``check_silence_and_visibility``);
* VISIBILITY_TIMEOUT_SECONDS > MAX_COUNTDOWN_SECONDS + the longest task
  (CHAIN_SECONDS, then one more delivery's calls, each up to
  INTERCOM_TIMEOUT_SECONDS): otherwise Celery on Redis hands a message still
  waiting out its countdown, or still running, to a second worker
  (``check_visibility_timeout``).

``check_timers`` checks every relation once, when a worker's Celery app is
built (worker/celery_app.py), and refuses to start with a message naming the
setting or constant to change.
"""

from __future__ import annotations

from worker.settings import Settings, SettingsError

#: How often a worker process beats and renews its leases (at most; shorter with a
#: short lease): often enough that a dead worker is noticed within seconds, seldom
#: enough that a fleet of workers costs Redis nothing noticeable.
TICK_SECONDS = 3.0

#: A worker not heard from for this long is taken for dead: three ticks missed.
SILENCE_SECONDS = 10.0

#: How long a task may go on running its lane's next heads itself (other lanes must
#: not wait behind a long one).
CHAIN_SECONDS = 5.0

#: Waits up to this long go back to Celery as a countdown (Flower shows the retry);
#: longer ones sleep in Redis and the sweep wakes them.
MAX_COUNTDOWN_SECONDS = 60.0

#: A message taken by a worker that died comes back after this long.  It must
#: outlive the longest countdown and the longest task; ten minutes instead of
#: Celery's hour bounds how long a SIGKILLed worker's unacknowledged ingest
#: messages hold their lanes.
VISIBILITY_TIMEOUT_SECONDS = 600

#: How many calls of one delivery a task may make, at most, for the visibility
#: timeout check: an identify that creates, updates and merges two leads.
CALLS_PER_DELIVERY = 5

#: The fewest beats a worker misses before it is taken for dead.
BEATS_MISSED = 3


def longest_task_seconds(settings: Settings, chain_seconds: float) -> float:
    """How long one task can take at most: its chain, then one more delivery's calls."""
    return chain_seconds + CALLS_PER_DELIVERY * settings.http_timeout


def check_visibility_timeout(
    settings: Settings,
    *,
    visibility_timeout: float = VISIBILITY_TIMEOUT_SECONDS,
    chain_seconds: float = CHAIN_SECONDS,
    max_countdown: float = MAX_COUNTDOWN_SECONDS,
) -> None:
    """Refuse settings under which the broker could hand a task to a second worker.

    Celery on Redis gives an unacknowledged message (a running task, or one
    held for its countdown) to another worker after the visibility timeout.
    It must outlive the longest countdown and the longest task.
    """
    needed = max_countdown + longest_task_seconds(settings, chain_seconds)
    if visibility_timeout <= needed:
        raise SettingsError(
            f"INTERCOM_TIMEOUT_SECONDS={settings.http_timeout:g} is too long: a task could outlive the "
            f"broker's visibility timeout of {visibility_timeout:g} s (VISIBILITY_TIMEOUT_SECONDS) and run twice (it needs "
            f"{max_countdown:g} s countdown (MAX_COUNTDOWN_SECONDS) + {CALLS_PER_DELIVERY} calls x the timeout "
            f"+ {chain_seconds:g} s (CHAIN_SECONDS))"
        )


def check_silence_and_tick(*, silence: float = SILENCE_SECONDS, tick: float = TICK_SECONDS) -> None:
    """Refuse a silence that would take a worker for dead after fewer than three missed beats."""
    if silence <= BEATS_MISSED * tick:
        raise SettingsError(
            f"SILENCE_SECONDS={silence:g} would take a worker for dead after fewer than {BEATS_MISSED} missed beats: "
            f"it must exceed {BEATS_MISSED} x TICK_SECONDS={tick:g} (worker/timers.py)"
        )


def check_silence_and_visibility(*, silence: float = SILENCE_SECONDS, visibility_timeout: float = VISIBILITY_TIMEOUT_SECONDS) -> None:
    """Refuse a silence so long that the broker gives a dead worker's messages away before the sweep frees them."""
    if silence >= visibility_timeout:
        raise SettingsError(
            f"SILENCE_SECONDS={silence:g} is not shorter than VISIBILITY_TIMEOUT_SECONDS={visibility_timeout:g}: "
            "the broker would give a dead worker's messages away before the sweep frees them (worker/timers.py)"
        )


def check_timers(settings: Settings) -> None:
    """Check every relation between the timers (the module docstring); a SettingsError names what to change."""
    check_silence_and_tick()
    check_silence_and_visibility()
    check_visibility_timeout(settings)
