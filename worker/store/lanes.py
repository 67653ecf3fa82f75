"""Per-person lanes: the ordering mechanism (DESIGN.md guarantees 3, 4 and 7).

A *lane* is one person's queue of deliveries (a delivery is one event through
one mapping), a Redis sorted set ordered by the acceptance sequence the door
stamped on the event.  At most one delivery per lane is in flight, so a
person's events reach Intercom in acceptance order while different people
run in parallel on any number of workers.

Every step is one Lua script, so the lane, its lease and the pipeline
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
back at the front of the lane, in their acceptance order.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from typing import Any

from worker.store import keys
from worker.store.budget import RESERVE_FUNCTION

#: A delivery id is "<seq>:<n><code>": the event's acceptance sequence, the
#: mapping's index for that event, and a letter for the action, so that Lua
#: can tell an identify from its id alone.
ACTION_CODES = {"identify_contact": "I", "track_event": "T", "identify_company": "G"}
CODE_ACTIONS = {code: action for action, code in ACTION_CODES.items()}

#: While a running task renews its lease, the lease outlives any one HTTP call;
#: past this much silence the worker is taken for dead and the head is resent.
DEFAULT_LEASE_SECONDS = 60.0

#: A sent task normally starts within seconds; one not started after this long
#: is taken for lost and sent again.  A task is lost when its worker dies after
#: closing one head and before sending the next, or dies holding prefetched
#: messages (Celery's Redis transport restores those only after its visibility
#: timeout, an hour).  A duplicate costs one claim that finds the lane busy or
#: its delivery gone; set it above the queue's usual wait (DISPATCH_SECONDS).
DEFAULT_DISPATCH_SECONDS = 60.0

#: messageIds are remembered this long for de-duplication.
SEEN_TTL_SECONDS = 7 * 24 * 3600


def person_of(event: dict) -> str:
    """The person an event belongs to, and so its lane: userId, else anonymousId (DESIGN.md)."""
    return str(event.get("userId") or event.get("anonymousId"))


def delivery_id(seq: int, index: int, action: str) -> str:
    return f"{seq}:{index}{ACTION_CODES[action]}"


def action_of(delivery: str) -> str:
    return CODE_ACTIONS[delivery[-1]]


def now_ms() -> int:
    return int(time.time() * 1000)


# Shared Lua: hand the lane to its next head, or let it go idle.
_NEXT_HEAD = """
local function next_head(lane, leases, state, inflight, person, now, dispatch)
  local head = redis.call('ZRANGE', lane, 0, 0)[1]
  local pending = tonumber(redis.call('HGET', inflight, person) or '0')
  if head and pending <= 0 then
    redis.call('HSET', state, person, 'queued')
    redis.call('ZADD', leases, now + dispatch, person)
    return head
  end
  redis.call('HDEL', state, person)
  redis.call('ZREM', leases, person)
  return false
end
local function drop_attempts(attempts, counters, id)
  if redis.call('HDEL', attempts, id) == 1 then
    redis.call('HINCRBY', counters, 'retrying', -1)
  end
end
local function decr_field(hash, field)
  if redis.call('HINCRBY', hash, field, -1) == 0 then redis.call('HDEL', hash, field) end
end
-- Put a person's parked deliveries back in the lane, at their acceptance places.
local function unpark(lane, parked, parked_index, counters, person)
  local entries = redis.call('LRANGE', parked, 0, -1)
  for _, entry in ipairs(entries) do
    local pid = string.match(entry, '^([^|]+)')
    redis.call('ZADD', lane, tonumber(string.match(pid, '^(%d+)')), pid)
  end
  if #entries > 0 then
    redis.call('HINCRBY', counters, 'parked', -#entries)
    redis.call('DEL', parked)
    redis.call('ZREM', parked_index, person)
  end
  return #entries
end
"""

# KEYS: seen, lane, deliveries, leases, state, inflight, counters, identifies
# ARGV: seq, person, now, dispatch, seen_ttl, n_identifies, (id, record)...
_INGEST = (
    _NEXT_HEAD
    + """
local seq, person, now, dispatch = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local seen = redis.call('GET', KEYS[1])
if seen == seq then return false end  -- a redelivered ingest: this event is in already
decr_field(KEYS[6], person)
if seen then
  redis.call('HINCRBY', KEYS[7], 'duplicate', 1)
elseif #ARGV == 6 then
  redis.call('SET', KEYS[1], seq, 'EX', ARGV[5])
  redis.call('HINCRBY', KEYS[7], 'filtered', 1)
else
  redis.call('SET', KEYS[1], seq, 'EX', ARGV[5])
  redis.call('HINCRBY', KEYS[7], 'ingested', 1)
  redis.call('HINCRBY', KEYS[7], 'deliveries', (#ARGV - 6) / 2)
  for i = 7, #ARGV, 2 do
    redis.call('ZADD', KEYS[2], seq, ARGV[i])
    redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  end
  if tonumber(ARGV[6]) > 0 then redis.call('HINCRBY', KEYS[8], person, ARGV[6]) end
end
if redis.call('ZSCORE', KEYS[4], person) then return false end
return next_head(KEYS[2], KEYS[4], KEYS[5], KEYS[6], person, now, dispatch)
"""
)

# Shared Lua: lease a head to a task; what the task needs to run it.
_TAKE = """
local function take(leases, state, deliveries, attempts, identifies, person, id, token, deadline)
  redis.call('HSET', state, person, token)
  redis.call('ZADD', leases, deadline, person)
  return {'ok', redis.call('HGET', deliveries, id), redis.call('HGET', attempts, id) or '',
          tonumber(redis.call('HGET', identifies, person) or '0')}
end
"""

# KEYS: lane, leases, state, inflight, deliveries, attempts, identifies
# ARGV: person, id, token, now, lease, tolerance
# Returns {status} or {'ok', record, attempts, identifies waiting in the lane}.
_CLAIM = (
    _TAKE
    + """
local person, id, token, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if redis.call('ZRANGE', KEYS[1], 0, 0)[1] ~= id then return {'stale'} end
local state = redis.call('HGET', KEYS[3], person)
local deadline = tonumber(redis.call('ZSCORE', KEYS[2], person) or '0')
if state == 'sleep' and deadline > now + tonumber(ARGV[6]) then return {'early'} end
if state and state ~= 'queued' and state ~= 'sleep' and state ~= token and deadline > now then
  return {'busy'}
end
if tonumber(redis.call('HGET', KEYS[4], person) or '0') > 0 then
  redis.call('HDEL', KEYS[3], person)
  redis.call('ZREM', KEYS[2], person)
  return {'gated'}
end
return take(KEYS[2], KEYS[3], KEYS[5], KEYS[6], KEYS[7], person, id, token, now + tonumber(ARGV[5]))
"""
)

# KEYS: leases, state    ARGV: person, token, deadline
_RENEW = """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""

# KEYS: lane, leases, state, inflight, deliveries, counters, identifies, parked,
#       parked_index, attempts, dead, dead_index[, budget]
# ARGV: person, id, outcome, now, dispatch, dead_letter_json, token, lease
#       [, the budget's reserve() arguments: default limit, share, window ms, max wait ms]
# With a token, the next head is claimed for it at once (a task running its
# lane's next head itself saves a round trip): {'ok', head, record, attempts,
# identifies}, and with a budget also the reply of reserving the head's first
# call (worker/store/budget.py).  Without a token: {'ok', head or false}.
_FINISH = (
    _NEXT_HEAD
    + _TAKE
    + RESERVE_FUNCTION
    + """
local person, id, outcome, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if not redis.call('ZSCORE', KEYS[1], id) then return {'stale'} end
redis.call('ZREM', KEYS[1], id)
redis.call('HDEL', KEYS[5], id)
redis.call('HINCRBY', KEYS[6], outcome, 1)
drop_attempts(KEYS[10], KEYS[6], id)
if outcome == 'dead_lettered' then
  redis.call('HSET', KEYS[11], id, ARGV[6])
  redis.call('ZADD', KEYS[12], now, id)
end
if string.sub(id, -1) == 'I' then
  decr_field(KEYS[7], person)
  if outcome == 'delivered' then unpark(KEYS[1], KEYS[8], KEYS[9], KEYS[6], person) end
end
local head = next_head(KEYS[1], KEYS[2], KEYS[3], KEYS[4], person, now, tonumber(ARGV[5]))
if head and ARGV[7] ~= '' then
  local taken = take(KEYS[2], KEYS[3], KEYS[5], KEYS[10], KEYS[7], person, head, ARGV[7], now + tonumber(ARGV[8]))
  if KEYS[13] then
    return {'ok', head, taken[2], taken[3], taken[4], reserve(KEYS[13], KEYS[6], ARGV[9], ARGV[10], ARGV[11], ARGV[12])}
  end
  return {'ok', head, taken[2], taken[3], taken[4]}
end
return {'ok', head}
"""
)

# KEYS: lane, leases, state, inflight, counters, parked, parked_index, attempts
# ARGV: person, id, now, dispatch, hold
_PARK = (
    _NEXT_HEAD
    + """
local person, id, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
if not redis.call('ZSCORE', KEYS[1], id) then return {'stale'} end
redis.call('ZREM', KEYS[1], id)
redis.call('RPUSH', KEYS[6], id .. '|' .. now)
redis.call('ZADD', KEYS[7], 'NX', now + tonumber(ARGV[5]), person)
redis.call('HINCRBY', KEYS[5], 'parked', 1)
drop_attempts(KEYS[8], KEYS[5], id)
return {'ok', next_head(KEYS[1], KEYS[2], KEYS[3], KEYS[4], person, now, tonumber(ARGV[4]))}
"""
)

# KEYS: lane, leases, state, inflight, counters, parked, parked_index
# ARGV: person, now, dispatch
# Releases a person's parked deliveries now; wakes the lane if it was idle.
_UNPARK = (
    _NEXT_HEAD
    + """
local person = ARGV[1]
if unpark(KEYS[1], KEYS[6], KEYS[7], KEYS[5], person) == 0 then return false end
if redis.call('ZSCORE', KEYS[2], person) then return false end
return next_head(KEYS[1], KEYS[2], KEYS[3], KEYS[4], person, tonumber(ARGV[2]), tonumber(ARGV[3]))
"""
)

# KEYS: lane, leases, state, counters, attempts
# ARGV: person, id, wake_at, attempts_value ('' for a wait that uses no attempt)
_SLEEP = """
local person, id = ARGV[1], ARGV[2]
if not redis.call('ZSCORE', KEYS[1], id) then return 0 end
redis.call('HSET', KEYS[3], person, 'sleep')
redis.call('ZADD', KEYS[2], ARGV[3], person)
if ARGV[4] ~= '' then
  if redis.call('HSET', KEYS[5], id, ARGV[4]) == 1 then
    redis.call('HINCRBY', KEYS[4], 'retrying', 1)
  end
end
return 1
"""

# KEYS: lane, leases, state     ARGV: person, now, dispatch
# Moves the first identify of the lane in front of the head; returns its id.
_PROMOTE = """
local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #members, 2 do
  if string.sub(members[i], -1) == 'I' then
    if i > 1 then
      redis.call('ZADD', KEYS[1], tonumber(members[2]) - 0.5, members[i])
    end
    redis.call('HSET', KEYS[3], ARGV[1], 'queued')
    redis.call('ZADD', KEYS[2], tonumber(ARGV[2]) + tonumber(ARGV[3]), ARGV[1])
    return members[i]
  end
end
return false
"""

# KEYS: leases, state, inflight    ARGV: now, dispatch, limit, lane prefix
# Resends the head of every lane whose deadline has passed.
_SWEEP = (
    _NEXT_HEAD
    + """
local now, dispatch = tonumber(ARGV[1]), tonumber(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local woken = {}
for _, person in ipairs(due) do
  local head = next_head(ARGV[4] .. person, KEYS[1], KEYS[2], KEYS[3], person, now, dispatch)
  if head then
    table.insert(woken, person)
    table.insert(woken, head)
  end
end
return woken
"""
)

# KEYS: parked_index, counters, deliveries, dead, dead_index
# ARGV: now, hold, limit, parked prefix
# Dead-letters parked deliveries that no identify rescued within the hold time.
_EXPIRE_PARKED = """
local now, hold = tonumber(ARGV[1]), tonumber(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local expired = 0
for _, person in ipairs(due) do
  local list = ARGV[4] .. person
  while true do
    local entry = redis.call('LINDEX', list, 0)
    if not entry then redis.call('ZREM', KEYS[1], person); break end
    local id, parked_at = string.match(entry, '^([^|]+)|(%d+)$')
    if tonumber(parked_at) + hold > now then
      redis.call('ZADD', KEYS[1], tonumber(parked_at) + hold, person)
      break
    end
    redis.call('LPOP', list)
    local record = redis.call('HGET', KEYS[3], id) or 'null'
    redis.call('HDEL', KEYS[3], id)
    redis.call('HSET', KEYS[4], id, '{"id":' .. cjson.encode(id) .. ',"person":' .. cjson.encode(person)
      .. ',"reason":"contact never identified","response":null,"attempts":0,"parked_at":' .. parked_at
      .. ',"dead_at":' .. ARGV[1] .. ',"delivery":' .. record .. '}')
    redis.call('ZADD', KEYS[5], now, id)
    redis.call('HINCRBY', KEYS[2], 'parked', -1)
    redis.call('HINCRBY', KEYS[2], 'dead_lettered', 1)
    expired = expired + 1
  end
end
return expired
"""

# KEYS: lane, deliveries, leases, state, inflight, counters, identifies, dead, dead_index
# ARGV: person, id, record, seq, now, dispatch, dead_id
# Puts a dead letter back at the end of its person's lane as a new delivery.
_REPLAY = (
    _NEXT_HEAD
    + """
local person, id = ARGV[1], ARGV[2]
if redis.call('HDEL', KEYS[8], ARGV[7]) == 0 then return {'gone'} end
redis.call('ZREM', KEYS[9], ARGV[7])
redis.call('ZADD', KEYS[1], ARGV[4], id)
redis.call('HSET', KEYS[2], id, ARGV[3])
redis.call('HINCRBY', KEYS[6], 'deliveries', 1)
if string.sub(id, -1) == 'I' then redis.call('HINCRBY', KEYS[7], person, 1) end
if redis.call('ZSCORE', KEYS[3], person) then return {'ok', false} end
return {'ok', next_head(KEYS[1], KEYS[3], KEYS[4], KEYS[5], person, tonumber(ARGV[5]), tonumber(ARGV[6]))}
"""
)

#: Hash delivery id -> "attempts|first failure ms" while a delivery is retrying.
ATTEMPTS = keys.PREFIX + "attempts"


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
    #: claim reserved one (``Lanes.finish_and_claim``); for ``RateBudget.prepay``.
    first_slot: Any = None


class Lanes:
    """The lane operations; each is one atomic Lua script."""

    def __init__(
        self,
        redis: Any,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        dispatch_seconds: float = DEFAULT_DISPATCH_SECONDS,
        park_hold_seconds: float = 24 * 3600,
    ) -> None:
        self.redis = redis
        self.lease_ms = int(lease_seconds * 1000)
        self.dispatch_ms = int(dispatch_seconds * 1000)
        self.hold_ms = int(park_hold_seconds * 1000)
        register = redis.register_script
        self._ingest, self._claim, self._renew = register(_INGEST), register(_CLAIM), register(_RENEW)
        self._finish, self._park, self._sleep = register(_FINISH), register(_PARK), register(_SLEEP)
        self._promote, self._sweep = register(_PROMOTE), register(_SWEEP)
        self._expire, self._replay = register(_EXPIRE_PARKED), register(_REPLAY)
        self._unpark = register(_UNPARK)

    # -- ingestion ---------------------------------------------------------
    def ingest(self, seq: int, person: str, message_id: str, deliveries: list[tuple[str, dict]], *, pipe: Any = None) -> Any:
        """Append one accepted event's deliveries to its lane.

        Returns the delivery id to send a task for when this woke the lane
        (None otherwise).  A messageId seen before counts as a duplicate; the
        same acceptance seen again (a redelivered ingest task) changes nothing.
        """
        args: list[Any] = [seq, person, now_ms(), self.dispatch_ms, SEEN_TTL_SECONDS]
        args.append(sum(1 for did, _ in deliveries if did.endswith("I")))
        for did, record in deliveries:
            args += [did, json.dumps(record, separators=(",", ":"))]
        ks = [
            keys.seen(message_id),
            keys.lane(person),
            keys.DELIVERIES,
            keys.LEASES,
            keys.LANE_STATE,
            keys.INFLIGHT,
            keys.COUNTERS,
            keys.LANE_IDENTIFIES,
        ]
        return self._ingest(keys=ks, args=args, client=pipe)

    # -- running a head ----------------------------------------------------
    def claim(self, person: str, delivery: str, token: str, *, tolerance_ms: int = 250) -> Claim:
        ks = [keys.lane(person), keys.LEASES, keys.LANE_STATE, keys.INFLIGHT, keys.DELIVERIES, ATTEMPTS, keys.LANE_IDENTIFIES]
        result = self._claim(keys=ks, args=[person, delivery, token, now_ms(), self.lease_ms, tolerance_ms])
        status = _text(result[0])
        if status != "ok" or len(result) < 2 or not result[1]:
            return Claim(status)
        return _claim_of(result[1:])

    def renew(self, person: str, token: str) -> bool:
        ks = [keys.LEASES, keys.LANE_STATE]
        return bool(self._renew(keys=ks, args=[person, token, now_ms() + self.lease_ms]))

    def finish(self, person: str, delivery: str, outcome: str, dead_letter: dict | None = None) -> str | None:
        """Close the head as ``delivered`` or ``dead_lettered``; returns the next head to send."""
        return _next(self._close(person, delivery, outcome, dead_letter, ""))

    def finish_and_claim(
        self, person: str, delivery: str, outcome: str, token: str, *, reserve: tuple[str, list] | None = None
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
        self, person: str, delivery: str, outcome: str, dead_letter: dict | None, token: str, reserve: tuple[str, list] | None = None
    ) -> Any:
        ks = [
            keys.lane(person),
            keys.LEASES,
            keys.LANE_STATE,
            keys.INFLIGHT,
            keys.DELIVERIES,
            keys.COUNTERS,
            keys.LANE_IDENTIFIES,
            keys.parked(person),
            keys.PARKED_INDEX,
            ATTEMPTS,
            keys.DEAD,
            keys.DEAD_INDEX,
        ]
        letter = json.dumps(dead_letter, separators=(",", ":")) if dead_letter else ""
        args = [person, delivery, outcome, now_ms(), self.dispatch_ms, letter, token, self.lease_ms]
        if reserve is not None and token:
            budget_key, reserve_args = reserve
            ks.append(budget_key)
            args += reserve_args
        return self._finish(keys=ks, args=args)

    def park(self, person: str, delivery: str) -> str | None:
        """Set the head aside until the person's next identify; returns the next head."""
        ks = [
            keys.lane(person),
            keys.LEASES,
            keys.LANE_STATE,
            keys.INFLIGHT,
            keys.COUNTERS,
            keys.parked(person),
            keys.PARKED_INDEX,
            ATTEMPTS,
        ]
        return _next(self._park(keys=ks, args=[person, delivery, now_ms(), self.dispatch_ms, self.hold_ms]))

    def unpark(self, person: str) -> str | None:
        """Release the person's parked deliveries; returns the head to send if the lane woke."""
        ks = [keys.lane(person), keys.LEASES, keys.LANE_STATE, keys.INFLIGHT, keys.COUNTERS, keys.parked(person), keys.PARKED_INDEX]
        head = self._unpark(keys=ks, args=[person, now_ms(), self.dispatch_ms])
        return _text(head) if head else None

    def sleep(self, person: str, delivery: str, wake_at_ms: int, *, attempt: tuple[int, int] | None = None) -> bool:
        """Hold the lane until ``wake_at_ms``; ``attempt`` = (attempts, first failure ms) for a retry."""
        ks = [keys.lane(person), keys.LEASES, keys.LANE_STATE, keys.COUNTERS, ATTEMPTS]
        value = f"{attempt[0]}|{attempt[1]}" if attempt else ""
        return bool(self._sleep(keys=ks, args=[person, delivery, wake_at_ms, value]))

    def attempts(self, delivery: str) -> tuple[int, int | None]:
        """(attempts so far, first failure ms) of a retrying delivery."""
        raw = self.redis.hget(ATTEMPTS, delivery)
        if not raw:
            return 0, None
        count, first = _text(raw).split("|")
        return int(count), int(first)

    def pending_identifies(self, person: str) -> int:
        return int(self.redis.hget(keys.LANE_IDENTIFIES, person) or 0)

    def promote_identify(self, person: str) -> str | None:
        """Move the lane's first identify to the front; returns its id to send."""
        ks = [keys.lane(person), keys.LEASES, keys.LANE_STATE]
        found = self._promote(keys=ks, args=[person, now_ms(), self.dispatch_ms])
        return _text(found) if found else None

    # -- housekeeping --------------------------------------------------------
    def sweep(self, limit: int = 1000) -> list[tuple[str, str]]:
        """(person, head) of every lane whose deadline passed, now queued again."""
        ks = [keys.LEASES, keys.LANE_STATE, keys.INFLIGHT]
        flat = self._sweep(keys=ks, args=[now_ms(), self.dispatch_ms, limit, keys.lane("")])
        flat = [_text(x) for x in flat]
        return list(zip(flat[0::2], flat[1::2]))

    def expire_parked(self, limit: int = 1000) -> int:
        ks = [keys.PARKED_INDEX, keys.COUNTERS, keys.DELIVERIES, keys.DEAD, keys.DEAD_INDEX]
        return int(self._expire(keys=ks, args=[now_ms(), self.hold_ms, limit, keys.parked("")]))

    def replay(self, dead_id: str, person: str, record: dict, action: str) -> tuple[bool, str | None]:
        """Put a dead letter's delivery back at the end of its lane: (replayed, head to send)."""
        seq = int(self.redis.incr(keys.SEQ))
        new_id = delivery_id(seq, 0, action)
        ks = [
            keys.lane(person),
            keys.DELIVERIES,
            keys.LEASES,
            keys.LANE_STATE,
            keys.INFLIGHT,
            keys.COUNTERS,
            keys.LANE_IDENTIFIES,
            keys.DEAD,
            keys.DEAD_INDEX,
        ]
        args = [person, new_id, json.dumps(record, separators=(",", ":")), seq, now_ms(), self.dispatch_ms, dead_id]
        result = self._replay(keys=ks, args=args)
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
