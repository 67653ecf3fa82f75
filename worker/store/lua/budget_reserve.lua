-- reserve(): take the next slot of the fleet's rate schedule (the generic cell rate
-- algorithm). Included by budget_acquire.lua and by lane_finish.lua, which reserves a
-- claimed head's first call in the round trip that claims it.
-- Uses HEADROOM (the share of the window's limit scheduled), set by worker/store/budget.py.
--
-- reserve(budget hash, counters, default limit, share, window ms, max wait ms) returns
-- {wait in ms before the reserved slot, the slot's time in ms, the limit it scheduled for};
-- the wait is -1 when the slot is further than max wait (nothing is reserved then).
-- A reserved slot is a call about to be made: it is counted in api_calls here.
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
