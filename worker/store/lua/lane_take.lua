-- Lease a head to a task: what the task needs to run it (included by lane_claim.lua
-- and lane_finish.lua).
-- Returns {'ok', record JSON, "attempts|first failure ms" or '', identifies waiting in the lane}.
local function take(leases, state, deliveries, attempts, identifies, person, id, token, deadline)
  redis.call('HSET', state, person, token)
  redis.call('ZADD', leases, deadline, person)
  return {'ok', redis.call('HGET', deliveries, id), redis.call('HGET', attempts, id) or '',
          tonumber(redis.call('HGET', identifies, person) or '0')}
end
