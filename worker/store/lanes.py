"""Per-person lanes: the ordering mechanism (docs/design.md, guarantees 3, 4 and 7).

A *lane* is one person's queue of deliveries (a delivery is one event through
one mapping), a Redis sorted set ordered by the acceptance sequence the door
stamped on the event.  At most one delivery per lane is in flight, so a
person's events reach Intercom in acceptance order while different people
run in parallel on any number of workers.

Every step is one Lua script (``lua/lane_*.lua``, loaded by
``worker/store/scripts.py``), so the lane, its lease and the pipeline
counters change together or not at all.

Lane life cycle (``relay:lane_state`` and the ``relay:leases`` deadline)::

    ingest ──(lane idle)──▶ queued ──claim──▶ <task token> ──finish/park──▶ queued (next head) or idle
                              ▲                    │
                              │                    ├──sleep(wake_at)──▶ sleep ──(wake_at)──▶ claim
                              └──── sweep ◀────────┘  (deadline passed: worker died, message lost)

* ``queued``: a task for the head has been sent; the first task to *claim*
  the head runs it, duplicates find the lane busy or their delivery gone.
* a running task's token: its lease is renewed while it works; when it
  expires (the worker died) the sweep sends the head again.
* ``sleep``: the head waits for a retry (backoff, rate limit, pause); the
  deadline is the wake-up time and the sweep (or a short countdown) wakes it.

A lane does not run while events of that person are accepted at the door
but not yet ingested (``relay:inflight``): an identify still on its way is
never overtaken.  The ingest that brings the count to zero wakes the lane.

Identify first: when the head is a track or group for a person not known to
Intercom and an identify waits further down the lane, ``promote`` moves the
identify to the front.  A track or group that Intercom answers 404 is
*parked*; the person's next delivered identify puts the parked deliveries
back at the front of the lane, in their acceptance order.  Which action
identifies, and each action's letter in a delivery id, come from the action
table (``worker/actions``) through the constructor.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from typing import Any, Mapping

import redis as redis_lib

from worker.store import keys, scripts
from worker.store.budget import HEADROOM, Reservation

#: messageIds are remembered this long for de-duplication.
SEEN_TTL_SECONDS = 7 * 24 * 3600


def person_of(event: dict) -> str:
    """The person an event belongs to, and so its lane: userId, else anonymousId."""
    return str(event.get("userId") or event.get("anonymousId"))


def delivery_id(seq: int, index: int, lane_code: str) -> str:
    """ "<seq>:<n><code>": the event's acceptance sequence, the mapping's index for that
    event, and the action's one-letter lane code, so that Lua can tell an identify
    from its id alone."""
    return f"{seq}:{index}{lane_code}"


def lane_code_of(delivery: str) -> str:
    """The lane code of the action a delivery id names."""
    return delivery[-1]


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Claim:
    """What ``Lanes.claim`` found: ``status`` is ok, stale, busy, early or gated."""

    status: str
    record: dict | None = None
    attempts: int = 0
    #: Identifies waiting in the lane, the head included (a track need not
    #: look for its contact when there is none: nothing could go first).
    pending_identifies: int = 0
    #: The rate budget's reply to reserving this head's first call, when the
    #: claim reserved one (``Lanes.finish_and_claim``); for ``RateBudget.slot_of``.
    first_slot: Any = None


class Lanes:
    """The lane operations; each is one atomic Lua script."""

    def __init__(
        self,
        redis: redis_lib.Redis,
        *,
        lane_codes: Mapping[str, str],
        identify_action: str,
        lease_seconds: float,
        dispatch_seconds: float,
        park_hold_seconds: float,
    ) -> None:
        """``lane_codes``: each action's one-letter code (worker/actions); ``identify_action``:
        the action that identifies a person, which the lane sends first.  The times are
        settings (worker/settings.py): how long a silent running task keeps its lease, a
        sent task may wait in the queue, and a parked delivery waits for an identify.
        """
        self.redis = redis
        self.lane_codes = dict(lane_codes)
        self.lease_ms = int(lease_seconds * 1000)
        self.dispatch_ms = int(dispatch_seconds * 1000)
        self.hold_ms = int(park_hold_seconds * 1000)
        self.identify_code = identify_code = self.lane_codes[identify_action]

        constants: dict[str, str | float] = {"IDENTIFY_CODE": identify_code, "HEADROOM": HEADROOM}
        self._ingest = scripts.LANE_INGEST.register(redis, **constants)
        self._claim = scripts.LANE_CLAIM.register(redis, **constants)
        self._finish = scripts.LANE_FINISH.register(redis, **constants)
        self._park = scripts.LANE_PARK.register(redis, **constants)
        self._sleep = scripts.LANE_SLEEP.register(redis, **constants)
        self._promote = scripts.LANE_PROMOTE.register(redis, **constants)
        self._sweep = scripts.LANE_SWEEP.register(redis, **constants)
        self._expire = scripts.LANE_EXPIRE_PARKED.register(redis, **constants)
        self._replay = scripts.LANE_REPLAY.register(redis, **constants)
        self._unpark = scripts.LANE_UNPARK.register(redis, **constants)
        self._following = scripts.LANE_FOLLOWING_IDENTIFIES.register(redis, **constants)
        self._absorb = scripts.LANE_ABSORB.register(redis, **constants)

    def delivery_id(self, seq: int, index: int, action: str) -> str:
        """The id of event ``seq``'s ``index``-th delivery, through ``action``."""
        return delivery_id(seq, index, self.lane_codes[action])

    # -- ingestion ---------------------------------------------------------
    def ingest(self, seq: int, person: str, message_id: str, deliveries: list[tuple[str, dict]], *, pipe: Any = None) -> Any:
        """Append one accepted event's deliveries to its lane.

        Returns the delivery id to send a task for when this woke the lane
        (None otherwise).  A messageId seen before counts as a duplicate; the
        same acceptance seen again (a redelivered ingest task) changes nothing.
        """
        records: list[str] = []
        for did, record in deliveries:
            records += [did, json.dumps(record, separators=(",", ":"))]
        return self._ingest(
            keys={
                "seen": keys.seen(message_id),
                "lane": keys.lane(person),
                "deliveries": keys.DELIVERIES,
                "leases": keys.LEASES,
                "lane_state": keys.LANE_STATE,
                "inflight": keys.INFLIGHT,
                "counters": keys.COUNTERS,
                "lane_identifies": keys.LANE_IDENTIFIES,
            },
            args={
                "seq": seq,
                "person": person,
                "now": now_ms(),
                "dispatch_ms": self.dispatch_ms,
                "seen_ttl": SEEN_TTL_SECONDS,
                "identifies": sum(1 for did, _ in deliveries if lane_code_of(did) == self.identify_code),
                "records": records,
            },
            client=pipe,
        )

    # -- running a head ----------------------------------------------------
    def claim(self, person: str, delivery: str, token: str, *, tolerance_ms: int = 250) -> Claim:
        result = self._claim(
            keys={
                "lane": keys.lane(person),
                "leases": keys.LEASES,
                "lane_state": keys.LANE_STATE,
                "inflight": keys.INFLIGHT,
                "deliveries": keys.DELIVERIES,
                "attempts": keys.ATTEMPTS,
                "lane_identifies": keys.LANE_IDENTIFIES,
            },
            args={
                "person": person,
                "delivery": delivery,
                "token": token,
                "now": now_ms(),
                "lease_ms": self.lease_ms,
                "tolerance_ms": tolerance_ms,
            },
        )
        status = _text(result[0])
        if status != "ok" or len(result) < 2 or not result[1]:
            return Claim(status)
        return _claim_of(result[1:])

    def finish(self, person: str, delivery: str, outcome: str, dead_letter: dict | None = None) -> str | None:
        """Close the head as ``delivered`` or ``dead_lettered``; returns the next head to send."""
        return _next(self._close(person, delivery, outcome, dead_letter, ""))

    def finish_and_claim(
        self, person: str, delivery: str, outcome: str, token: str, *, reserve: Reservation | None = None
    ) -> tuple[str | None, Claim | None]:
        """Close the head and claim the next one for ``token`` in the same round trip: (head, its claim).

        With ``reserve`` (``RateBudget.reservation()``), the same round trip
        also reserves the claimed head's first call: its reply is the claim's
        ``first_slot``.  Nothing is reserved when no head is claimed.
        """
        result = self._close(person, delivery, outcome, None, token, reserve)
        head = _next(result)
        if head is None or len(result) < 5:
            return head, None
        claim = _claim_of(result[2:5])
        if len(result) > 5:
            claim = dataclasses.replace(claim, first_slot=result[5])
        return head, claim

    def _close(
        self, person: str, delivery: str, outcome: str, dead_letter: dict | None, token: str, reserve: Reservation | None = None
    ) -> Any:
        ks: scripts.LaneFinishReserveKeys = {
            "lane": keys.lane(person),
            "leases": keys.LEASES,
            "lane_state": keys.LANE_STATE,
            "inflight": keys.INFLIGHT,
            "deliveries": keys.DELIVERIES,
            "counters": keys.COUNTERS,
            "lane_identifies": keys.LANE_IDENTIFIES,
            "parked": keys.parked(person),
            "parked_index": keys.PARKED_INDEX,
            "attempts": keys.ATTEMPTS,
            "dead": keys.DEAD,
            "dead_index": keys.DEAD_INDEX,
        }
        args: scripts.LaneFinishReserveArgs = {
            "person": person,
            "delivery": delivery,
            "outcome": outcome,
            "now": now_ms(),
            "dispatch_ms": self.dispatch_ms,
            "dead_letter": json.dumps(dead_letter, separators=(",", ":")) if dead_letter else "",
            "token": token,
            "lease_ms": self.lease_ms,
        }
        if reserve is not None and token:
            budget, reserve_args = reserve
            ks["budget"] = budget
            args.update(reserve_args)
        return self._finish(keys=ks, args=args)

    def park(self, person: str, delivery: str) -> str | None:
        """Set the head aside until the person's next identify; returns the next head."""
        result = self._park(
            keys={
                "lane": keys.lane(person),
                "leases": keys.LEASES,
                "lane_state": keys.LANE_STATE,
                "inflight": keys.INFLIGHT,
                "counters": keys.COUNTERS,
                "parked": keys.parked(person),
                "parked_index": keys.PARKED_INDEX,
                "attempts": keys.ATTEMPTS,
            },
            args={"person": person, "delivery": delivery, "now": now_ms(), "dispatch_ms": self.dispatch_ms, "hold_ms": self.hold_ms},
        )
        return _next(result)

    def unpark(self, person: str) -> str | None:
        """Release the person's parked deliveries; returns the head to send if the lane woke."""
        head = self._unpark(
            keys={
                "lane": keys.lane(person),
                "leases": keys.LEASES,
                "lane_state": keys.LANE_STATE,
                "inflight": keys.INFLIGHT,
                "counters": keys.COUNTERS,
                "parked": keys.parked(person),
                "parked_index": keys.PARKED_INDEX,
            },
            args={"person": person, "now": now_ms(), "dispatch_ms": self.dispatch_ms},
        )
        return _text(head) if head else None

    def sleep(self, person: str, delivery: str, wake_at_ms: int, *, attempt: tuple[int, int] | None = None) -> bool:
        """Hold the lane until ``wake_at_ms``; ``attempt`` = (attempts, first failure ms) for a retry."""
        slept = self._sleep(
            keys={
                "lane": keys.lane(person),
                "leases": keys.LEASES,
                "lane_state": keys.LANE_STATE,
                "counters": keys.COUNTERS,
                "attempts": keys.ATTEMPTS,
            },
            args={
                "person": person,
                "delivery": delivery,
                "wake_at": wake_at_ms,
                "attempt": f"{attempt[0]}|{attempt[1]}" if attempt else "",
            },
        )
        return bool(slept)

    def attempts(self, delivery: str) -> tuple[int, int | None]:
        """(attempts so far, first failure ms) of a retrying delivery."""
        raw = self.redis.hget(keys.ATTEMPTS, delivery)
        if not raw:
            return 0, None
        count, first = _text(raw).split("|")
        return int(count), int(first)

    def following_identifies(self, person: str, head: str, limit: int) -> list[tuple[str, dict]]:
        """(id, record) of the identifies right behind ``head``, before anything else, at most ``limit``."""
        found = self._following(keys={"lane": keys.lane(person), "deliveries": keys.DELIVERIES}, args={"head": head, "limit": limit})
        flat = [_text(x) for x in found]
        return [(did, json.loads(record)) for did, record in zip(flat[0::2], flat[1::2])]

    def absorb(self, person: str, deliveries: list[str]) -> int:
        """Close ``deliveries`` as delivered in their head's call (coalesced); returns how many."""
        closed = self._absorb(
            keys={
                "lane": keys.lane(person),
                "deliveries": keys.DELIVERIES,
                "counters": keys.COUNTERS,
                "lane_identifies": keys.LANE_IDENTIFIES,
                "attempts": keys.ATTEMPTS,
            },
            args={"person": person, "absorbed": deliveries},
        )
        return int(closed)

    def pending_identifies(self, person: str) -> int:
        return int(self.redis.hget(keys.LANE_IDENTIFIES, person) or 0)

    def promote_identify(self, person: str) -> str | None:
        """Move the lane's first identify to the front; returns its id to send."""
        found = self._promote(
            keys={"lane": keys.lane(person), "leases": keys.LEASES, "lane_state": keys.LANE_STATE},
            args={"person": person, "now": now_ms(), "dispatch_ms": self.dispatch_ms},
        )
        return _text(found) if found else None

    # -- housekeeping --------------------------------------------------------
    def sweep(self, limit: int = 1000) -> list[tuple[str, str]]:
        """(person, head) of every lane whose deadline passed, now queued again."""
        woken = self._sweep(
            keys={"leases": keys.LEASES, "lane_state": keys.LANE_STATE, "inflight": keys.INFLIGHT},
            args={"now": now_ms(), "dispatch_ms": self.dispatch_ms, "limit": limit, "lane_prefix": keys.lane("")},
        )
        flat = [_text(x) for x in woken]
        return list(zip(flat[0::2], flat[1::2]))

    def expire_parked(self, limit: int = 1000) -> int:
        expired = self._expire(
            keys={
                "parked_index": keys.PARKED_INDEX,
                "counters": keys.COUNTERS,
                "deliveries": keys.DELIVERIES,
                "dead": keys.DEAD,
                "dead_index": keys.DEAD_INDEX,
            },
            args={"now": now_ms(), "hold_ms": self.hold_ms, "limit": limit, "parked_prefix": keys.parked("")},
        )
        return int(expired)

    def replay(self, dead_id: str, person: str, record: dict, action: str) -> tuple[bool, str | None]:
        """Put a dead letter's delivery back at the end of its lane: (replayed, head to send)."""
        seq = int(self.redis.incr(keys.SEQ))
        result = self._replay(
            keys={
                "lane": keys.lane(person),
                "deliveries": keys.DELIVERIES,
                "leases": keys.LEASES,
                "lane_state": keys.LANE_STATE,
                "inflight": keys.INFLIGHT,
                "counters": keys.COUNTERS,
                "lane_identifies": keys.LANE_IDENTIFIES,
                "dead": keys.DEAD,
                "dead_index": keys.DEAD_INDEX,
            },
            args={
                "person": person,
                "delivery": self.delivery_id(seq, 0, action),
                "record": json.dumps(record, separators=(",", ":")),
                "seq": seq,
                "now": now_ms(),
                "dispatch_ms": self.dispatch_ms,
                "letter": dead_id,
            },
        )
        return _text(result[0]) == "ok", _next(result)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _claim_of(taken: Any) -> Claim:
    """A Claim from the script's (record, attempts, identifies waiting)."""
    record, attempts, identifies = taken[0], _text(taken[1]), int(taken[2])
    # The attempts so far ride along, so that a delivery needs no extra round trip for them.
    return Claim("ok", json.loads(record), int(attempts.split("|")[0]) if attempts else 0, identifies)


def _next(result: Any) -> str | None:
    if not result or _text(result[0]) != "ok" or len(result) < 2 or not result[1]:
        return None
    return _text(result[1])
