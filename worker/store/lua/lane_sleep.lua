-- Hold a lane until a time, its head staying at the front.
-- KEYS: 1 lane, 2 leases, 3 lane state, 4 counters, 5 attempts
-- ARGV: 1 person, 2 delivery id, 3 wake at ms, 4 "attempts|first failure ms" ('' for a
--       wait that uses no attempt)
-- Returns 1, or 0 when the delivery is no longer in the lane.
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
