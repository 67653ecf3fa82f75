-- Set the head aside until the person's next delivered identify.
-- KEYS: 1 lane, 2 leases, 3 lane state, 4 inflight, 5 counters, 6 parked (the person's
--       list), 7 parked index, 8 attempts
-- ARGV: 1 person, 2 delivery id, 3 now ms, 4 dispatch ms, 5 hold ms
-- Returns {'stale'} or {'ok', next head or false}.
-- include: lane_functions.lua
local person, id, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
if not redis.call('ZSCORE', KEYS[1], id) then return {'stale'} end
redis.call('ZREM', KEYS[1], id)
redis.call('RPUSH', KEYS[6], id .. '|' .. now)
redis.call('ZADD', KEYS[7], 'NX', now + tonumber(ARGV[5]), person)
redis.call('HINCRBY', KEYS[5], 'parked', 1)
drop_attempts(KEYS[8], KEYS[5], id)
return {'ok', next_head(KEYS[1], KEYS[2], KEYS[3], KEYS[4], person, now, tonumber(ARGV[4]))}
