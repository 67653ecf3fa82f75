-- Renew a running task's lease on its lane (a deadline of 0 ends it).
-- Returns 1, or 0 when the lane is no longer this task's.
local leases = KEYS[1]
local lane_state = KEYS[2]
local person = ARGV[1]
local token = ARGV[2]  -- the task's
local deadline = ARGV[3]  -- the new deadline, ms

if redis.call('HGET', lane_state, person) ~= token then return 0 end
redis.call('ZADD', leases, deadline, person)
return 1
