-- Hold a lane until a time, its head staying at the front.
-- Returns 1, or 0 when the delivery is no longer in the lane.
local lane = KEYS[1]
local leases = KEYS[2]
local lane_state = KEYS[3]
local counters = KEYS[4]
local attempts = KEYS[5]
local person = ARGV[1]
local delivery = ARGV[2]  -- the head's delivery id
local wake_at = ARGV[3]  -- ms
local attempt = ARGV[4]  -- "attempts|first failure ms" ('' for a wait that uses no attempt)

if not redis.call('ZSCORE', lane, delivery) then return 0 end
redis.call('HSET', lane_state, person, 'sleep')
redis.call('ZADD', leases, wake_at, person)
if attempt ~= '' then
  if redis.call('HSET', attempts, delivery, attempt) == 1 then
    redis.call('HINCRBY', counters, 'retrying', 1)
  end
end
return 1
