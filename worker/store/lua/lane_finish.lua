-- Close the head of a lane as delivered or dead-lettered, and hand the lane on.
-- Returns {'stale'}; without a token {'ok', next head or false}; with a token the next
-- head is claimed for it at once: {'ok', head, record, attempts, identifies}, and with a
-- budget key also the reply of reserving the head's first call.
-- A delivered identify puts the person's parked deliveries back in the lane.
-- include: lane_functions.lua
-- include: lane_take.lua
-- include: budget_reserve.lua
local lane = KEYS[1]
local leases = KEYS[2]
local lane_state = KEYS[3]
local inflight = KEYS[4]
local deliveries = KEYS[5]
local counters = KEYS[6]
local lane_identifies = KEYS[7]
local parked = KEYS[8]  -- the person's parked list
local parked_index = KEYS[9]
local attempts = KEYS[10]
local dead = KEYS[11]  -- dead letters
local dead_index = KEYS[12]
local budget = KEYS[13]  -- the rate budget, or nil: reserve nothing
local person = ARGV[1]
local delivery = ARGV[2]  -- the head's delivery id
local outcome = ARGV[3]  -- delivered or dead_lettered
local now = tonumber(ARGV[4])  -- ms
local dispatch_ms = tonumber(ARGV[5])
local dead_letter = ARGV[6]  -- its JSON, '' when delivered
local token = ARGV[7]  -- '' to claim nothing
local lease_ms = tonumber(ARGV[8])
local default_limit = ARGV[9]  -- with a budget: budget_reserve.lua's reserve() arguments
local share = ARGV[10]
local window_ms = ARGV[11]
local max_wait_ms = ARGV[12]

if not redis.call('ZSCORE', lane, delivery) then return {'stale'} end
redis.call('ZREM', lane, delivery)
redis.call('HDEL', deliveries, delivery)
redis.call('HINCRBY', counters, outcome, 1)
drop_attempts(attempts, counters, delivery)
if outcome == 'dead_lettered' then
  redis.call('HSET', dead, delivery, dead_letter)
  redis.call('ZADD', dead_index, now, delivery)
end
if is_identify(delivery) then
  decr_field(lane_identifies, person)
  if outcome == 'delivered' then unpark(lane, parked, parked_index, counters, person) end
end
local head = next_head(lane, leases, lane_state, inflight, person, now, dispatch_ms)
if head and token ~= '' then
  local taken = take(leases, lane_state, deliveries, attempts, lane_identifies, person, head, token, now + lease_ms)
  if budget then
    return {'ok', head, taken[2], taken[3], taken[4], reserve(budget, counters, default_limit, share, window_ms, max_wait_ms)}
  end
  return {'ok', head, taken[2], taken[3], taken[4]}
end
return {'ok', head}
