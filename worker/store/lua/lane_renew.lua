-- Renew a running task's lease on its lane.
-- KEYS: 1 leases, 2 lane state
-- ARGV: 1 person, 2 task token, 3 new deadline ms
-- Returns 1, or 0 when the lane is no longer this task's.
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
