-- Functions shared by the lane scripts (included, never run on its own).
-- Uses IDENTIFY_CODE, the lane code of the action that identifies a person,
-- set by worker/store/lanes.py before this text.

-- Hand the lane to its next head (queued, its dispatch deadline set), or let it go idle.
-- A lane whose person still has events between the door and the lane stays idle.
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
-- Something changed that may let an idle lane run: its next head, unless a task holds the lane
-- (a held lane moves on when that task finishes).
local function wake(lane, leases, state, inflight, person, now, dispatch)
  if redis.call('ZSCORE', leases, person) then return false end
  return next_head(lane, leases, state, inflight, person, now, dispatch)
end
-- A delivery that leaves its lane stops counting as retrying.
local function drop_attempts(attempts, counters, id)
  if redis.call('HDEL', attempts, id) == 1 then
    redis.call('HINCRBY', counters, 'retrying', -1)
  end
end
-- Decrement a hash field, removing it at zero.  Never below zero: a count a failure left
-- short must not absorb a later increment and let a lane start while its person's events
-- are still on their way (the sweep recounts a count that stands still: inflight.py).
-- Returns true when the field is gone.
local function decr_field(hash, field, amount)
  if redis.call('HINCRBY', hash, field, -(amount or 1)) > 0 then return false end
  redis.call('HDEL', hash, field)
  return true
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
-- Whether a delivery id is that of the identifying action (its last letter is the action's lane code).
local function is_identify(id)
  return string.sub(id, -1) == IDENTIFY_CODE
end
