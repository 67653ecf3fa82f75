-- Set a person's in-flight count to the number of their events found still on their way,
-- if the count is still the one the sweep saw; wake the lane when that lets it run.
-- KEYS: 1 inflight, 2 leases, 3 lane state, 4 counters, 5 the person's lane
-- ARGV: 1 person, 2 count the sweep saw, 3 events found on their way, 4 now ms, 5 dispatch ms
-- Returns {status, head}: status "repaired" or "changed" (the count moved meanwhile: left
-- alone, the next check sees it again); head is the delivery to send a task for, or "".
-- include: lane_functions.lua
local person, truth = ARGV[1], tonumber(ARGV[3])
if (redis.call('HGET', KEYS[1], person) or '0') ~= ARGV[2] then return {'changed', ''} end
if truth > 0 then
  redis.call('HSET', KEYS[1], person, truth)
else
  redis.call('HDEL', KEYS[1], person)
end
redis.call('HINCRBY', KEYS[4], 'inflight_repaired', 1)
if truth > 0 then return {'repaired', ''} end
return {'repaired', wake(KEYS[5], KEYS[2], KEYS[3], KEYS[1], person, tonumber(ARGV[4]), tonumber(ARGV[5])) or ''}
