-- Close the head of a lane as delivered or dead-lettered, and hand the lane on.
-- KEYS: 1 lane, 2 leases, 3 lane state, 4 inflight, 5 deliveries, 6 counters,
--       7 lane identifies, 8 parked (the person's list), 9 parked index, 10 attempts,
--       11 dead letters, 12 dead-letter index[, 13 rate budget]
-- ARGV: 1 person, 2 delivery id, 3 outcome, 4 now ms, 5 dispatch ms, 6 dead letter JSON
--       ('' when delivered), 7 task token ('' to claim nothing), 8 lease ms
--       [, 9..12 budget_reserve.lua's reserve() arguments: default limit, share, window ms,
--       max wait ms]
-- Returns {'stale'}; without a token {'ok', next head or false}; with a token the next
-- head is claimed for it at once: {'ok', head, record, attempts, identifies}, and with a
-- budget key also the reply of reserving the head's first call.
-- A delivered identify puts the person's parked deliveries back in the lane.
-- include: lane_functions.lua
-- include: lane_take.lua
-- include: budget_reserve.lua
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
if is_identify(id) then
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
